"""The rendering rules, field kind by field kind, on a message with every kind of field."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest
from execgate.retrievers.v1 import execution_pb2
from google.protobuf import any_pb2, struct_pb2, timestamp_pb2

from gateway.transcode.exceptions import RenderError
from gateway.transcode.renderer import compile_message_converter, compile_response_renderer
from tests.support import transcode_samples as samples
from tests.support.transcode_test_types import (
    ALL_TYPES,
    PACKAGE,
    new_all_types,
    new_inner,
)

_render_all_types = compile_response_renderer(ALL_TYPES)


def render(message: Any) -> dict[str, Any]:
    rendered: dict[str, Any] = orjson.loads(_render_all_types(message))
    return rendered


def test_unset_message_renders_every_field_with_default_or_null() -> None:
    assert render(new_all_types()) == {
        **dict.fromkeys(("d", "f"), 0.0),
        **dict.fromkeys(("i32", "i64", "u32", "u64", "s32", "s64", "fx32", "fx64"), 0),
        **dict.fromkeys(("sfx32", "sfx64", "class"), 0),
        "b": False,
        "s": "",
        "by": "",
        "camel_case_name": "",
        "color": None,  # COLOR_UNSPECIFIED has no REST name
        "plain": "zero",
        **dict.fromkeys(("opt_i32", "opt_s", "inner", "c_s", "c_inner", "c_i"), None),
        "inner_default": {"n": 0, "child": None},
        **{key: [] for key in ("r_i64", "r_d", "r_color", "r_by", "r_inner", "r_s")},
        **{key: {} for key in ("m_s", "m_i", "m_b", "m_u", "m_raw")},
        **dict.fromkeys(("ts", "dur", "st", "val", "lv", "fm", "empty", "any", "raw"), None),
        **dict.fromkeys(("w_i64", "w_u32", "w_b", "w_s", "w_by", "w_d", "w_f"), None),
        "raw_default": {},
        "r_raw": [],
        "r_ts": [],
        "required": None,
    }


def test_keys_follow_field_order_with_proto_names() -> None:
    keys = list(render(new_all_types()))
    expected = [f.name for f in ALL_TYPES.fields if f.name != "old"]
    assert keys == expected


def test_integers_are_numbers_at_their_extremes() -> None:
    message = new_all_types()
    message.i64 = -(2**63)
    message.u64 = 2**64 - 1
    message.s64 = 2**63 - 1
    message.fx64 = 2**64 - 1
    message.i32 = -(2**31)
    message.u32 = 2**32 - 1
    body = _render_all_types(message)
    assert b'"i64":-9223372036854775808' in body
    assert b'"u64":18446744073709551615' in body
    rendered = render(message)
    assert rendered["s64"] == 2**63 - 1
    assert rendered["i32"] == -(2**31)
    assert rendered["u32"] == 2**32 - 1


def test_doubles_and_non_finite_values_as_protojson() -> None:
    message = new_all_types()
    message.d = 1.5
    message.r_d.extend([math.nan, math.inf, -math.inf, -0.25])
    rendered = render(message)
    assert rendered["d"] == 1.5
    assert rendered["r_d"] == ["NaN", "Infinity", "-Infinity", -0.25]
    message.d = math.nan
    assert render(message)["d"] == "NaN"


@pytest.mark.parametrize(
    ("value", "expected"), [(0.1, 0.1), (3.4028234663852886e38, 3.4028235e38), (-2.5, -2.5)]
)
def test_float32_renders_its_shortest_decimal(value: float, expected: float) -> None:
    message = new_all_types()
    message.f = value
    assert render(message)["f"] == expected


def test_float32_is_not_rendered_as_its_double_expansion() -> None:
    message = new_all_types()
    message.f = 0.1
    assert message.f == 0.10000000149011612  # what upb hands over
    assert b'"f":0.1,' in _render_all_types(message)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(math.nan, "NaN"), (math.inf, "Infinity"), (-math.inf, "-Infinity"), (-0.0, -0.0)],
)
def test_a_singular_double_renders_non_finite_values_as_protojson(
    value: float, expected: object
) -> None:
    message = new_all_types()
    message.d = value
    assert render(message)["d"] == expected


def test_float32_non_finite() -> None:
    message = new_all_types()
    message.f = -math.inf
    assert render(message)["f"] == "-Infinity"


def test_bool_string_bytes() -> None:
    message = new_all_types()
    message.b = True
    message.s = 'quote " and ünïcode'
    message.by = b"\x00\xff\xfe"
    message.r_by.extend([b"", b"ab"])
    rendered = render(message)
    assert rendered["b"] is True
    assert rendered["s"] == 'quote " and ünïcode'
    assert rendered["by"] == "AP/+"
    assert rendered["r_by"] == ["", "YWI="]


def test_enums_strip_the_type_prefix_and_lower_case() -> None:
    message = new_all_types()
    message.color = 2
    message.plain = 1
    message.r_color.extend([1, 0])
    rendered = render(message)
    assert rendered["color"] == "dark_blue"
    assert rendered["plain"] == "one"  # no prefix to strip
    assert rendered["r_color"] == ["red", None]


def test_unknown_enum_numbers_render_as_numbers() -> None:
    message = new_all_types()
    message.color = 7
    message.r_color.append(9)
    message.m_u[1] = 8
    rendered = render(message)
    assert rendered["color"] == 7
    assert rendered["r_color"] == [9]
    assert rendered["m_u"] == {"1": 8}


def test_proto3_optional_renders_null_unless_set_even_to_default() -> None:
    message = new_all_types()
    assert render(message)["opt_i32"] is None
    message.opt_i32 = 0
    message.opt_s = ""
    rendered = render(message)
    assert rendered["opt_i32"] == 0
    assert rendered["opt_s"] == ""


def test_message_presence_null_versus_non_empty_default() -> None:
    message = new_all_types()
    message.inner.SetInParent()
    message.inner_default.child.n = 3
    rendered = render(message)
    assert rendered["inner"] == {"n": 0, "child": None}
    assert rendered["inner_default"] == {"n": 0, "child": {"n": 3, "child": None}}


def test_repeated_fields() -> None:
    message = new_all_types()
    message.r_i64.extend([1, -2, 2**62])
    message.r_s.extend(["x", ""])
    message.r_inner.extend([new_inner(1), new_inner(2)])
    rendered = render(message)
    assert rendered["r_i64"] == [1, -2, 2**62]
    assert rendered["r_s"] == ["x", ""]
    assert rendered["r_inner"] == [{"n": 1, "child": None}, {"n": 2, "child": None}]


def test_maps_have_string_keys_sorted() -> None:
    message = new_all_types()
    message.m_s.update({"b": 2, "a": 1, "é": 3})
    message.m_i.update({10: "ten", -1: "minus one", 2: "two"})
    message.m_b[True].n = 1
    message.m_b[False].n = 0
    message.m_u[5] = 1
    body = _render_all_types(message)
    assert b'"m_i":{"-1":"minus one","2":"two","10":"ten"}' in body  # numeric order
    rendered = render(message)
    assert list(rendered["m_s"].items()) == [("a", 1), ("b", 2), ("é", 3)]
    assert rendered["m_b"] == {"false": {"n": 0, "child": None}, "true": {"n": 1, "child": None}}
    assert rendered["m_u"] == {"5": "red"}


def test_oneof_members_are_null_except_the_chosen_one() -> None:
    message = new_all_types()
    message.c_inner.n = 4
    rendered = render(message)
    assert (rendered["c_s"], rendered["c_inner"], rendered["c_i"]) == (
        None,
        {"n": 4, "child": None},
        None,
    )
    message.c_i = 0  # switching the oneof; a zero value is still the chosen member
    rendered = render(message)
    assert (rendered["c_s"], rendered["c_inner"], rendered["c_i"]) == (None, None, 0)


def test_deprecated_repeated_field_is_omitted_unless_non_empty() -> None:
    message = new_all_types()
    assert "old" not in render(message)
    message.old.append("legacy")
    keys = list(render(message))
    assert render(message)["old"] == ["legacy"]
    assert keys.index("old") == keys.index("c_i") + 1  # still in field order


def test_raw_json_is_spliced_verbatim() -> None:
    message = new_all_types()
    message.raw.json = '{"z":1,"a":[true,null],"u":"ü"}'
    message.r_raw.add(json="1.50")
    message.r_raw.add(json="")
    message.m_raw["k"].json = '"text"'
    message.m_raw["empty"].SetInParent()
    body = _render_all_types(message)
    assert '"raw":{"z":1,"a":[true,null],"u":"ü"}'.encode() in body  # key order kept
    assert b'"r_raw":[1.50,null]' in body  # number text kept; empty text is null
    assert b'"raw_default":{}' in body
    assert render(message)["m_raw"] == {"empty": None, "k": "text"}


def test_raw_json_present_but_empty_renders_null_and_default_renders_object() -> None:
    message = new_all_types()
    message.raw.SetInParent()
    message.raw_default.SetInParent()
    rendered = render(message)
    assert rendered["raw"] is None
    assert rendered["raw_default"] == {}


@pytest.mark.parametrize(
    ("seconds", "nanos", "text"),
    [
        (0, 0, "1970-01-01T00:00:00Z"),
        (1795898295, 120_000_000, "2026-11-28T20:38:15.120Z"),
        (1795898295, 123_456_000, "2026-11-28T20:38:15.123456Z"),
        (1795898295, 123_456_789, "2026-11-28T20:38:15.123456789Z"),
        (-1, 999_999_999, "1969-12-31T23:59:59.999999999Z"),
        (-62135596800, 0, "0001-01-01T00:00:00Z"),
        (253402300799, 0, "9999-12-31T23:59:59Z"),
    ],
)
def test_timestamps_are_rfc3339_utc(seconds: int, nanos: int, text: str) -> None:
    message = new_all_types()
    message.ts.seconds = seconds
    message.ts.nanos = nanos
    message.r_ts.add(seconds=seconds, nanos=nanos)
    rendered = render(message)
    assert rendered["ts"] == text
    assert rendered["r_ts"] == [text]


@pytest.mark.parametrize(("seconds", "nanos"), [(253402300800, 0), (-62135596801, 0), (0, -1)])
def test_unrepresentable_timestamp_is_a_render_error(seconds: int, nanos: int) -> None:
    message = new_all_types()
    message.ts.seconds = seconds
    message.ts.nanos = nanos
    with pytest.raises(RenderError):
        _render_all_types(message)


@pytest.mark.parametrize(
    ("seconds", "nanos", "text"),
    [
        (1, 500_000_000, "1.500s"),
        (3, 0, "3s"),
        (0, -250_000_000, "-0.250s"),
        (-2, -1000, "-2.000001s"),
        (0, 1, "0.000000001s"),
    ],
)
def test_durations(seconds: int, nanos: int, text: str) -> None:
    message = new_all_types()
    message.dur.seconds = seconds
    message.dur.nanos = nanos
    assert render(message)["dur"] == text


def test_duration_with_mixed_signs_is_a_render_error() -> None:
    message = new_all_types()
    message.dur.seconds = 1
    message.dur.nanos = -1
    with pytest.raises(RenderError):
        _render_all_types(message)


def test_struct_value_and_list_value_render_as_their_json() -> None:
    message = new_all_types()
    message.st.update({"b": [1, "x", None, True], "a": {"nested": 2.5}})
    message.val.list_value.extend([1, {"k": "v"}])
    message.lv.extend(["s", 3])
    body = _render_all_types(message)
    assert b'"st":{"a":{"nested":2.5},"b":[1.0,"x",null,true]}' in body
    rendered = render(message)
    assert rendered["val"] == [1, {"k": "v"}]
    assert rendered["lv"] == ["s", 3]
    message.val.Clear()
    message.val.SetInParent()  # a Value with no kind set
    assert render(message)["val"] is None
    message.val.number_value = math.inf
    assert render(message)["val"] == "Infinity"


def test_wrappers_render_their_value_or_null() -> None:
    message = new_all_types()
    message.w_i64.value = 0  # present with a default value
    message.w_i64.SetInParent()
    message.w_u32.value = 2**32 - 1
    message.w_b.value = True
    message.w_s.value = "s"
    message.w_by.value = b"\x01"
    message.w_d.value = math.nan
    message.w_f.value = 0.1
    rendered = render(message)
    assert rendered["w_i64"] == 0
    assert rendered["w_u32"] == 2**32 - 1
    assert rendered["w_b"] is True
    assert rendered["w_s"] == "s"
    assert rendered["w_by"] == "AQ=="
    assert rendered["w_d"] == "NaN"
    assert rendered["w_f"] == 0.1


def test_field_mask_and_empty() -> None:
    message = new_all_types()
    message.fm.paths.extend(["stage_statistics.stages", "status"])
    message.empty.SetInParent()
    rendered = render(message)
    assert rendered["fm"] == "stage_statistics.stages,status"
    assert rendered["empty"] == {}


def test_any_holding_a_message_a_well_known_type_and_an_unknown_type() -> None:
    message = new_all_types()
    message.any.Pack(new_inner(5))
    assert render(message)["any"] == {
        "@type": f"type.googleapis.com/{PACKAGE}.Inner",
        "n": 5,
        "child": None,
    }
    message.any.Pack(timestamp_pb2.Timestamp(seconds=0, nanos=1_000_000))
    assert render(message)["any"] == {
        "@type": "type.googleapis.com/google.protobuf.Timestamp",
        "value": "1970-01-01T00:00:00.001Z",
    }
    message.any.CopyFrom(any_pb2.Any(type_url="example.com/no.such.Type", value=b"\x08\x01"))
    assert render(message)["any"] == {"@type": "example.com/no.such.Type", "value": "CAE="}


def test_any_with_undecodable_bytes_does_not_crash() -> None:
    message = new_all_types()
    message.any.CopyFrom(
        any_pb2.Any(type_url=f"type.googleapis.com/{PACKAGE}.Inner", value=b"\xff\xff")
    )
    assert render(message)["any"]["value"] == "//8="


def test_python_keyword_field_name() -> None:
    message = new_all_types()
    setattr(message, "class", 3)  # `message.class` is a syntax error
    assert render(message)["class"] == 3


def test_recursive_messages() -> None:
    message = new_all_types()
    message.inner.child.child.n = 9
    assert render(message)["inner"] == {
        "n": 0,
        "child": {"n": 0, "child": {"n": 9, "child": None}},
    }


def test_response_body_selects_one_field() -> None:
    message = new_all_types()
    message.r_raw.add(json='{"a":1}')
    assert compile_response_renderer(ALL_TYPES, "r_raw")(message) == b'[{"a":1}]'
    assert compile_response_renderer(ALL_TYPES, "inner")(message) == b"null"
    assert compile_response_renderer(ALL_TYPES, "color")(message) == b"null"
    assert compile_response_renderer(ALL_TYPES, "ts")(message) == b"null"


def test_response_body_naming_no_field_fails_at_compile_time() -> None:
    with pytest.raises(ValueError, match="nope"):
        compile_response_renderer(ALL_TYPES, "nope")


def test_converter_gives_json_ready_objects() -> None:
    converter = compile_message_converter(execution_pb2.ExecutionSummary.DESCRIPTOR)
    summary = execution_pb2.ExecutionSummary(
        execution_id="exec_1", total_returned=3, status=execution_pb2.EXECUTION_STATUS_PENDING
    )
    converted = converter(summary)
    assert isinstance(converted, dict)
    assert converted["total_returned"] == 3
    # CONTRACT.md: a summary's duration_ms is always a number (NON_EMPTY_DEFAULT scalar)...
    assert converted["duration_ms"] == 0.0
    # ...while an optional scalar without it is null when unset.
    assert converted["cache_hit_rate"] is None
    assert converted["created_at"] == "1970-01-01T00:00:00Z"  # NON_EMPTY_DEFAULT


def test_well_known_type_as_the_response_itself() -> None:
    assert (
        compile_response_renderer(struct_pb2.Struct.DESCRIPTOR)(
            struct_pb2.Struct(fields={"a": struct_pb2.Value(string_value="b")})
        )
        == b'{"a":"b"}'
    )


# ---------------------------------------------------------------- ExecutionDetail

_render_detail = compile_response_renderer(execution_pb2.ExecutionDetail.DESCRIPTOR)


def test_execution_documents_are_the_stored_json_text() -> None:
    detail = samples.completed(3)
    body = _render_detail(detail).decode()
    joined = ",".join(samples.document_json(i) for i in range(3))
    assert f'"documents":[{joined}]' in body


def test_execution_results_alias_only_when_populated() -> None:
    detail = samples.completed(2)
    assert "results" not in orjson.loads(_render_detail(detail))
    detail.results.json = detail.documents.json
    rendered = orjson.loads(_render_detail(detail))
    assert rendered["results"] == rendered["documents"]
    assert list(rendered).index("results") == list(rendered).index("documents") + 1


def test_execution_results_alias_set_but_empty_is_an_empty_array() -> None:
    detail = samples.pending()
    detail.results.json = "[]"
    rendered = orjson.loads(_render_detail(detail))
    assert rendered["results"] == [] == rendered["documents"]


def test_execution_pending_has_every_always_present_field() -> None:
    rendered = orjson.loads(_render_detail(samples.pending()))
    assert rendered == {
        "retriever_id": "ret_7fK2mQ9xLp",
        "execution_id": "exec_Qm3ZtY8vRw",
        "status": "pending",
        "documents": [],
        "pagination": {},
        "stage_statistics": {"stages": {}, "total_time_ms": 0.0, "credits_used": 0.0},
        "budget": {},
        "cached_at": None,
        "warnings": [],
        "error": None,
        "optimization_applied": False,
        "optimization_summary": None,
        "learned_fusion_context": None,
        "created_at": "2026-11-28T20:38:15.123456Z",
        "completed_at": None,
        "current_stage": None,
        "stages_completed": 0,
        "total_stages": 3,
    }


def test_execution_stage_statistics_render_nullable_fields() -> None:
    rendered = orjson.loads(_render_detail(samples.processing()))
    assert rendered["stage_statistics"]["stages"] == {
        "feature_search": {
            "input_count": 5000,
            "output_count": 250,
            "duration_ms": 12.5,
            "efficiency": 0.05,
            "cache_hit": True,
            "cached_at": 1795898290.25,
            "error": None,
            "llm_calls": None,
            "tokens_used": None,
            "metadata": {},
        }
    }
    assert rendered["current_stage"] == "attribute_filter"


def test_a_required_enum_left_unspecified_is_a_render_error() -> None:
    # The service must always set `status`; "unspecified" is no REST value.
    converter = compile_message_converter(execution_pb2.ExecutionSummary.DESCRIPTOR)
    with pytest.raises(RenderError, match="UNSPECIFIED"):
        converter(execution_pb2.ExecutionSummary(execution_id="exec_1"))


def test_stages_render_in_pipeline_order_not_alphabetically() -> None:
    detail = samples.pending()
    statistics = detail.stage_statistics
    pipeline = ["semantic_search", "filter", "attribute_join"]
    for name in pipeline:
        statistics.stages[name].input_count = 1
    statistics.stages_order.extend(pipeline)
    # Deterministic serialization writes map entries sorted: the order survives only
    # in stages_order, as it does in a stored execution.
    stored = execution_pb2.ExecutionDetail.FromString(detail.SerializeToString(deterministic=True))
    rendered = orjson.loads(_render_detail(stored))
    assert list(rendered["stage_statistics"]["stages"]) == pipeline
    assert "stages_order" not in rendered["stage_statistics"]  # it only orders the map


def test_map_keys_missing_from_the_order_follow_sorted() -> None:
    detail = samples.pending()
    for name in ("zeta", "beta", "alpha"):
        detail.stage_statistics.stages[name].input_count = 1
    detail.stage_statistics.stages_order.extend(["zeta", "gone", "zeta"])
    rendered = orjson.loads(_render_detail(detail))
    assert list(rendered["stage_statistics"]["stages"]) == ["zeta", "alpha", "beta"]
