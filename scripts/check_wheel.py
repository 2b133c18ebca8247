"""The release test: build the sdist and wheel, install the wheel into a clean virtual
environment outside the checkout, the way the container image does, and use it.

1. `python -m build` (the wheel is built from the sdist, so both are complete or this fails);
2. every tracked file of the packages (generated code, descriptor set, static files) is in
   the wheel, and LICENSE is in both;
3. a new venv from `--python` (any supported version), the wheel installed by
   `scripts/install_wheel.sh`, the Dockerfile's very install step;
4. in a temporary directory, with no PYTHONPATH: the packages import from the venv,
   `execgate --version`, `execgate demo`, `execgate serve` on free ports, one REST
   lookup with the demo key (200), the viewer's page (package data), `scripts/healthcheck.py`
   (the image's HEALTHCHECK), and SIGTERM ends the server with status 0.

Usage: python -m scripts.check_wheel [--python python3.12] [--dist DIR]
(`--dist`: check wheels built earlier instead of building; `make check-wheel`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

from runtime.launcher import Child, LaunchError
from runtime.ready_file import HTTP

ROOT = Path(__file__).resolve().parents[1]
# Checkout directory → where its files land in the wheel.
PACKAGE_DIRS = {
    "service": "service",
    "gateway": "gateway",
    "singleprocess": "singleprocess",
    "observability": "observability",
    "runtime": "runtime",
    "gen/execgate": "execgate",
}
# Port 0 for both listeners: the REST port the kernel chose is read from the ready file.
SERVE = ("execgate", "serve", "--listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0")
START_TIMEOUT_S = 60.0
COMMAND_TIMEOUT_S = 120.0


class CheckFailed(Exception):
    """One check did not hold; the message says which."""


def run(cmd: list[str], *, env: dict[str, str], cwd: Path) -> str:
    result = subprocess.run(
        cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S
    )
    if result.returncode != 0:
        raise CheckFailed(
            f"{' '.join(cmd)} exited {result.returncode}\n{result.stdout}{result.stderr}"
        )
    return result.stdout


def build(dist: Path) -> None:
    # The wheel comes from the unpacked sdist (build's default), which proves the sdist.
    subprocess.run([sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)], check=True)


def only(dist: Path, pattern: str) -> Path:
    found = sorted(dist.glob(pattern))
    if len(found) != 1:
        raise CheckFailed(f"expected one {pattern} in {dist}, found {[p.name for p in found]}")
    return found[0]


def tracked_package_files() -> set[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--", *PACKAGE_DIRS],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    expected = set()
    for path in filter(None, listed.split("\0")):
        for source, target in PACKAGE_DIRS.items():
            if path.startswith(source + "/"):
                expected.add(target + path[len(source) :])
    return expected


def check_contents(wheel: Path, sdist: Path) -> int:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    missing = sorted(tracked_package_files() - names)
    if missing:
        raise CheckFailed(f"{wheel.name} lacks {len(missing)} tracked files: {missing[:10]}")
    if not any(name.endswith(".dist-info/licenses/LICENSE") for name in names):
        raise CheckFailed(f"{wheel.name} has no LICENSE in its .dist-info/licenses")
    with tarfile.open(sdist) as archive:
        if not any(name.endswith("/LICENSE") for name in archive.getnames()):
            raise CheckFailed(f"{sdist.name} has no LICENSE")
    return len(names)


def clean_env(venv: Path) -> dict[str, str]:
    """The environment of a user who installed the wheel: the venv first on PATH, and
    nothing that points back into the checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "EXECGATE_"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    return env


def check_imports(python: Path, venv: Path, env: dict[str, str], cwd: Path) -> None:
    shown = run(
        [
            str(python),
            "-I",
            "-c",
            "import json, execgate, gateway, service, singleprocess, runtime; "
            "print(json.dumps([m.__file__ for m in (execgate, gateway, service, "
            "singleprocess, runtime)]))",
        ],
        env=env,
        cwd=cwd,
    )
    outside = [f for f in json.loads(shown) if not Path(f).resolve().is_relative_to(venv)]
    if outside:
        raise CheckFailed(f"imported from outside the venv: {outside}")


