"""`EmulatorServer`: the emulator on a loopback port, in the caller's loop or its own thread; snapshots.

Async: `await server.start()` / `stop()`; blocking: `with EmulatorServer() as s:` (own thread and loop).
Both give `s.url`, `s.write_kubeconfig(path)`, `s.apply_crd(crd)`; `Snapshots` persists to `state_path`;
`auth=AuthConfig(...)` turns on tokens and RBAC. Used by `__main__.py`, the test fixtures and `ringpilot dev`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import ssl
import tempfile
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import yaml
from aiohttp import web
from pydantic import BaseModel, ConfigDict

from .authn import AuthConfig
from .endpoints import ApiEndpoints
from .lifecycle import CRDS
from .negotiation import RequestRecord
from .preparing import WriteOptions
from .rbacdefaults import default_policy
from .verbs import Cluster
from .webhooks import ServicePorts

Json = dict[str, Any]
T = TypeVar("T")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
log = logging.getLogger(__name__)
FORMAT = "ringpilot.dev/emulator-snapshot/v1"


class Snapshots:
    """Reads and writes the snapshot of one `Cluster` at `path`."""

    def __init__(self, cluster: Cluster, path: str | os.PathLike[str], interval_seconds: float = 1.0) -> None:
        self.cluster = cluster
        self.path = Path(path)
        self.interval_seconds = interval_seconds

    def load(self) -> bool:
        """Restore the snapshot if the file exists; returns whether it did."""
        if not self.path.exists():
            return False
        data = json.loads(self.path.read_text())
        if data.get("format") != FORMAT:
            raise ValueError(f"{self.path} is not an emulator snapshot (format {data.get('format')!r})")
        objects = [((entry["group"], entry["resource"]), entry["object"]) for entry in data["objects"]]
        for key, obj in objects:
            if key == CRDS:
                self.cluster.registry.register_crd(obj)
        self.cluster.store.load(int(data["resourceVersion"]), objects)
        log.info("Loaded %d objects from %s at resourceVersion %s", len(objects), self.path, data["resourceVersion"])
        return True

    def _serialize(self) -> bytes:
        store = self.cluster.store
        payload: dict[str, Any] = {
            "format": FORMAT,
            "resourceVersion": store.rv,
            "objects": [{"group": k[0], "resource": k[1], "object": obj} for k, obj in store.dump()],
        }
        store.dirty = False
        return json.dumps(payload, separators=(",", ":")).encode()

    def _write(self, data: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def save(self) -> None:
        """Write the snapshot now (atomically: a temp file renamed over the old one)."""
        self._write(self._serialize())

    async def run(self) -> None:
        """Save at most once per interval while the store is dirty; runs until cancelled.

        A failed save is logged and tried again next interval: a saver that died quietly would leave the
        snapshot behind every later write.
        """
        while True:
            await asyncio.sleep(self.interval_seconds)
            if not self.cluster.store.dirty:
                continue
            try:
                data = self._serialize()
                await asyncio.get_running_loop().run_in_executor(None, self._write, data)
            except (OSError, TypeError, ValueError):
                self.cluster.store.dirty = True
                log.exception("Could not write the snapshot %s; trying again", self.path)


class ServingCert(BaseModel):
    """HTTPS for the emulator (kubectl sends bearer tokens only over TLS): PEM files, and the CA for kubeconfigs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cert_file: Path
    key_file: Path
    ca_file: Path | None = None


def kubeconfig(
    url: str,
    user: str = "ringpilot-dev",
    namespace: str = "default",
    token: str | None = None,
    ca_file: Path | None = None,
) -> Json:
    """A kubeconfig for the emulator: one cluster, a token user (the token is the user name unless given)."""
    name = "ringpilot-emulator"
    cluster: Json = {"server": url}
    if ca_file is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_file.read_bytes()).decode()
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "current-context": name,
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": user, "user": {"token": token or user}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": user, "namespace": namespace}}],
    }


