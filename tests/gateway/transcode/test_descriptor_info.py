"""Enum REST names and field behaviours read from descriptors."""

from __future__ import annotations

import pytest
from execgate.retrievers.v1 import execution_pb2, execution_service_pb2
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import EnumDescriptor

from gateway.transcode import descriptor_info as info
from tests.support.transcode_test_types import ALL_TYPES, WITH_REQUIRED


def _enum(name: str, values: list[str]) -> EnumDescriptor:
    file = descriptor_pb2.FileDescriptorProto(
        name=f"enum_prefix_test_{name}.proto", package="enumprefixtest", syntax="proto3"
    )
    enum = file.enum_type.add(name=name)
    for number, value in enumerate(values):
        enum.value.add(name=value, number=number)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return pool.FindEnumTypeByName(f"enumprefixtest.{name}")


def test_execution_enums() -> None:
    assert info.enum_rest_names(execution_pb2.ExecutionStatus.DESCRIPTOR) == {
        0: "unspecified",
        1: "pending",
        2: "processing",
        3: "completed",
        4: "failed",
        5: "running",
    }
    assert info.enum_rest_names(execution_service_pb2.SortDirection.DESCRIPTOR) == {
        0: "unspecified",
        1: "asc",
        2: "desc",
    }


@pytest.mark.parametrize(
    ("enum_name", "values", "expected"),
    [
        ("HTTPMethod", ["HTTP_METHOD_GET", "HTTP_METHOD_POST"], ["get", "post"]),
        ("Level", ["LEVEL_1", "LEVEL_HIGH"], ["level_1", "high"]),  # would start with a digit
        ("Mode", ["MODE", "MODE_X"], ["mode", "x"]),  # would be empty
        ("Kind", ["OTHER_A", "KINDLY"], ["other_a", "ly"]),
    ],
)
def test_prefix_stripping(enum_name: str, values: list[str], expected: list[str]) -> None:
    assert list(info.enum_rest_names(_enum(enum_name, values)).values()) == expected


def test_accepted_names_include_proto_names() -> None:
    accepted = info.enum_accepted_names(execution_pb2.ExecutionStatus.DESCRIPTOR)
    assert accepted["completed"] == accepted["EXECUTION_STATUS_COMPLETED"] == 3


def test_field_behaviours() -> None:
    detail = execution_pb2.ExecutionDetail.DESCRIPTOR.fields_by_name
    assert info.is_non_empty_default(detail["pagination"])
    assert not info.is_non_empty_default(detail["optimization_summary"])
    assert info.is_required_input(WITH_REQUIRED.fields_by_name["name"])
    assert not info.is_required_input(WITH_REQUIRED.fields_by_name["score"])  # OUTPUT_ONLY


def test_real_oneofs_versus_proto3_optional() -> None:
    fields = ALL_TYPES.fields_by_name
    assert info.is_real_oneof_member(fields["c_s"])
    assert not info.is_real_oneof_member(fields["opt_s"])
    assert not info.is_real_oneof_member(fields["s"])