def lookup(port: int, demo: dict[str, Any]) -> None:
    retriever = demo["retriever"]["name"]
    execution = demo["executions"]["completed_10"]
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/retrievers/{retriever}/executions/{execution}",
        headers={
            "Authorization": f"Bearer {demo['api_key']}",
            "X-Namespace": demo["namespace"]["name"],
        },
    )
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
        body = json.loads(answer.read())
        if answer.status != 200 or body.get("execution_id") != execution:
            raise CheckFailed(f"lookup answered {answer.status}: {body}")


def viewer_page(port: int) -> None:
    """The viewer's page, a package data file of the wheel, is served."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/ui/", timeout=30) as answer:
        page = answer.read()
        if answer.status != 200 or b"<html" not in page.lower():
            raise CheckFailed(f"/ui/ answered {answer.status}: {page[:200]!r}")


def check_serving(venv: Path, env: dict[str, str], cwd: Path) -> None:
    store = f"sqlite:///{cwd / 'demo.db'}"
    demo = json.loads(run(["execgate", "demo", "--store", store, "--json"], env=env, cwd=cwd))
    # The launcher adds --ready-file and reads the ports the kernel chose from it.
    server = Child(
        "installed-serve", [*SERVE, "--store", store], env=env, cwd=cwd, log=cwd / "serve.log"
    )
    try:
        try:
            port = server.wait_ready(START_TIMEOUT_S).port(HTTP)
        except LaunchError as failure:
            raise CheckFailed(str(failure)) from None
        lookup(port, demo)
        viewer_page(port)
        healthcheck = cwd / "healthcheck.py"
        shutil.copy(ROOT / "scripts" / "healthcheck.py", healthcheck)
        run(
            [str(venv / "bin" / "python"), str(healthcheck), f"http://127.0.0.1:{port}/healthz"],
            env=env,
            cwd=cwd,
        )
    finally:
        status = server.stop()
    if status != 0:
        raise CheckFailed(f"execgate serve exited {status} after SIGTERM:\n{server.output_tail()}")


def check(python: str, dist: Path, work: Path) -> str:
    wheel = only(dist, "execgate-*-py3-none-any.whl")
    sdist = only(dist, "execgate-*.tar.gz")
    version = wheel.name.split("-")[1]
    files = check_contents(wheel, sdist)
    venv = work / "venv"
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    venv = venv.resolve()
    env = clean_env(venv)
    run(["sh", str(ROOT / "scripts" / "install_wheel.sh"), str(dist)], env=env, cwd=work)
    vpython = venv / "bin" / "python"
    check_imports(vpython, venv, env, work)
    shown = run(["execgate", "--version"], env=env, cwd=work).strip()
    if shown != f"execgate {version}":
        raise CheckFailed(f"execgate --version printed {shown!r}, expected execgate {version}")
    check_serving(venv, env, work)
    python_version = run(
        [str(vpython), "-c", "import sys; print(sys.version.split()[0])"], env=env, cwd=work
    ).strip()
    return f"{wheel.name} ({files} files) on Python {python_version}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default="python3", help="interpreter of the clean venv")
    parser.add_argument("--dist", type=Path, help="check these wheels instead of building")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="execgate-wheel-") as tmp:
        work = Path(tmp).resolve()
        dist = args.dist.resolve() if args.dist else work / "dist"
        if args.dist is None:
            build(dist)
        try:
            summary = check(args.python, dist, work)
        except (CheckFailed, subprocess.SubprocessError) as failure:
            print(f"wheel check FAILED: {failure}", file=sys.stderr)
            return 1
    print(f"wheel check passed: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
