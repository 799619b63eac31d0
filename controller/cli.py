"""The `ringpilot` command: one CLI for every process of Ringpilot.

Controller-side subcommands live here; other packages plug theirs in through the
`ringpilot.commands` entry-point group (so this module never imports `agent`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from pathlib import Path

from controller.settings import ControllerSettings, SettingsError, WorkerSettings, load_settings

Command = Callable[[argparse.Namespace], int]


def _setup_logging(level: str = "INFO", fmt: str = "plain") -> None:
    from controller.telemetry.logformat import configure_logging

    configure_logging(level, fmt)


def cmd_crds(args: argparse.Namespace) -> int:
    from controller.api.crdgen import write_crds

    for path in write_crds(Path(args.out)):
        print(path)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from controller.storage.migrating import migrate

    settings = load_settings(ControllerSettings)
    if not settings.database_url:
        raise SettingsError("RINGPILOT_DATABASE_URL: required by `ringpilot migrate`")
    applied = migrate(settings.database_url)
    print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
    return 0


def cmd_controller(args: argparse.Namespace) -> int:
    from controller.operator.running import run

    settings = load_settings(ControllerSettings)
    _setup_logging(settings.log_level, settings.log_format)
    run(settings)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    settings = load_settings(WorkerSettings)
    if not settings.redis_url:
        raise SettingsError("RINGPILOT_REDIS_URL: required by `ringpilot worker`")
    # prometheus_client reads PROMETHEUS_MULTIPROC_DIR when it is first imported, so before the worker's modules.
    from controller.telemetry.multiproc import prepare_worker_metrics

    prepare_worker_metrics(settings.data_dir, settings.metrics_port)
    from controller.worker import boot

    _setup_logging(settings.log_level, settings.log_format)
    return boot.run(settings)


def cmd_emulator(args: argparse.Namespace) -> int:
    from controller.devkit.emulator.__main__ import main as emulator_main

    return emulator_main(list(args.rest))


def cmd_dev(args: argparse.Namespace) -> int:
    from controller.devkit.stack import run_dev

    return run_dev(Path(args.data_dir), api_port=args.port)


def cmd_kubelet(args: argparse.Namespace) -> int:
    from controller.devkit.kubelet import run_kubelet

    return run_kubelet(args.kubeconfig)


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Command]]:
    parser = argparse.ArgumentParser(prog="ringpilot", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    commands: dict[str, Command] = {}

    p = sub.add_parser("crds", help="write crds/*.yaml from the models")
    p.add_argument("--out", default="crds", help="directory to write (default: crds)")
    commands["crds"] = cmd_crds
    sub.add_parser("migrate", help="apply database migrations (RINGPILOT_DATABASE_URL)")
    commands["migrate"] = cmd_migrate
    sub.add_parser("controller", help="run the operator (Kopf)")
    commands["controller"] = cmd_controller
    sub.add_parser("worker", help="run dramatiq workers for every slow step")
    commands["worker"] = cmd_worker
    p = sub.add_parser("dev", help="the whole system on this machine, on embedded defaults")
    p.add_argument("--data-dir", default=".ringpilot", help="state kept across restarts (default: ./.ringpilot)")
    p.add_argument("--port", type=int, default=0, help="port of the API emulator (default: any free)")
    commands["dev"] = cmd_dev
    p = sub.add_parser("emulator", help="run the Kubernetes API emulator alone", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    commands["emulator"] = cmd_emulator
    p = sub.add_parser("kubelet", help="run the simulated kubelet (dev and tests only)")
    p.add_argument("--kubeconfig", required=True)
    commands["kubelet"] = cmd_kubelet

    for ep in entry_points(group="ringpilot.commands"):
        setup = ep.load()
        commands[ep.name] = setup(sub)
    return parser, commands


def main(argv: Sequence[str] | None = None) -> int:
    parser, commands = build_parser()
    args = parser.parse_args(argv)
    try:
        return commands[args.command](args)
    except SettingsError as error:
        print(f"ringpilot {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
