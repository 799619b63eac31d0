"""`ringpilot chat`, `approve`, `tasks` and `trace`: the console's subcommands, talking to the gateway.

Each `setup_*` is a `ringpilot.commands` entry point: it adds its parser to `ringpilot`'s
subparsers and returns the function that runs it (exit 0 on success, 1 when the gateway refused or
failed, 2 for a usage or configuration problem). The heavy imports (httpx, rich) happen only when a
command runs, so `ringpilot --help` stays fast. Connection options: `connection.py`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

Command = Callable[[argparse.Namespace], int]
#: Width of the output when it is not a terminal and COLUMNS is unset (tables are wide).
PIPE_WIDTH = 200


def _connection_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gateway", metavar="URL", help="the gateway (default: $RINGPILOT_GATEWAY_URL)")
    parser.add_argument(
        "--token-file", metavar="PATH", help="file holding the bearer token (default: $RINGPILOT_TOKEN, kubeconfig)"
    )


def _ring(value: str) -> int:
    ring = int(value)
    if not 0 <= ring <= 4:
        raise argparse.ArgumentTypeError(f"{value} is not a ring (0-4)")
    return ring


def _rate(value: str) -> float:
    rate = float(value)
    if not 0 <= rate <= 1:
        raise argparse.ArgumentTypeError(f"{value} is not a success rate between 0 and 1")
    return rate


def make_console(stream: Any = None) -> Any:
    """A rich Console on stdout; wide when stdout is not a terminal, so tables are not squeezed."""
    from rich.console import Console

    out = stream if stream is not None else sys.stdout
    width = None if out.isatty() or os.environ.get("COLUMNS") else PIPE_WIDTH
    return Console(file=out, highlight=False, width=width)


def _fail(command: str, error: Exception, code: int = 1) -> int:
    print(f"ringpilot {command}: {error}", file=sys.stderr)
    return code


def _client(args: argparse.Namespace) -> Any:
    from agent.console.connection import resolve_target
    from agent.console.gatewayclient import GatewayClient

    return GatewayClient(resolve_target(args.gateway, args.token_file))


def _guarded(command: str, body: Callable[[argparse.Namespace], int]) -> Command:
    def run(args: argparse.Namespace) -> int:
        from agent.console.connection import ConnectionProblem
        from agent.console.gatewayclient import GatewayError

        try:
            return body(args)
        except ConnectionProblem as error:
            return _fail(command, error, 2)
        except GatewayError as error:
            return _fail(command, error)
        except KeyboardInterrupt:
            return 130

    return run


def run_chat(args: argparse.Namespace) -> int:
    from rich.text import Text

    from agent.console.chatting import ChatIO, ChatSession

    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    console = make_console()

    def from_terminal(prompt: str) -> str | None:
        try:
            line: str = console.input(Text(prompt))  # a Text: "[y/N]" is not markup
        except EOFError:
            return None
        return line

    def from_pipe(_: str) -> str | None:
        line = sys.stdin.readline()
        return line.rstrip("\n") if line else None

    with _client(args) as client:
        session = ChatSession(
            client, ChatIO(console, from_terminal if interactive else from_pipe, interactive), namespace=args.namespace
        )
        pending = session.open(args.conversation)
        return session.run(pending)


def setup_chat(subparsers: Any) -> Command:
    parser = subparsers.add_parser("chat", help="chat with Ringpilot through the gateway (lines from stdin if piped)")
    _connection_args(parser)
    parser.add_argument("--conversation", metavar="NAME", help="resume this conversation instead of starting one")
    parser.add_argument("--namespace", help="namespace of the conversation (default: the gateway's)")
    return _guarded("chat", run_chat)


def run_approve(args: argparse.Namespace) -> int:
    conditions: dict[str, Any] = {}
    if args.max_ring is not None:
        conditions["maxRing"] = args.max_ring
    if args.min_success_rate is not None:
        conditions["minSuccessRate"] = args.min_success_rate
    if args.reject and conditions:
        return _fail("approve", ValueError("--max-ring and --min-success-rate are conditions of an approval"), 2)
    with _client(args) as client:
        found = [change for change in client.change_requests(args.namespace) if change.name == args.change]
        if not found:
            where = f" in {args.namespace}" if args.namespace else ""
            return _fail("approve", LookupError(f"no ChangeRequest {args.change}{where} that you may read"))
        if len(found) > 1:
            spaces = ", ".join(sorted(str(change.namespace) for change in found))
            return _fail("approve", LookupError(f"{args.change} exists in {spaces}: pass --namespace"), 2)
        change = found[0]
        recorded = client.decide(
            change.name,
            approve=not args.reject,
            plan_digest=change.plan_digest,
            conditions=conditions or None,
            comment=args.comment,
            namespace=change.namespace,
        )
    verb = "Rejected" if args.reject else "Approved"
    print(f"{verb} {change.namespace}/{change.name} (plan {change.plan_digest[:12]}): phase {recorded.phase}")
    return 0


def setup_approve(subparsers: Any) -> Command:
    parser = subparsers.add_parser("approve", help="approve (or --reject) a ChangeRequest, bound to its plan digest")
    _connection_args(parser)
    parser.add_argument("change", metavar="CHANGE", help="name of the ChangeRequest")
    parser.add_argument("--reject", action="store_true", help="reject instead of approving")
    parser.add_argument("--max-ring", type=_ring, metavar="N", help="approve only up to ring N")
    parser.add_argument("--min-success-rate", type=_rate, metavar="X", help="gate every ring at success rate X")
    parser.add_argument("--comment", help="why (kept with the decision)")
    parser.add_argument("--namespace", help="namespace of the ChangeRequest (default: wherever it is)")
    return _guarded("approve", run_approve)


def watch_tasks(
    fetch: Callable[[], Any], console: Any, interval_seconds: float, sleep: Callable[[float], None], rounds: int | None
) -> int:
    """Refresh the task table in place every `interval_seconds`, `rounds` times (None: until Ctrl-C)."""
    from rich.live import Live
    from rich.text import Text

    from agent.console.gatewayclient import GatewayError
    from agent.console.rendering import task_table

    def frame() -> Any:
        try:
            return task_table(fetch())
        except GatewayError as error:
            if error.status in (401, 403):
                raise
            return Text(f"The gateway did not answer ({error}); trying again", style="yellow")

    done = 0
    with Live(frame(), console=console, auto_refresh=False) as live:
        while rounds is None or done < rounds:
            sleep(interval_seconds)
            live.update(frame(), refresh=True)
            done += 1
    return 0


def run_tasks(args: argparse.Namespace) -> int:
    import time

    from agent.console.rendering import task_table

    console = make_console()
    with _client(args) as client:

        def fetch() -> Any:
            return client.tasks(namespace=args.namespace, app=args.app, phase=args.phase)

        if args.watch:
            try:
                return watch_tasks(fetch, console, args.interval, time.sleep, None)
            except KeyboardInterrupt:
                return 0
        console.print(task_table(fetch()))
    return 0


def setup_tasks(subparsers: Any) -> Command:
    parser = subparsers.add_parser("tasks", help="DeploymentTasks with a progress bar per ring")
    _connection_args(parser)
    parser.add_argument("-w", "--watch", action="store_true", help="refresh the table live (Ctrl-C stops)")
    parser.add_argument("--interval", type=float, default=2.0, metavar="SECONDS", help="watch refresh (default 2)")
    parser.add_argument("--namespace", help="only this namespace (default: all)")
    parser.add_argument("--app", help="only this app")
    parser.add_argument("--phase", help="only tasks in this phase, e.g. Deploying")
    return _guarded("tasks", run_tasks)


def run_trace(args: argparse.Namespace) -> int:
    from agent.console.rendering import trace_view

    with _client(args) as client:
        trace = client.trace(args.correlation_id)
    if args.json:
        print(trace.model_dump_json(by_alias=True, indent=2))
    else:
        make_console().print(trace_view(trace))
    return 0


def setup_trace(subparsers: Any) -> Command:
    parser = subparsers.add_parser("trace", help="everything one correlation ID touched, in time order")
    _connection_args(parser)
    parser.add_argument("correlation_id", metavar="ID", help="the correlation ID (on every object, audit row, turn)")
    parser.add_argument("--json", action="store_true", help="print the trace as JSON")
    return _guarded("trace", run_trace)
