"""How the CLI shows things, with rich: chat events as lines, tasks as a table with a progress bar per
ring, and a trace as a time-ordered table under its correlation ID and trace ids.

Model and tool text is always a `Text` (never parsed as rich markup), so a reply cannot restyle or
hide the terminal's output. Everything here is pure: it builds renderables, the commands print them.
"""

from __future__ import annotations

from datetime import datetime

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from agent.console.eventstream import StreamEvent
from agent.gateway.consoleviews import RingSummary, TaskList, TaskSummary, Trace

BAR_WIDTH = 16
SUMMARY_CHARS = 120
#: Gate results and task phases, and how they are coloured in a terminal.
STYLES = {
    "Passed": "green",
    "Succeeded": "green",
    "Soaking": "cyan",
    "Deploying": "cyan",
    "Monitoring": "cyan",
    "AwaitingApproval": "yellow",
    "Failed": "red",
    "Rejected": "red",
    "Expired": "red",
    "RolledBack": "magenta",
    "RollingBack": "magenta",
}
_FAILED_OUTCOMES = frozenset({"error", "denied"})


def _short(text: object, limit: int = SUMMARY_CHARS) -> str:
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def event_line(event: StreamEvent, *, interactive: bool) -> Text | None:
    """The line one chat event prints, or None for events shown otherwise (spinner, prompt) or not at all."""
    data, name = event.data, event.event
    if name == "assistant.message":
        text = str(data.get("text") or "")
        if not interactive:
            return Text(text)
        return Text.assemble(("ringpilot> ", "bold cyan"), text)
    if name == "resource.created":
        return Text(f"Created {data.get('kind')} {data.get('namespace')}/{data.get('name')}", style="green")
    if name == "turn.failed":
        because = f"{data.get('reason')}: {_short(data.get('message'))}"
        if data.get("retryAt"):
            return Text(f"The turn failed for now ({because}); retrying at {data['retryAt']}", style="yellow")
        return Text(f"The turn failed: {because}", style="red")
    if not interactive:
        return None
    if name == "tool.started":
        return Text(f"  → {data.get('tool')}", style="dim")
    if name == "tool.finished":
        failed = data.get("outcome") in _FAILED_OUTCOMES
        mark, style = ("✗", "red") if failed else ("✓", "dim")
        return Text(f"  {mark} {data.get('tool')} {data.get('outcome')}: {_short(data.get('summary'))}", style=style)
    return None


def _styled(value: str | None) -> Text:
    return Text(value or "-", style=STYLES.get(value or "", ""))


def ring_bars(rings: list[RingSummary], current: int | None = None) -> Table:
    """One row per ring: its number, a bar of targets updated, the counts and the gate."""
    grid = Table.grid(padding=(0, 1))
    for ring in rings:
        total = max(ring.targets, 1)
        label = Text(f"R{ring.ring}", style="bold" if ring.ring == current else "")
        counts = f"{ring.updated}/{ring.targets} updated, {ring.healthy} healthy"
        if ring.failed:
            counts += f", {ring.failed} failed"
        gate = "RolledBack" if ring.rolled_back else ring.gate
        grid.add_row(
            label, ProgressBar(total=total, completed=min(ring.updated, total), width=BAR_WIDTH), counts, _styled(gate)
        )
    return grid


def _task_row(task: TaskSummary) -> list[RenderableType]:
    step = task.current_step or "-"
    if task.current_ring is not None and task.current_step:
        step = f"{task.current_step} (ring {task.current_ring})"
    return [
        Text(f"{task.namespace}/{task.name}"),
        Text(f"{task.app}@{task.version}" + (" (rollback)" if task.action == "Rollback" else "")),
        _styled(task.phase),
        Text(step),
        Text(task.progress or "-"),
        ring_bars(task.rings, task.current_ring),
    ]


def task_table(listing: TaskList) -> RenderableType:
    """The DeploymentTasks with a progress bar per ring, or a sentence when there are none."""
    if not listing.items:
        return Text("No DeploymentTasks.")
    table = Table(show_lines=True)
    for column in ("Task", "App", "Phase", "Step", "Progress", "Rings"):
        table.add_column(column, no_wrap=column != "Rings")
    for task in listing.items:
        table.add_row(*_task_row(task))
    return table


def _when(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def trace_view(trace: Trace) -> RenderableType:
    """The correlation ID, its trace ids, and every entry in time order."""
    ids = ", ".join(trace.trace_ids) if trace.trace_ids else "none recorded"
    header = Text.assemble(("Correlation ID: ", "bold"), trace.correlation_id, "\n", ("Trace IDs: ", "bold"), ids)
    if not trace.entries:
        return Group(header, Text("Nothing recorded under this correlation ID."))
    table = Table()
    for column in ("Time", "Source", "Object", "What", "Actor", "Detail", "Trace"):
        table.add_column(column, no_wrap=column in ("Time", "Source", "Trace"))
    for entry in trace.entries:
        where = f"{entry.kind} {entry.namespace}/{entry.name}" if entry.namespace else (entry.kind or "")
        if entry.name and not entry.namespace:
            where = f"{entry.kind or ''} {entry.name}".strip()
        table.add_row(
            _when(entry.at),
            entry.source,
            Text(where),
            Text(entry.what),
            Text(entry.actor or ""),
            Text(entry.detail),
            (entry.trace_id or "")[:8],
        )
    return Group(header, table)