class EmulatorServer:
    """A Kubernetes API emulator bound to loopback; usable async or as a threaded context manager."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        state_path: str | os.PathLike[str] | None = None,
        history_size: int = 10_000,
        bookmark_interval_seconds: float = 60.0,
        snapshot_interval_seconds: float = 1.0,
        access_log: bool = False,
        auth: AuthConfig | None = None,
        service_ports: ServicePorts | None = None,
        serving_cert: ServingCert | None = None,
    ) -> None:
        """`auth` turns on tokens and RBAC (default: any token is the user name, nothing is refused);
        `service_ports` maps a webhook's `service` (namespace, name) to the loopback port it listens on;
        `serving_cert` serves HTTPS instead of HTTP."""
        if host not in LOOPBACK:
            raise ValueError(f"the emulator binds to loopback only, not {host!r}")
        self.host = host
        self.port = port
        self.auth = auth
        self.serving_cert = serving_cert
        self.cluster = Cluster(history_size)
        self.endpoints = ApiEndpoints(
            self.cluster,
            lambda: f"{self.host}:{self.port}",
            bookmark_interval_seconds,
            auth=auth,
            service_ports=service_ports,
        )
        self.snapshots = None
        if state_path:
            self.snapshots = Snapshots(self.cluster, state_path, snapshot_interval_seconds)
        self._access_log = access_log
        self._runner: web.AppRunner | None = None
        self._saver: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self.serving_cert else "http"
        return f"{scheme}://{host}:{self.port}"

    @property
    def requests(self) -> deque[RequestRecord]:
        """The most recent requests (method, path, query, media types, bearer user)."""
        return self.endpoints.requests

    async def start(self) -> str:
        """Load the snapshot (if any), start serving in the running loop, and return the URL."""
        if self.snapshots is not None:
            self.snapshots.load()
        if self.auth is not None:
            self._seed_policy()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.endpoints.handle)
        access = logging.getLogger("aiohttp.access") if self._access_log else None
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0, access_log=access)
        await self._runner.setup()
        context = None
        if self.serving_cert is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.serving_cert.cert_file, self.serving_cert.key_file)
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=context)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self._loop = asyncio.get_running_loop()
        if self.snapshots is not None:
            self._saver = asyncio.create_task(self.snapshots.run())
        log.info("Started the Kubernetes API emulator at %s", self.url)
        return self.url

    async def stop(self) -> None:
        """Write what every acknowledged write left, end watch streams, stop serving, then write it again.

        The first snapshot comes before the connections drain, so a SIGKILL that follows a slow shutdown
        (the dev stack's reaper waits a few seconds) cannot lose a write the server acknowledged.
        """
        if self._saver is not None:
            self._saver.cancel()
            try:
                await self._saver
            except asyncio.CancelledError:
                pass
            except Exception:  # a saver that died must not cost the final snapshot
                log.exception("The snapshot saver had failed")
            self._saver = None
        if self.snapshots is not None:
            self.snapshots.save()
        self.cluster.store.close_subscribers()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.snapshots is not None and self.cluster.store.dirty:
            self.snapshots.save()

    def _seed_policy(self) -> None:
        """Create the bootstrap ClusterRoles and bindings that are missing (as kube-apiserver does at start)."""
        for plural, objects in zip(("clusterroles", "clusterrolebindings"), default_policy(), strict=True):
            rt = self.cluster.registry.lookup("rbac.authorization.k8s.io", "v1", plural)
            assert rt is not None
            for obj in objects:
                if self.cluster.store.get(rt.key, "", obj["metadata"]["name"]) is None:
                    self.cluster.create(rt, None, obj, WriteOptions())

    def start_in_thread(self, timeout_seconds: float = 10.0) -> str:
        """Run the server in a daemon thread with its own event loop; returns the URL once listening."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(self.start())
            except BaseException as e:
                failure.append(e)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        self._thread = threading.Thread(target=run, name="k8s-emulator", daemon=True)
        self._thread.start()
        if not ready.wait(timeout_seconds):
            raise TimeoutError("the emulator did not start in time")
        if failure:
            raise failure[0]
        return self.url

    def stop_thread(self) -> None:
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> EmulatorServer:
        self.start_in_thread()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_thread()

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on the server's loop (from any thread) and return its result."""
        loop = self._loop
        if self._thread is None or loop is None or threading.current_thread() is self._thread:
            return fn(*args)

        async def invoke() -> T:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(invoke(), loop).result(timeout=30)

    def apply_crd(self, crd: Json) -> Json:
        """Create or replace a CRD; its resources are served immediately."""
        return self.call(self.cluster.apply_crd, crd)

    def write_kubeconfig(
        self,
        path: str | os.PathLike[str],
        user: str = "ringpilot-dev",
        namespace: str = "default",
        token: str | None = None,
    ) -> Path:
        """Write a kubeconfig (YAML) pointing at this server, atomically; returns the path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        ca_file = self.serving_cert.ca_file if self.serving_cert else None
        partial.write_text(yaml.safe_dump(kubeconfig(self.url, user, namespace, token, ca_file), sort_keys=False))
        os.replace(partial, target)
        return target
