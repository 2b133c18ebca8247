"""Rules OpenAPI cannot express one-to-one, on a proto compiled for the test."""

from __future__ import annotations

from pathlib import Path

import grpc_tools
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import ServiceDescriptor
from grpc_tools import protoc

from gateway.openapi import build_openapi

ROOT = Path(__file__).resolve().parents[3]
_PROTO = """
syntax = "proto3";
package edge.v1;
import "google/api/annotations.proto";
service Edge {
  rpc GetShelf(Named) returns (Named) {
    option (google.api.http) = {get: "/v1/{name=shelves/*}"};
  }
  rpc Anything(Named) returns (Named) {
    option (google.api.http) = {custom: {kind: "*", path: "/v1/anything"}};
  }
  %s
}
message Named { string name = 1; }
"""
_COLLIDING = (
    "rpc GetBook(Named) returns (Named) {option (google.api.http) = "
    '{get: "/v1/{name=shelves/*/books/*}"};}'
)


def _service(tmp_path: Path, extra_rpc: str) -> ServiceDescriptor:
    (tmp_path / "edge.proto").write_text(_PROTO % extra_rpc, encoding="utf-8")
    out = tmp_path / "edge.binpb"
    well_known = Path(grpc_tools.__file__).resolve().parent / "_proto"
    status = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{tmp_path}",
            f"-I{ROOT / 'third_party' / 'googleapis'}",
            f"-I{well_known}",
            "--include_imports",
            f"--descriptor_set_out={out}",
            "edge.proto",
        ]
    )
    assert status == 0
    pool = descriptor_pool.DescriptorPool()
    for file in descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file:
        pool.Add(file)
    return pool.FindServiceByName("edge.v1.Edge")


def test_custom_any_method_rule_is_left_out(tmp_path: Path) -> None:
    document = build_openapi([_service(tmp_path, "")], None, "t", "1")
    assert list(document["paths"]) == ["/v1/{name}"]


def test_two_rules_with_one_openapi_path_fail_naming_both(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError,
        match=r"edge\.v1\.Edge\.GetBook .*already bound by "
        r"/edge\.v1\.Edge/GetShelf",
    ):
        build_openapi([_service(tmp_path, _COLLIDING)], None, "t", "1")
