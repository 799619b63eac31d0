"""OpenTelemetry tracing: the tracer provider, spans that carry the correlation ID, and context propagation.

`setup_tracing(service)` installs an SDK tracer provider once per process (so trace ids reach logs and
audit rows); spans are exported over OTLP only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and
`OTEL_SDK_DISABLED=true` leaves the no-op provider. With no exporter and no `OTEL_TRACES_SAMPLER`, spans
are not recorded (`recording_sampler`): each still has a trace id for logs, audit rows and propagation,
but nothing pays for attributes and events that nobody will read. `inject_context`/`extract_context` carry W3C trace
context through a dict (dramatiq message options); the correlation ID lives in a contextvar.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace

from controller.telemetry.redaction import record_error

logger = logging.getLogger(__name__)

#: The span attribute naming the correlation ID on every Ringpilot span.
CORRELATION_ATTRIBUTE = "ringpilot.correlation_id"
#: The key of the trace context in dramatiq message options.
TRACE_OPTION = "trace_context"
TRACER_NAME = "ringpilot"

_correlation: ContextVar[str] = ContextVar("ringpilot_correlation_id", default="")
_installed = False


def exporting(environ: Mapping[str, str]) -> bool:
    """Whether spans leave the process (an OTLP endpoint is configured)."""
    return bool(environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def recording_sampler(environ: Mapping[str, str]) -> Any:
    """The sampler of the provider: the SDK's choice from `OTEL_TRACES_SAMPLER` when exporting or when set,
    else parent-based always-off (a span is recorded only if a caller's trace context asks for it)."""
    if exporting(environ) or environ.get("OTEL_TRACES_SAMPLER"):
        return None
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased

    return ParentBased(ALWAYS_OFF)


def instrument_libraries(*, on: bool = True) -> None:
    """The official instrumentations of psycopg (a span per SQL statement, without its parameters) and redis
    (a span per command), switched on when spans are exported: they show where a step's time goes.
    `on=False` switches them off again."""
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    for instrumentor in (PsycopgInstrumentor(), RedisInstrumentor()):
        if on and not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()
        elif not on and instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()


def setup_tracing(service: str) -> bool:
    """Install the SDK tracer provider for `service` once; True if this call installed it."""
    global _installed
    if _installed or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider(
        resource=Resource.create({"service.name": service}), sampler=recording_sampler(os.environ)
    )
    if exporting(os.environ):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        instrument_libraries()
        logger.info("Exporting traces of %s over OTLP", service)
    trace.set_tracer_provider(provider)
    _installed = True
    return True


_tracers: dict[int, trace.Tracer] = {}


def tracer() -> trace.Tracer:
    """Ringpilot's tracer from the current provider, made once per provider (the SDK builds a new one per call)."""
    provider = trace.get_tracer_provider()
    found = _tracers.get(id(provider))
    if found is None:
        found = _tracers[id(provider)] = provider.get_tracer(TRACER_NAME)
    return found


def bind_correlation(correlation_id: str) -> None:
    """Make `correlation_id` the one of this context (logs) and of the current span (every span `span` and
    the step scope open is stamped with the ID in scope then, so an ID already in scope is on it)."""
    if not correlation_id or _correlation.get() == correlation_id:
        return
    _correlation.set(correlation_id)
    trace.get_current_span().set_attribute(CORRELATION_ATTRIBUTE, correlation_id)


def current_correlation() -> str:
    return _correlation.get()


def current_trace_id() -> str | None:
    """The 32-hex-digit id of the current trace, or None outside a recorded span."""
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


def current_span_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.span_id, "016x") if ctx.is_valid else None


@contextmanager
def span(name: str, correlation_id: str = "", *, record_errors: bool = True, **attributes: Any) -> Iterator[trace.Span]:
    """A span named `name`, current for the block, stamped with the correlation ID (given or in scope).

    An exception marks the span failed with its redacted message; with `record_errors=False` it leaves
    the span alone (the caller decides).
    """
    token = _correlation.set(correlation_id) if correlation_id else None
    cid = correlation_id or _correlation.get()
    if cid:
        attributes[CORRELATION_ATTRIBUTE] = cid
    current = tracer().start_span(name, attributes={k: v for k, v in attributes.items() if v is not None})
    attached = otel_context.attach(trace.set_span_in_context(current))
    try:
        yield current
    except BaseException as error:
        if record_errors:
            record_error(current, error)
        raise
    finally:
        current.end()
        otel_context.detach(attached)
        if token is not None:
            _correlation.reset(token)


def inject_context(carrier: dict[str, Any]) -> dict[str, Any]:
    """Write the current trace context (traceparent, tracestate) into `carrier`; returns it."""
    propagate.inject(carrier)
    return carrier


def extract_context(carrier: Mapping[str, Any] | None) -> otel_context.Context:
    return propagate.extract(dict(carrier or {}))


def attach(ctx: otel_context.Context) -> object:
    return otel_context.attach(ctx)


def detach(token: object) -> None:
    otel_context.detach(token)  # type: ignore[arg-type]


def set_correlation(correlation_id: str) -> object:
    """Set the contextvar alone (no span); returns the token for `reset_correlation`."""
    return _correlation.set(correlation_id)


def reset_correlation(token: object) -> None:
    _correlation.reset(token)  # type: ignore[arg-type]


class TracedProxy:
    """Wraps the coroutine methods of `target` named in `spanned` in a span `<prefix>.<method>` (e.g. the plane
    calls that change a target); every other attribute is the target's own."""

    def __init__(self, target: Any, prefix: str, spanned: Collection[str]) -> None:
        self._target = target
        self._prefix = prefix
        self._spanned = spanned

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if name.startswith("_") or not inspect.iscoroutinefunction(value):
            return value
        if name not in self._spanned:
            setattr(self, name, value)  # found in the instance from now on, like a traced method
            return value
        what = f"{self._prefix}.{name}"

        @functools.wraps(value)
        async def traced(*args: Any, **kwargs: Any) -> Any:
            with span(what):
                return await value(*args, **kwargs)

        setattr(self, name, traced)  # found in the instance from now on: __getattr__ runs once per method
        return traced
