"""Trace context through dramatiq messages, and the telemetry of each step a worker runs.

`TraceContext` is a dramatiq middleware in every broker (controller/messaging/broker.py): before a
message is enqueued it writes the current W3C trace context into its options; before a worker processes
it, it opens the step's span as a child of that context (with the message's correlation ID), and after,
it closes the span and observes the step's duration. So a reconcile, its steps and their calls form one trace.
"""

from __future__ import annotations

from typing import Any

from dramatiq import Broker, Message, Middleware
from dramatiq.broker import MessageProxy

from controller.telemetry import tracing
from controller.telemetry.scopes import StepScope, finish_step, start_step


class TraceContext(Middleware):
    """See the module docstring. Open step scopes wait between the two hooks keyed by the delivery (the
    message proxy), not the message id: a re-sent step can be delivered again while the first delivery
    still runs, with the same id, and each delivery is a step of its own."""

    def __init__(self) -> None:
        self.open: dict[int, StepScope] = {}

    def before_enqueue(self, broker: Broker, message: Message[Any], delay: int | None) -> None:
        carrier = tracing.inject_context({})
        if carrier:
            message.options[tracing.TRACE_OPTION] = carrier

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        self.open[id(message)] = start_step(message.actor_name, message.queue_name, message.options)

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any | None = None,
        exception: BaseException | None = None,
    ) -> None:
        scope = self.open.pop(id(message), None)
        if scope is not None:
            finish_step(scope, exception)

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        self.after_process_message(broker, message)
