"""`ringpilot chat`: one conversation with Ringpilot through the gateway, from a terminal or a pipe.

`ChatSession` posts each line as a user turn (with a client idempotency key), then follows the
conversation's event stream until that turn completes or fails for good: a spinner while the agent
works, a line per tool call, the reply, the resources created. A proposed action is asked about
("confirm? [y/N]"; anything but y/yes declines, as does end of input) and the answer posted, and the
turn that carries it out is followed the same way. From a pipe, every line is one message.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.text import Text

from agent.console.eventstream import ConversationEvents, StreamEvent
from agent.console.gatewayclient import GatewayClient, GatewayError
from agent.console.rendering import event_line

CONFIRM_PROMPT = "confirm? [y/N] "
USER_PROMPT = "you> "
QUIT_WORDS = frozenset({"exit", "quit", "/exit", "/quit"})


def new_message_id() -> str:
    """A client idempotency key for one user turn (valid as `spec.messages[].id`)."""
    return f"cli-{uuid.uuid4().hex[:16]}"


@dataclass
class ChatIO:
    """Where the chat reads lines and writes output; `interactive` when both ends are a terminal."""

    console: Console
    read: Callable[[str], str | None]
    interactive: bool


@dataclass
class TurnResult:
    """How one followed turn ended: its reply, a proposal waiting for an answer, a failure."""

    reply: str | None = None
    pending: dict[str, Any] | None = None
    failure: str | None = None
    resources: list[str] = field(default_factory=list)


class ChatSession:
    """One conversation (see the module docstring)."""

    def __init__(
        self,
        client: GatewayClient,
        io: ChatIO,
        *,
        namespace: str | None = None,
        new_id: Callable[[], str] = new_message_id,
        stream_sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.client = client
        self.io = io
        self.namespace = namespace
        self.new_id = new_id
        self.stream_sleep = stream_sleep
        self.name = ""
        self.last_id = 0
        self.failures = 0

    def open(self, name: str | None = None) -> dict[str, Any] | None:
        """Start a conversation, or resume `name` after its newest event; a proposal it is waiting on."""
        if name is None:
            created = self.client.create_conversation(self.namespace)
            self.name = created.name
            self.note(f"Conversation {created.name} (correlation ID {created.correlation_id})")
            return None
        state = self.client.conversation(name, self.namespace)
        self.name, self.last_id = state.name, state.last_event_id
        self.note(f"Resuming conversation {state.name} (correlation ID {state.correlation_id}), {state.state}")
        if state.pending is None:
            return None
        return {"pendingId": state.pending.pending_id, "tool": state.pending.tool, "summary": state.pending.summary}

    def note(self, text: str, style: str = "dim") -> None:
        self.io.console.print(Text(text, style=style if self.io.interactive else ""))

    def _events(self) -> Generator[StreamEvent, None, None]:
        kwargs: dict[str, Any] = {"last_id": self.last_id, "namespace": self.namespace}
        if self.stream_sleep is not None:
            kwargs["sleep"] = self.stream_sleep
        for event in ConversationEvents(self.client, self.name, **kwargs):
            if event.id is not None:
                self.last_id = event.id
            yield event

    @contextlib.contextmanager
    def _working(self) -> Iterator[Callable[[str], None]]:
        if not (self.io.interactive and self.io.console.is_terminal):
            yield lambda _: None
            return
        with self.io.console.status("Ringpilot is working…", spinner="dots") as status:
            yield lambda text: status.update(text)

    def follow(self, message_id: str) -> TurnResult:
        """Show the events of turn `message_id` until it completes or fails for good."""
        result = TurnResult()
        stream = self._events()
        try:
            with self._working() as show:
                for event in stream:
                    if self._handle(event, message_id, result, show):
                        break
        finally:
            stream.close()
        return result

    def _handle(self, event: StreamEvent, message_id: str, result: TurnResult, show: Callable[[str], None]) -> bool:
        """Show one event; True when it ends the turn being followed."""
        data, ours = event.data, event.data.get("messageId") == message_id
        if event.event == "tool.started":
            show(f"Running {data.get('tool')}…")
        elif event.event == "confirmation.required":
            result.pending = data
        elif event.event == "resource.created":
            result.resources.append(f"{data.get('kind')} {data.get('namespace')}/{data.get('name')}")
        elif event.event == "assistant.message" and ours:
            result.reply = str(data.get("text") or "")
        elif event.event == "turn.failed" and ours and not data.get("retryAt"):
            result.failure = f"{data.get('reason')}: {data.get('message')}"
        line = event_line(event, interactive=self.io.interactive)
        if line is not None:
            self.io.console.print(line)
        if event.event == "turn.completed" and ours:
            return True
        return event.event == "turn.failed" and ours and not data.get("retryAt")

    def ask(self, pending: dict[str, Any]) -> TurnResult | None:
        """Ask about a proposal and post the answer; the result of the turn that answers it."""
        self.io.console.print(Text(f"Proposed: {pending.get('summary')}", style="bold" if self.io.interactive else ""))
        answer = self.io.read(CONFIRM_PROMPT)
        yes = (answer or "").strip().lower() in ("y", "yes")
        if not self.io.interactive:
            self.io.console.print(Text(CONFIRM_PROMPT + ("yes" if yes else "no")))
        message_id = self.client.confirm(self.name, str(pending.get("pendingId")), yes, self.namespace)
        if message_id is None:
            return None
        return self.follow(message_id)

    def say(self, text: str) -> None:
        """Post one user turn and follow it, and any proposal it leads to, to the end."""
        message_id = self.client.post_message(self.name, text, self.new_id(), self.namespace)
        result: TurnResult | None = self.follow(message_id)
        while result is not None:
            if result.failure is not None:
                self.failures += 1
            if result.pending is None:
                return
            result = self.ask(result.pending)

    def run(self, pending: dict[str, Any] | None = None) -> int:
        """Read lines until end of input; 0, or 1 when a turn failed or was refused."""
        while pending is not None:  # a resumed conversation waiting for an answer
            answered = self.ask(pending)
            pending = answered.pending if answered is not None else None
        while True:
            line = self.io.read(USER_PROMPT)
            if line is None or (self.io.interactive and line.strip().lower() in QUIT_WORDS):
                return 1 if self.failures else 0
            if not line.strip():
                continue
            try:
                self.say(line.strip())
            except GatewayError as error:
                if error.status == 401:
                    raise
                self.failures += 1
                self.io.console.print(Text(f"The gateway refused: {error}", style="red" if self.io.interactive else ""))
            except KeyboardInterrupt:
                if not self.io.interactive:
                    raise
                self._cancel()

    def _cancel(self) -> None:
        try:
            self.client.cancel(self.name, self.namespace)
        except GatewayError as error:
            self.note(f"Could not cancel: {error}")
            return
        self.note("Cancelled (a model call already running still finishes).")
