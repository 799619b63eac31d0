"""The telemetry of one model request: a GenAI span, token and request counters.

`observed_completion` wraps a provider's `complete`: the span `chat <model>` carries the GenAI semantic
conventions (gen_ai.system, gen_ai.request.model, gen_ai.usage.input_tokens/output_tokens, finish
reasons) and never the prompt or the reply; the turn in scope learns which provider answered it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from functools import wraps
from typing import Any, ParamSpec

from opentelemetry.trace import SpanKind, Status, StatusCode

from agent.errors import Unavailable
from agent.llm.base import Completion, CompletionRequest
from controller.telemetry import metrics, tracing
from controller.telemetry.scopes import mark_turn

P = ParamSpec("P")


def observed_completion(
    fn: Callable[P, Coroutine[Any, Any, Completion]],
) -> Callable[P, Coroutine[Any, Any, Completion]]:
    """Decorate `complete(self, request)` of a provider with `name` and `model` attributes."""

    @wraps(fn)
    async def complete(*args: P.args, **kwargs: P.kwargs) -> Completion:
        self: Any = args[0]
        request: CompletionRequest = kwargs.get("request") or args[1]  # type: ignore[assignment]
        provider, model = str(self.name), str(self.model)
        mark_turn(provider=provider)
        attributes: dict[str, Any] = {
            "gen_ai.system": provider,
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": model,
            "gen_ai.request.max_tokens": request.max_tokens,
        }
        started = time.perf_counter()
        with tracing.tracer().start_as_current_span(
            f"chat {model}", kind=SpanKind.CLIENT, attributes=attributes, record_exception=False
        ) as current:
            correlation_id = tracing.current_correlation()
            if correlation_id:
                current.set_attribute(tracing.CORRELATION_ATTRIBUTE, correlation_id)
            try:
                completion = await fn(*args, **kwargs)
            except Exception as error:
                outcome = "unavailable" if isinstance(error, Unavailable) else "failed"
                current.set_attribute("error.type", type(error).__name__)
                current.set_status(Status(StatusCode.ERROR, type(error).__name__))
                metrics.LLM_REQUESTS.labels(provider, model, outcome).inc()
                raise
            finally:
                metrics.LLM_REQUEST_SECONDS.labels(provider, model).observe(time.perf_counter() - started)
            usage = completion.usage
            current.set_attribute("gen_ai.usage.input_tokens", usage.input_tokens)
            current.set_attribute("gen_ai.usage.output_tokens", usage.output_tokens)
            current.set_attribute("gen_ai.response.finish_reasons", [completion.stop_reason])
        metrics.LLM_REQUESTS.labels(provider, model, "ok").inc()
        metrics.LLM_TOKENS.labels(provider, model, "input").inc(usage.input_tokens)
        metrics.LLM_TOKENS.labels(provider, model, "output").inc(usage.output_tokens)
        return completion

    return complete
