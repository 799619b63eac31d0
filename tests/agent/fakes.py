"""Local fake servers speaking the Anthropic Messages API and the OpenAI chat-completions API.

Each runs an aiohttp app on loopback in a background thread and answers from a script: a list of
`Reply` (status, JSON body, headers, delay). Every request is recorded (path, headers, body) so tests
can assert what the real SDK / HTTP client sent, including retries.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Reply:
    status: int = 200
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


def anthropic_text(text: str, *, input_tokens: int = 10, output_tokens: int = 5) -> Reply:
    return Reply(
        body={
            "id": "msg_text",
            "type": "message",
            "role": "assistant",
            "model": "claude-test",
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        }
    )


def anthropic_tool(name: str, arguments: dict[str, Any], call_id: str = "toolu_1", text: str = "") -> Reply:
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    content.append({"type": "tool_use", "id": call_id, "name": name, "input": arguments})
    return Reply(
        body={
            "id": f"msg_{call_id}",
            "type": "message",
            "role": "assistant",
            "model": "claude-test",
            "content": content,
            "stop_reason": "tool_use",
            "stop_sequence": None,
            "usage": {"input_tokens": 20, "output_tokens": 8},
        }
    )


def anthropic_error(status: int, kind: str, message: str = "boom", **headers: str) -> Reply:
    return Reply(
        status=status,
        body={"type": "error", "error": {"type": kind, "message": message}},
        headers={"retry-after-ms": "1", **headers},
    )


def openai_text(text: str) -> Reply:
    return Reply(
        body={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "local",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18},
        }
    )


def openai_tool(name: str, arguments: dict[str, Any], call_id: str = "call_1") -> Reply:
    return Reply(
        body={
            "id": "chatcmpl-2",
            "object": "chat.completion",
            "model": "local",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "tool_calls",
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": call_id,
                                "type": "function",
                                "function": {"name": name, "arguments": json.dumps(arguments)},
                            }
                        ],
                    },
                }
            ],
            "usage": {"prompt_tokens": 30, "completion_tokens": 9, "total_tokens": 39},
        }
    )


def openai_error(status: int, message: str = "boom", **headers: str) -> Reply:
    return Reply(
        status=status,
        body={"error": {"message": message, "type": "server_error"}},
        headers={"retry-after-ms": "1", **headers},
    )


class FakeServer:
    """A scripted HTTP server on 127.0.0.1 (use as a context manager)."""

    path = "/"

    def __init__(self, script: list[Reply] | None = None) -> None:
        self.script: list[Reply] = list(script or [])
        self.requests: list[Recorded] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add(self, *replies: Reply) -> None:
        self.script.extend(replies)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(Recorded(request.path, {k.lower(): v for k, v in request.headers.items()}, body))
        reply = self.script.pop(0) if self.script else Reply(status=500, body={"error": "script exhausted"})
        if reply.delay_seconds:
            await asyncio.sleep(reply.delay_seconds)
        return web.json_response(reply.body, status=reply.status, headers=reply.headers)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post(self.path, self._handle)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def __enter__(self) -> FakeServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


class FakeMessagesAPI(FakeServer):
    """POST /v1/messages, as the Anthropic SDK calls it."""

    path = "/v1/messages"


class FakeChatCompletions(FakeServer):
    """POST /v1/chat/completions, as any OpenAI-compatible client calls it."""

    path = "/v1/chat/completions"
