"""What the CLI prints: chat event lines, the task table with a bar per ring, and a trace in time order."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from rich.console import Console, RenderableType

from agent.console.eventstream import StreamEvent
from agent.console.rendering import event_line, task_table, trace_view
from agent.gateway.consoleviews import RingSummary, TaskList, TaskSummary, Trace, TraceEntry

T0 = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)


def shown(renderable: RenderableType | None, width: int = 160) -> str:
    console = Console(file=io.StringIO(), width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def ev(event: str, **data: object) -> StreamEvent:
    return StreamEvent(id=1, event=event, data=data)


def test_a_reply_is_printed_as_text_never_as_markup() -> None:
    reply = ev("assistant.message", messageId="m1", text="[bold red]rm -rf[/] is [link=http://x]safe[/link]")
    assert shown(event_line(reply, interactive=False)).strip() == "[bold red]rm -rf[/] is [link=http://x]safe[/link]"
    line = event_line(reply, interactive=True)
    assert line is not None
    assert line.plain == "ringpilot> [bold red]rm -rf[/] is [link=http://x]safe[/link]"


def test_tool_lines_only_in_a_terminal_and_a_failed_tool_is_marked() -> None:
    finished = ev("tool.finished", tool="deploy", outcome="denied", summary="publisher role required")
    assert event_line(finished, interactive=False) is None
    line = event_line(finished, interactive=True)
    assert line is not None and line.plain == "  ✗ deploy denied: publisher role required"
    ok = event_line(ev("tool.finished", tool="check_health", outcome="ok", summary="x" * 300), interactive=True)
    assert ok is not None and ok.plain.startswith("  ✓ check_health ok: ") and ok.plain.endswith("…")
    started = event_line(ev("tool.started", tool="check_health"), interactive=True)
    assert started is not None and started.plain == "  → check_health"
    assert event_line(ev("turn.started", messageId="m1"), interactive=True) is None
    assert event_line(ev("snapshot"), interactive=False) is None


def test_created_resources_and_failures_are_shown_in_a_pipe_too() -> None:
    created = event_line(
        ev("resource.created", kind="DeploymentTask", namespace="default", name="web-1-5"), interactive=False
    )
    assert created is not None and created.plain == "Created DeploymentTask default/web-1-5"
    later = ev(
        "turn.failed", messageId="m1", reason="LLMUnavailable", message="overloaded", retryAt="2026-12-01T13:00:05Z"
    )
    line = event_line(later, interactive=False)
    assert line is not None
    assert line.plain == "The turn failed for now (LLMUnavailable: overloaded); retrying at 2026-12-01T13:00:05Z"
    final = event_line(
        ev("turn.failed", messageId="m1", reason="Invalid", message="too long", retryAt=None), interactive=False
    )
    assert final is not None and final.plain == "The turn failed: Invalid: too long"


def task(name: str, rings: list[RingSummary], **fields: object) -> TaskSummary:
    base: dict[str, object] = {"name": name, "namespace": "default", "app": "web", "version": "1.5.0", "max_ring": 2}
    return TaskSummary.model_validate({**base, **fields, "rings": rings})


def test_the_task_table_has_a_bar_and_counts_per_ring() -> None:
    listing = TaskList(
        items=[
            task(
                "web-1-5",
                [
                    RingSummary(ring=0, targets=2, updated=2, healthy=2, gate="Passed"),
                    RingSummary(ring=1, targets=4, updated=1, healthy=1, failed=1, gate="Soaking"),
                    RingSummary(ring=2, targets=8),
                ],
                phase="Monitoring",
                current_step="Monitor",
                current_ring=1,
                progress="1/3",
            ),
            task("api-2", [RingSummary(ring=0, targets=3, rolled_back=True, gate="Failed")], action="Rollback"),
        ]
    )
    text = " ".join(shown(task_table(listing), width=200).split())  # columns are padded: compare words
    assert "default/web-1-5" in text and "web@1.5.0" in text and "Monitor (ring 1)" in text and "1/3" in text
    assert "R0 ━━━━━━━━━━━━━━━━ 2/2 updated, 2 healthy Passed" in text  # a full bar
    assert "R1 ━━━━" in text and "1/4 updated, 1 healthy, 1 failed Soaking" in text
    assert "0/8 updated, 0 healthy Pending" in text
    assert "web@1.5.0 (rollback)" in text and "RolledBack" in text
    assert shown(task_table(TaskList())).strip() == "No DeploymentTasks."


def test_a_trace_shows_its_ids_and_every_entry_in_the_order_given() -> None:
    trace = Trace(
        correlation_id="corr-1",
        trace_ids=["0af7651916cd43dd8448eb211c80319c", "4bf92f3577b34da6a3ce929d0e0e4736"],
        entries=[
            TraceEntry(
                at=T0,
                source="message",
                kind="Conversation",
                namespace="default",
                name="chat-1",
                what="user m1",
                actor="dev-publisher",
                detail="deploy web 1.5.0 to ring 0",
            ),
            TraceEntry(
                at=T0 + timedelta(seconds=1),
                source="audit",
                kind="DeploymentTask",
                namespace="default",
                name="web-1-5",
                what="StepStarted",
                actor="system:ringpilot",
                detail="Deploy ring 0",
                trace_id="0af7651916cd43dd8448eb211c80319c",
            ),
            TraceEntry(
                at=T0 + timedelta(seconds=2), source="claim", what="StepRun", detail="uid/Deploy/0/a1 by w1, ok"
            ),
        ],
    )
    text = shown(trace_view(trace), width=220)
    assert "Correlation ID: corr-1" in text
    assert "Trace IDs: 0af7651916cd43dd8448eb211c80319c, 4bf92f3577b34da6a3ce929d0e0e4736" in text
    lines = text.splitlines()
    order = [next(i for i, line in enumerate(lines) if word in line) for word in ("user m1", "StepStarted", "StepRun")]
    assert order == sorted(order)
    started = next(line for line in lines if "StepStarted" in line)
    assert "DeploymentTask default/web-1-5" in started and "0af76519" in started
    empty = shown(trace_view(Trace(correlation_id="nothing-here")))
    assert "Trace IDs: none recorded" in empty and "Nothing recorded under this correlation ID." in empty
