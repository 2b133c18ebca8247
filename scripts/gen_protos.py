"""Regenerate everything derived from `protos/`: one command, reproducible.

1. Copy the `google/api` and `google/rpc` protos we import from the pinned
   `googleapis-common-protos` package into `third_party/googleapis/` (buf and
   protoc read them there; nobody edits them by hand).
2. Run protoc (from the pinned grpcio-tools) with mypy-protobuf over every
   `.proto` under `protos/`, writing Python, gRPC and typing stubs to `gen/`.
3. The same for the test-only protos under `tests/protos/`, into `tests/gen/`
   (they may import `protos/`; nothing outside `tests/` imports them).

Run it as `make protos`; `make check-generated` (and CI) fails when the
committed output differs from what this produces.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import sys
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
THIRD_PARTY = ROOT / "third_party" / "googleapis"
GEN = ROOT / "gen"
BIN = Path(sys.executable).parent

# The google protos execgate's own protos import, directly or transitively.
GOOGLEAPIS_FILES = (
    "google/api/annotations.proto",
    "google/api/http.proto",
    "google/api/field_behavior.proto",
    "google/rpc/status.proto",
    "google/rpc/error_details.proto",
    "google/rpc/code.proto",
)


def _googleapis_source() -> Path:
    import google.api.annotations_pb2 as annotations  # type: ignore[import-untyped, unused-ignore]

    return Path(annotations.__file__).resolve().parent.parent.parent


def vendor_googleapis() -> None:
    source = _googleapis_source()
    version = importlib.metadata.version("googleapis-common-protos")
    if THIRD_PARTY.exists():
        shutil.rmtree(THIRD_PARTY)
    for name in GOOGLEAPIS_FILES:
        target = THIRD_PARTY / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, target)
    (THIRD_PARTY / "README.md").write_text(
        "# Vendored googleapis protos\n\n"
        f"Copied verbatim from the PyPI package `googleapis-common-protos=={version}` "
        "by `scripts/gen_protos.py` (`make protos`). Do not edit; CI fails on drift.\n"
    )


TESTS_PROTOS = ROOT / "tests" / "protos"
TESTS_GEN = ROOT / "tests" / "gen"


def _protoc(include: list[Path], out: Path, sources: list[Path], extra: list[str]) -> None:
    """Python, gRPC and mypy stubs for `sources` (paths relative to `include[0]`)."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir()
    well_known = Path(grpc_tools.__file__).resolve().parent / "_proto"
    args = [
        "grpc_tools.protoc",
        *(f"-I{path}" for path in [*include, THIRD_PARTY, well_known]),
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        # The mypy-protobuf plugins sit next to this interpreter, on PATH or not.
        f"--plugin=protoc-gen-mypy={BIN / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={BIN / 'protoc-gen-mypy_grpc'}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *extra,
        *sorted(str(path) for path in sources),
    ]
    if protoc.main(args) != 0:
        sys.exit("protoc failed")
    # Regular packages (not namespace packages) so mypy and setuptools find them.
    for directory in [path for path in out.rglob("*") if path.is_dir()]:
        (directory / "__init__.py").touch()


def generate_python() -> None:
    sources = [path.relative_to(PROTOS) for path in PROTOS.rglob("*.proto")]
    extra = [
        # With comments, for the OpenAPI document's descriptions.
        "--include_source_info",
        "--include_imports",
        f"--descriptor_set_out={GEN / 'execgate' / 'descriptor_set.binpb'}",
    ]
    _protoc([PROTOS], GEN, sources, extra)
    (GEN / "execgate" / "py.typed").touch()


def generate_test_python() -> None:
    """Test-only protos: `tests/protos/**` into `tests/gen/` (may import `protos/`)."""
    sources = [path.relative_to(TESTS_PROTOS) for path in TESTS_PROTOS.rglob("*.proto")]
    _protoc([TESTS_PROTOS, PROTOS], TESTS_GEN, sources, [])


def main() -> None:
    vendor_googleapis()
    generate_python()
    generate_test_python()


if __name__ == "__main__":
    main()
