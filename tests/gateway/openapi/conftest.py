"""Generated OpenAPI documents (execgate's own service and the test-only library service),
and the contract they are checked against."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc_tools
import pytest
import yaml
from execgate.retrievers.v1 import execution_service_pb2
from execgate.testing.v1 import library_pb2  # made importable by tests/gateway/conftest.py
from grpc_tools import protoc

from gateway.openapi import build_openapi

ROOT = Path(__file__).resolve().parents[3]
DESCRIPTOR_SET = ROOT / "gen" / "execgate" / "descriptor_set.binpb"
CONTRACT = ROOT / "tests" / "contract" / "get-execution.openapi.yaml"
TEST_PROTOS = ROOT / "tests" / "protos"
LIBRARY_PROTO = "execgate/testing/v1/library.proto"


@pytest.fixture(scope="session")
def execution_document() -> dict[str, Any]:
    service = execution_service_pb2.DESCRIPTOR.services_by_name["ExecutionService"]
    return build_openapi([service], DESCRIPTOR_SET, title="execgate", version="0.1.0")


@pytest.fixture(scope="session")
def contract() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CONTRACT.read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(scope="session")
def library_descriptor_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test-only library protos compiled with their comments (tests/gen has none)."""
    out = tmp_path_factory.mktemp("library") / "library.binpb"
    well_known = Path(grpc_tools.__file__).resolve().parent / "_proto"
    status = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{TEST_PROTOS}",
            f"-I{ROOT / 'protos'}",
            f"-I{ROOT / 'third_party' / 'googleapis'}",
            f"-I{well_known}",
            "--include_source_info",
            "--include_imports",
            f"--descriptor_set_out={out}",
            LIBRARY_PROTO,
        ]
    )
    assert status == 0, "protoc failed on the test-only library proto"
    return out


@pytest.fixture(scope="session")
def library_document(library_descriptor_set: Path) -> dict[str, Any]:
    services = [
        library_pb2.DESCRIPTOR.services_by_name["LibraryService"],
        library_pb2.DESCRIPTOR.services_by_name["ShelfWatchService"],
    ]
    return build_openapi(services, library_descriptor_set, title="library", version="1")
