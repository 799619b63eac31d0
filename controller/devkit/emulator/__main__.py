"""Run the Kubernetes API emulator standalone.

`python -m controller.devkit.emulator --host 127.0.0.1 --port 0 --kubeconfig PATH [--state PATH]` serves until
SIGINT/SIGTERM, prints the URL on stdout, and writes a kubeconfig pointing at it. `--token-file` turns on
authentication and RBAC, `--tls-cert-file/--tls-key-file` HTTPS; `--webhook-service NS/NAME=PORT` sends a
webhook Service's calls to a loopback port.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from .authn import AuthConfig
from .server import EmulatorServer, ServingCert
from .webhooks import ServicePorts


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m controller.devkit.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    parser.add_argument("--kubeconfig", help="write a kubeconfig for the emulator to this path")
    parser.add_argument("--user", default="ringpilot-dev", help="user (and bearer token) in the kubeconfig")
    parser.add_argument("--state", help="JSON snapshot file to load at start and save while running")
    parser.add_argument("--bookmark-interval-seconds", type=float, default=60.0)
    parser.add_argument("--verbose", action="store_true", help="log every request")
    parser.add_argument("--token-file", help='static token CSV (token,user,uid,"groups"); turns on auth and RBAC')
    parser.add_argument("--token", help="bearer token to put in the kubeconfig (default: the user name)")
    parser.add_argument(
        "--webhook-service",
        action="append",
        default=[],
        metavar="NS/NAME=PORT",
        help="call the webhook Service NS/NAME on 127.0.0.1:PORT (repeatable)",
    )
    parser.add_argument("--tls-cert-file", help="serve HTTPS with this PEM certificate (kubectl sends tokens only so)")
    parser.add_argument("--tls-key-file", help="the PEM key of --tls-cert-file")
    parser.add_argument("--tls-ca-file", help="CA to put in the kubeconfig for --tls-cert-file")
    return parser.parse_args(argv)


def serving_cert(args: argparse.Namespace) -> ServingCert | None:
    if not args.tls_cert_file:
        return None
    return ServingCert(cert_file=args.tls_cert_file, key_file=args.tls_key_file, ca_file=args.tls_ca_file)


def service_ports(specs: list[str]) -> ServicePorts:
    """`ns/name=port` arguments as the `service_ports` mapping of `EmulatorServer`."""
    ports: ServicePorts = {}
    for spec in specs:
        service, _, port = spec.partition("=")
        namespace, _, name = service.partition("/")
        if not namespace or not name or not port.isdigit():
            raise SystemExit(f"--webhook-service wants NS/NAME=PORT, not {spec!r}")
        ports[(namespace, name)] = int(port)
    return ports


async def serve(args: argparse.Namespace, stop: asyncio.Event | None = None) -> None:
    """Serve until `stop` is set or SIGINT/SIGTERM arrives; the final snapshot is written on the way out.

    Further SIGINT/SIGTERMs while stopping are absorbed, so they cannot cut the final snapshot short.
    """
    server = EmulatorServer(
        args.host,
        args.port,
        state_path=args.state,
        access_log=args.verbose,
        bookmark_interval_seconds=args.bookmark_interval_seconds,
        auth=AuthConfig.from_token_file(args.token_file) if args.token_file else None,
        service_ports=service_ports(args.webhook_service),
        serving_cert=serving_cert(args),
    )
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    # The handlers stay until the final snapshot is written: a second SIGTERM is usual (under `ringpilot
    # dev` the kernel's parent-death signal and the reaper's both come when it dies), and with the default
    # disposition restored it would kill us half-way through `server.stop()`, losing acknowledged writes.
    for sig in signals:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await server.start()
        try:
            if args.kubeconfig:
                server.write_kubeconfig(args.kubeconfig, user=args.user, token=args.token)
            print(server.url, flush=True)
            await stop.wait()
        finally:
            await server.stop()
    finally:
        for sig in signals:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
