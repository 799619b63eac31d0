"""Preparing a worker's Prometheus multiprocess directory before anything imports prometheus_client.

`ringpilot worker` runs several dramatiq processes; each writes its metrics to files in one directory
that dramatiq's exposition server (on the worker's metrics port) reads. The directory and the port are
set in the environment here, which the forked processes inherit, and wiped at every start.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_worker_metrics(data_dir: Path, port: int) -> Path | None:
    """Point prometheus_client and dramatiq's Prometheus middleware at a fresh directory; None when off."""
    if port == 0:
        return None
    directory = Path(os.environ.get(MULTIPROC_ENV) or data_dir.absolute() / "prometheus-worker")
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)
    os.environ[MULTIPROC_ENV] = str(directory)
    os.environ["dramatiq_prom_db"] = str(directory)  # noqa: SIM112 - dramatiq spells it so
    os.environ["dramatiq_prom_port"] = str(port)  # noqa: SIM112
    return directory
