"""The telemetry of one unit of work: a reconcile, a worker step, a conversation turn.

Each scope opens a span stamped with the correlation ID, makes the ID current for log lines, and on exit
counts the unit and observes its duration under the result it came to. Callers mark a result the scope
cannot see (`mark_requeue`, `mark_turn`); a step's scope is opened and closed by two middleware hooks.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from opentelemetry import trace
from prometheus_client import Histogram

from controller.telemetry import metrics, tracing
from controller.telemetry.redaction import record_error

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class ReconcileScope:
    kind: str
    result: str = "success"


@dataclass
class TurnScope:
    provider: str = "none"
    outcome: str = "answered"


_reconcile: ContextVar[ReconcileScope | None] = ContextVar("ringpilot_reconcile_scope", default=None)
_turn: ContextVar[TurnScope | None] = ContextVar("ringpilot_turn_scope", default=None)


@contextmanager
def reconcile_scope(kind: str, namespace: str | None, name: str | None, correlation_id: str = "") -> Iterator[None]:
    """Span `reconcile <Kind>`; counts `ringpilot_reconcile_total{kind,result}` and its duration."""
    scope = ReconcileScope(kind)
    token = _reconcile.set(scope)
    started = time.perf_counter()
    attributes: dict[str, Any] = {"ringpilot.kind": kind, "k8s.namespace.name": namespace, "ringpilot.object": name}
    try:
        with tracing.span(f"reconcile {kind}", correlation_id, record_errors=False, **attributes) as current:
            try:
                yield
            except BaseException as error:
                if scope.result != "requeue":
                    scope.result = "error"
                    record_error(current, error)
                raise
    finally:
        _reconcile.reset(token)
        metrics.RECONCILES.labels(kind, scope.result).inc()
        metrics.RECONCILE_SECONDS.labels(kind).observe(time.perf_counter() - started)


def mark_requeue() -> None:
    """The reconcile in scope asked to be called again (its TemporaryError is not a failure)."""
    scope = _reconcile.get()
    if scope is not None:
        scope.result = "requeue"


@dataclass
class StepScope:
    """What `start_step` opened, for `finish_step` to close (on the same thread)."""

    step: str
    started: float
    span: trace.Span
    tokens: list[object] = field(default_factory=list)
    correlation_token: object | None = None


def start_step(step: str, queue: str, options: Mapping[str, Any]) -> StepScope:
    """Open the span of a worker step as a child of the trace context the message carries."""
    parent = tracing.extract_context(options.get(tracing.TRACE_OPTION))
    correlation_id = str(options.get("correlation_id") or "")
    attributes: dict[str, Any] = {"messaging.system": "dramatiq", "messaging.destination.name": queue}
    if correlation_id:
        attributes[tracing.CORRELATION_ATTRIBUTE] = correlation_id
    current = tracing.tracer().start_span(
        f"step {step}", context=parent, kind=trace.SpanKind.CONSUMER, attributes=attributes
    )
    scope = StepScope(step, time.perf_counter(), current)
    scope.tokens.append(tracing.attach(trace.set_span_in_context(current, parent)))
    if correlation_id:
        scope.correlation_token = tracing.set_correlation(correlation_id)
    return scope


def finish_step(scope: StepScope, error: BaseException | None) -> None:
    """Close a step's span and observe `ringpilot_step_duration_seconds{step,result}`."""
    if error is not None:
        record_error(scope.span, error)
    scope.span.end()
    if scope.correlation_token is not None:
        tracing.reset_correlation(scope.correlation_token)
    for token in reversed(scope.tokens):
        tracing.detach(token)
    result = "error" if error is not None else "ok"
    metrics.STEP_SECONDS.labels(scope.step, result).observe(time.perf_counter() - scope.started)


def traced_turn(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Span `chat turn` around one turn; counts `ringpilot_chat_turns_total{provider,outcome}`.

    A turn that returns False was delayed (the model was unavailable); one that raises is `error`.
    """

    @wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        scope = TurnScope()
        token = _turn.set(scope)
        started = time.perf_counter()
        try:
            attributes: dict[str, Any] = {"gen_ai.operation.name": "invoke_agent"}
            with tracing.span("chat turn", **attributes):
                try:
                    value = await fn(*args, **kwargs)
                except BaseException:
                    scope.outcome = "error"
                    raise
                if value is False:
                    scope.outcome = "delayed"
                return value
        finally:
            _turn.reset(token)
            metrics.CHAT_TURNS.labels(scope.provider, scope.outcome).inc()
            metrics.CHAT_TURN_SECONDS.labels(scope.provider, scope.outcome).observe(time.perf_counter() - started)

    return wrapper


def mark_turn(*, provider: str | None = None, outcome: str | None = None) -> None:
    """Tell the turn in scope which provider answered it, or how it ended (`answered`, `failed`)."""
    scope = _turn.get()
    if scope is None:
        return
    if provider is not None:
        scope.provider = provider
    if outcome is not None:
        scope.outcome = outcome


def traced_tool_call(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Span `execute_tool <tool>` around a tool call; counts `ringpilot_tool_calls_total{tool,outcome}`.

    Decorates `invoke(self, call, …)` and `execute(self, pending, …)`: the tool is the call's `name` or
    the proposal's `tool`; the outcome is the returned invocation's `outcome`.
    """

    @wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        target = args[1] if len(args) > 1 else None
        tool = str(getattr(target, "name", None) or getattr(target, "tool", None) or "unknown")
        attributes: dict[str, Any] = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool}
        outcome = "error"
        try:
            with tracing.span(f"execute_tool {tool}", **attributes) as current:
                value = await fn(*args, **kwargs)
                outcome = str(getattr(value, "outcome", "ok"))
                current.set_attribute("ringpilot.tool.outcome", outcome)
                return value
        finally:
            metrics.TOOL_CALLS.labels(tool, outcome).inc()

    return wrapper


def timed(name: str, histogram: Histogram) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Span `name` around an async function, observing its seconds in `histogram` (e.g. one drift sweep)."""

    def decorate(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            started = time.perf_counter()
            try:
                with tracing.span(name):
                    return await fn(*args, **kwargs)
            finally:
                histogram.observe(time.perf_counter() - started)

        return wrapper

    return decorate
