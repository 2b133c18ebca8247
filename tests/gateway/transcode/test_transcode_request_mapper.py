"""Request mapping: path, query and body into a request message, and every error."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest
from execgate.retrievers.v1 import execution_pb2, execution_service_pb2
from google.protobuf import timestamp_pb2

from gateway.transcode.exceptions import (
    InvalidJsonError,
    RequestValidationError,
    UnsupportedMediaTypeError,
    ValidationIssue,
)
from gateway.transcode.request_mapper import RequestMapper, compile_request_mapper
from tests.gateway.transcode.transcode_test_types import ALL_TYPES, PACKAGE

_GET = compile_request_mapper(
    execution_service_pb2.GetExecutionRequest.DESCRIPTOR, ["retriever_id", "execution_id"], ""
)
_LIST = compile_request_mapper(
    execution_service_pb2.ListExecutionsRequest.DESCRIPTOR, ["retriever_id"], "query"
)
_ALL_BODY = compile_request_mapper(ALL_TYPES, ["s"], "*")
_ALL_QUERY = compile_request_mapper(ALL_TYPES, ["inner.n"], "")
_IDS = {"retriever_id": "ret_1", "execution_id": "exec_1"}


def _get(query: list[tuple[str, str]]) -> Any:
    return _GET.map_request(_IDS, query, None, None)


def _list(body: object, query: list[tuple[str, str]] | None = None) -> Any:
    return _LIST.map_request(
        {"retriever_id": "ret_1"}, query or [], orjson.dumps(body), "application/json"
    )


def _body(body: object) -> Any:
    return _ALL_BODY.map_request({"s": "from-path"}, [], orjson.dumps(body), "application/json")


def _query(query: list[tuple[str, str]]) -> Any:
    return _ALL_QUERY.map_request({"inner.n": "7"}, query, None, None)


def _issues(mapper: RequestMapper, *args: Any) -> list[ValidationIssue]:
    with pytest.raises(RequestValidationError) as caught:
        mapper.map_request(*args)
    return list(caught.value.errors)


def _one_issue(mapper: RequestMapper, *args: Any) -> ValidationIssue:
    (issue,) = _issues(mapper, *args)
    return issue


# ---------------------------------------------------------------- happy paths


def test_path_and_query_fill_get_execution() -> None:
    request = _get([("include_legacy_results", "true")])
    assert request == execution_service_pb2.GetExecutionRequest(
        retriever_id="ret_1", execution_id="exec_1", include_legacy_results=True
    )
    assert not _get([]).include_legacy_results


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("false", False), ("1", True), ("0", False), ("TRUE", True)],
)
def test_bool_query_spellings(text: str, expected: bool) -> None:
    assert _get([("include_legacy_results", text)]).include_legacy_results is expected


def test_query_accepts_the_json_name_too() -> None:
    assert _get([("includeLegacyResults", "true")]).include_legacy_results


def test_query_parameters_exclude_path_and_body_fields() -> None:
    assert _GET.query_parameters == ("include_legacy_results",)
    assert _LIST.query_parameters == ("limit", "offset", "cursor", "include_total")
    assert _ALL_BODY.query_parameters == ()


def test_list_body_field_and_query() -> None:
    request = _list(
        {
            "status": "completed",
            "filters": {"created_after": "2026-01-01T01:00:00+01:00", "createdBefore": None},
            "sorts": [{"field": "duration_ms", "direction": "SORT_DIRECTION_ASC"}, {}],
        },
        [("limit", "50"), ("offset", "10"), ("cursor", "abc"), ("include_total", "true")],
    )
    expected = execution_service_pb2.ListExecutionsRequest(
        retriever_id="ret_1", limit=50, offset=10, cursor="abc", include_total=True
    )
    expected.query.status = execution_pb2.EXECUTION_STATUS_COMPLETED
    expected.query.filters.created_after.FromSeconds(1767225600)
    expected.query.sorts.add(
        field=execution_service_pb2.EXECUTION_SORT_FIELD_DURATION_MS,
        direction=execution_service_pb2.SORT_DIRECTION_ASC,
    )
    expected.query.sorts.add()
    assert request == expected
    assert not request.query.filters.HasField("created_before")


@pytest.mark.parametrize("status", ["failed", "EXECUTION_STATUS_FAILED", 4])
def test_enum_by_rest_name_proto_name_or_number(status: object) -> None:
    assert _list({"status": status}).query.status == execution_pb2.EXECUTION_STATUS_FAILED


@pytest.mark.parametrize("body", [b"", None])
def test_empty_body_leaves_the_body_field_unset(body: bytes | None) -> None:
    request: Any = _LIST.map_request({"retriever_id": "r"}, [], body, None)
    assert not request.HasField("query")


def test_json_null_body_leaves_the_body_field_unset() -> None:
    assert not _list(None).HasField("query")


def test_empty_object_body_sets_the_body_field() -> None:
    assert _list({}).HasField("query")


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/merge-patch+json",
        "",
    ],
)
def test_json_content_types(content_type: str | None) -> None:
    request: Any = _LIST.map_request(
        {"retriever_id": "r"}, [], b'{"status":"pending"}', content_type
    )
    assert request.query.status == execution_pb2.EXECUTION_STATUS_PENDING


def test_body_is_ignored_on_a_route_without_body() -> None:
    request: Any = _GET.map_request(_IDS, [], b"not json at all", "text/plain")
    assert request.execution_id == "exec_1"


def test_body_star_fills_every_kind_of_field() -> None:
    request = _body(
        {
            "d": "NaN",
            "f": 1.5,
            "i32": "-12",
            "i64": 9223372036854775807,
            "u64": 18446744073709551615,
            "s32": 3.0,
            "b": True,
            "by": "AP_-",
            "color": "dark_blue",
            "plain": "ONE",
            "optI32": 0,
            "inner": {"n": 1, "child": {"n": 2}},
            "r_i64": [1, "2"],
            "r_color": ["red", 2],
            "r_by": ["YWI="],
            "r_inner": [{"n": 3}, {}],
            "m_s": {"a": 1},
            "m_i": {"-5": "minus five"},
            "m_b": {"true": {"n": 1}},
            "m_u": {"7": "red"},
            "m_raw": {"k": {"any": ["json", 1]}},
            "c_inner": {"n": 4},
            "ts": "2026-11-28T20:38:15.123456789Z",
            "dur": "-1.5s",
            "st": {"a": [1, "x", None]},
            "val": None,
            "lv": [True],
            "w_i64": "0",
            "w_b": False,
            "w_by": "AQ==",
            "fm": "a.b,c",
            "empty": {},
            "any": {"@type": f"type.googleapis.com/{PACKAGE}.Inner", "n": 5},
            "raw": {"z": 1, "a": [1.5, None, "ü"]},
            "r_raw": [1, "two", None, {}],
            "r_ts": ["1970-01-01T00:00:00Z"],
            "class": 1,
            "camelCaseName": "camel",
        }
    )
    assert math.isnan(request.d)
    assert (request.f, request.i32, request.i64, request.u64) == (1.5, -12, 2**63 - 1, 2**64 - 1)
    assert (request.s32, request.b, request.by) == (3, True, b"\x00\xff\xfe")
    assert (request.color, request.plain) == (2, 1)
    assert request.HasField("opt_i32")
    assert request.inner.child.n == 2
    assert list(request.r_i64) == [1, 2]
    assert list(request.r_color) == [1, 2]
    assert list(request.r_by) == [b"ab"]
    assert [i.n for i in request.r_inner] == [3, 0]
    assert dict(request.m_s) == {"a": 1}
    assert dict(request.m_i) == {-5: "minus five"}
    assert request.m_b[True].n == 1
    assert dict(request.m_u) == {7: 1}
    assert request.m_raw["k"].json == '{"any":["json",1]}'
    assert request.WhichOneof("choice") == "c_inner"
    assert (request.ts.seconds, request.ts.nanos) == (1795898295, 123456789)
    assert (request.dur.seconds, request.dur.nanos) == (-1, -500_000_000)
    assert request.st["a"] == [1, "x", None]
    assert request.HasField("val")
    assert request.val.WhichOneof("kind") == "null_value"
    assert list(request.lv) == [True]
    assert request.HasField("w_i64")
    assert request.w_i64.value == 0
    assert request.HasField("w_b")
    assert request.w_by.value == b"\x01"
    assert list(request.fm.paths) == ["a.b", "c"]
    assert request.HasField("empty")
    assert request.any.type_url.endswith(".Inner")
    assert request.raw.json == '{"z":1,"a":[1.5,null,"ü"]}'
    assert [r.json for r in request.r_raw] == ["1", '"two"', "null", "{}"]
    assert request.r_ts[0] == timestamp_pb2.Timestamp()
    assert getattr(request, "class") == 1
    assert request.camel_case_name == "camel"
    assert request.s == "from-path"  # bound by the path


def test_path_wins_over_the_body_value_of_the_same_field() -> None:
    assert _body({"s": "from-body"}).s == "from-path"


def test_query_fills_nested_repeated_and_well_known_fields() -> None:
    request = _query(
        [
            ("inner.child.n", "3"),
            ("r_i64", "1"),
            ("r_i64", "-2"),
            ("color", "2"),
            ("r_color", "red"),
            ("ts", "2026-11-28T21:38:15.5+01:00"),
            ("dur", "2s"),
            ("w_i64", "0"),
            ("w_s", "x"),
            ("fm", "a,b.c"),
            ("by", "YWI"),
            ("d", "-Infinity"),
            ("f", "1e3"),
            ("optS", ""),
            ("c_i", "5"),
            ("r_ts", "1970-01-01T00:00:01Z"),
            ("class", "2"),
            ("required.name", "n"),
        ]
    )
    assert request.inner.n == 7  # from the path
    assert request.inner.child.n == 3
    assert list(request.r_i64) == [1, -2]
    assert (request.color, list(request.r_color)) == (2, [1])
    assert (request.ts.seconds, request.ts.nanos) == (1795898295, 500_000_000)
    assert request.dur.seconds == 2
    assert request.HasField("w_i64")
    assert request.w_s.value == "x"
    assert list(request.fm.paths) == ["a", "b.c"]
    assert request.by == b"ab"
    assert request.d == -math.inf
    assert request.f == 1000.0
    assert request.HasField("opt_s")
    assert request.c_i == 5
    assert request.r_ts[0].seconds == 1
    assert getattr(request, "class") == 2
    assert request.required.name == "n"


def test_query_does_not_offer_maps_repeated_messages_or_free_form_json() -> None:
    names = set(_ALL_QUERY.query_parameters)
    assert {"m_s", "r_inner", "st", "val", "raw", "r_raw", "any", "empty", "inner.n"}.isdisjoint(
        names
    )
    assert {"inner.child.n", "inner.child.child.n", "w_i64", "ts", "c_inner.n"} <= names


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("query", "error_type"),
    [
        ([("include_legacy_results", "yes")], "bool_parsing"),
        ([("include_legacy_results", "")], "bool_parsing"),
    ],
)
def test_bool_that_does_not_parse(query: list[tuple[str, str]], error_type: str) -> None:
    issue = _one_issue(_GET, _IDS, query, None, None)
    assert issue.loc == ("query", "include_legacy_results")
    assert issue.type == error_type


@pytest.mark.parametrize(
    ("name", "text", "error_type"),
    [
        ("i32", "1.5", "int_parsing"),
        ("i32", "٣", "int_parsing"),  # a non-ASCII digit
        ("i32", "2147483648", "less_than_equal"),
        ("i64", "-9223372036854775809", "greater_than_equal"),
        ("u32", "-1", "greater_than_equal"),
        ("u64", "18446744073709551616", "less_than_equal"),
        ("d", "1_000", "float_parsing"),
        ("d", "inf", "float_parsing"),
        ("f", "1e39", "finite_number"),
        ("color", "blue", "enum"),
        ("color", "9", "enum"),
        ("by", "!!", "bytes_invalid_encoding"),
        ("ts", "2026-11-28", "datetime_parsing"),
        ("ts", "2026-02-30T00:00:00Z", "datetime_parsing"),
        ("dur", "5", "time_delta_parsing"),
        ("s", "\udc80", "string_unicode"),
        ("w_b", "maybe", "bool_parsing"),
    ],
)
def test_query_value_that_does_not_parse(name: str, text: str, error_type: str) -> None:
    issue = _one_issue(_ALL_QUERY, {"inner.n": "1"}, [(name, text)], None, None)
    assert issue.loc == ("query", name)
    assert issue.type == error_type


def test_enum_error_lists_the_rest_names() -> None:
    issue = _one_issue(_LIST, {"retriever_id": "r"}, [], b'{"status":"done"}', None)
    assert issue.loc == ("body", "status")
    assert issue.type == "enum"
    assert issue.msg == (
        "Input should be 'pending', 'processing', 'completed', 'failed' or 'running'"
    )


def test_unknown_query_parameter_names_the_accepted_ones() -> None:
    issue = _one_issue(_GET, _IDS, [("include_legacy", "true")], None, None)
    assert issue.loc == ("query", "include_legacy")
    assert issue.type == "extra_forbidden"
    assert "include_legacy_results" in issue.msg


def test_body_star_route_takes_no_query_parameters() -> None:
    issue = _one_issue(_ALL_BODY, {"s": "x"}, [("i32", "1")], None, None)
    assert (issue.loc, issue.type) == (("query", "i32"), "extra_forbidden")
    assert issue.msg.endswith("accepted: none")


def test_path_bound_field_is_not_a_query_parameter() -> None:
    issue = _one_issue(_GET, _IDS, [("execution_id", "exec_2")], None, None)
    assert issue.type == "extra_forbidden"


def test_body_bound_field_is_not_a_query_parameter() -> None:
    issue = _one_issue(_LIST, {"retriever_id": "r"}, [("query.status", "failed")], None, None)
    assert issue.type == "extra_forbidden"


def test_repeating_a_singular_query_parameter() -> None:
    issue = _one_issue(
        _GET,
        _IDS,
        [("include_legacy_results", "true"), ("include_legacy_results", "true")],
        None,
        None,
    )
    assert (issue.loc, issue.type) == (("query", "include_legacy_results"), "value_error")
    assert "Only one value" in issue.msg


def test_two_spellings_of_one_parameter_must_agree() -> None:
    agreeing = [("include_legacy_results", "true"), ("includeLegacyResults", "1")]
    assert _get(agreeing).include_legacy_results
    issue = _one_issue(
        _GET,
        _IDS,
        [("include_legacy_results", "true"), ("includeLegacyResults", "false")],
        None,
        None,
    )
    assert (issue.loc, issue.type) == (("query", "includeLegacyResults"), "value_error")
    assert "disagree" in issue.msg


# ---------------------------------------------------------------- rest_field options


@pytest.mark.parametrize(
    ("query", "limit", "offset", "cursor"),
    [
        ([("page_size", "5")], 5, 0, ""),
        ([("limit", "5"), ("page_size", "5")], 5, 0, ""),
        ([("page", "3"), ("limit", "5")], 5, 10, ""),
        ([("page_size", "5"), ("page", "3")], 5, 10, ""),
        ([("page", "3")], 0, 40, ""),  # the default page size, 20; limit stays unset
        ([("page", "1")], 0, 0, ""),
        ([("page", "2"), ("offset", "20")], 0, 20, ""),
        ([("next_cursor", "c1")], 0, 0, "c1"),
        ([("after", "c1"), ("cursor", "c1")], 0, 0, "c1"),
        ([("limit", "1000"), ("offset", "10000")], 1000, 10000, ""),
        ([("page", "11"), ("limit", "1000")], 1000, 10000, ""),
    ],
)
def test_query_aliases_and_page_number(
    query: list[tuple[str, str]], limit: int, offset: int, cursor: str
) -> None:
    request = _list(None, query)
    assert (request.limit, request.offset, request.cursor) == (limit, offset, cursor)


@pytest.mark.parametrize(
    ("query", "loc", "error_type"),
    [
        ([("limit", "0")], "limit", "greater_than_equal"),
        ([("page_size", "0")], "page_size", "greater_than_equal"),
        ([("limit", "1001")], "limit", "less_than_equal"),
        ([("offset", "-1")], "offset", "greater_than_equal"),
        ([("offset", "10001")], "offset", "less_than_equal"),
        ([("page", "0")], "page", "greater_than_equal"),
        ([("page", "-2")], "page", "greater_than_equal"),
        ([("page", "502")], "page", "less_than_equal"),  # offset 10020 > 10000
        ([("page", "x")], "page", "int_parsing"),
        ([("page", "1"), ("page", "1")], "page", "value_error"),
        ([("limit", "5"), ("page_size", "6")], "page_size", "value_error"),
        ([("after", "a"), ("next_cursor", "b")], "next_cursor", "value_error"),
        ([("cursor", "a"), ("after", "b")], "after", "value_error"),
        ([("offset", "5"), ("page", "2")], "page", "value_error"),
    ],
)
def test_query_bounds_and_disagreeing_spellings_are_422(
    query: list[tuple[str, str]], loc: str, error_type: str
) -> None:
    issue = _one_issue(_LIST, {"retriever_id": "r"}, query, None, None)
    assert (issue.loc, issue.type) == (("query", loc), error_type)


def test_bounds_apply_in_a_body_too() -> None:
    mapper = compile_request_mapper(
        execution_service_pb2.ListExecutionsRequest.DESCRIPTOR, ["retriever_id"], "*"
    )
    issue = _one_issue(mapper, {"retriever_id": "r"}, [], b'{"limit": 0}', None)
    assert (issue.loc, issue.type) == (("body", "limit"), "greater_than_equal")
    request = mapper.map_request({"retriever_id": "r"}, [], b'{"limit": 7}', None)
    assert isinstance(request, execution_service_pb2.ListExecutionsRequest)
    assert request.limit == 7


def test_the_mapper_lists_aliases_and_page_parameters() -> None:
    assert _LIST.query_aliases == {"page_size": "limit", "next_cursor": "cursor", "after": "cursor"}
    assert _LIST.page_parameters == {"page": ("offset", "limit")}
    issue = _one_issue(_LIST, {"retriever_id": "r"}, [("size", "1")], None, None)
    assert issue.msg.endswith(
        "limit, offset, cursor, include_total, page_size, next_cursor, after, page"
    )


def test_path_value_that_does_not_parse_and_missing_path_value() -> None:
    issue = _one_issue(_ALL_QUERY, {"inner.n": "seven"}, [], None, None)
    assert (issue.loc, issue.type) == (("path", "inner.n"), "int_parsing")
    issue = _one_issue(_GET, {"retriever_id": "r"}, [], None, None)
    assert (issue.loc, issue.type) == (("path", "execution_id"), "missing")


def test_unknown_body_key_nested_location_and_accepted_names() -> None:
    issue = _one_issue(_LIST, {"retriever_id": "r"}, [], b'{"filters":{"created_since":"x"}}', None)
    assert issue.loc == ("body", "filters", "created_since")
    assert issue.type == "extra_forbidden"
    assert "created_after, created_before" in issue.msg


def test_nested_body_value_that_does_not_parse() -> None:
    issue = _one_issue(
        _LIST, {"retriever_id": "r"}, [], b'{"filters":{"created_after":"yesterday"}}', None
    )
    assert (issue.loc, issue.type) == (("body", "filters", "created_after"), "datetime_parsing")


def test_every_problem_is_reported_at_once() -> None:
    issues = _issues(
        _LIST,
        {"retriever_id": "r"},
        [("limit", "many"), ("pages", "2")],
        b'{"status":1.5,"sorts":[{"field":"nope"}],"extra":1}',
        None,
    )
    assert [(i.loc, i.type) for i in issues] == [
        (("body", "status"), "enum"),
        (("body", "sorts", 0, "field"), "enum"),
        (("body", "extra"), "extra_forbidden"),
        (("query", "limit"), "int_parsing"),
        (("query", "pages"), "extra_forbidden"),
    ]


@pytest.mark.parametrize(
    ("body", "loc", "error_type"),
    [
        ({"i32": True}, ("body", "i32"), "int_type"),
        ({"i32": 1.5}, ("body", "i32"), "int_from_float"),
        ({"i32": [1]}, ("body", "i32"), "int_type"),
        ({"u32": -1}, ("body", "u32"), "greater_than_equal"),
        ({"i64": 2**63}, ("body", "i64"), "less_than_equal"),
        ({"d": "x"}, ("body", "d"), "float_parsing"),
        ({"d": False}, ("body", "d"), "float_type"),
        ({"b": "true"}, ("body", "b"), "bool_type"),
        ({"b": 1}, ("body", "b"), "bool_type"),
        ({"camel_case_name": 5}, ("body", "camel_case_name"), "string_type"),
        ({"by": 5}, ("body", "by"), "bytes_type"),
        ({"color": True}, ("body", "color"), "enum"),
        ({"inner": [1]}, ("body", "inner"), "model_attributes_type"),
        ({"inner": {"n": "x"}}, ("body", "inner", "n"), "int_parsing"),
        ({"r_i64": 1}, ("body", "r_i64"), "list_type"),
        ({"r_i64": [1, "x"]}, ("body", "r_i64", 1), "int_parsing"),
        ({"r_s": [None]}, ("body", "r_s", 0), "string_type"),
        ({"r_inner": [{"m": 1}]}, ("body", "r_inner", 0, "m"), "extra_forbidden"),
        ({"m_s": []}, ("body", "m_s"), "dict_type"),
        ({"m_i": {"x": "y"}}, ("body", "m_i", "x"), "int_parsing"),
        ({"m_b": {"yes": {}}}, ("body", "m_b", "yes"), "bool_parsing"),
        ({"m_s": {"a": "b"}}, ("body", "m_s", "a"), "int_parsing"),
        ({"ts": 5}, ("body", "ts"), "datetime_type"),
        ({"ts": "2026-11-28T20:38:15"}, ("body", "ts"), "datetime_parsing"),
        ({"dur": "1m"}, ("body", "dur"), "time_delta_parsing"),
        ({"st": [1]}, ("body", "st"), "value_error"),
        ({"w_i64": "x"}, ("body", "w_i64"), "int_parsing"),
        ({"c_s": "a", "c_i": 1}, ("body", "c_i"), "value_error"),
        ({"r_i64": [1], "rI64": [2]}, ("body", "rI64"), "value_error"),
        ({"required": {}}, ("body", "required", "name"), "missing"),
    ],
)
def test_body_value_errors(body: object, loc: tuple[object, ...], error_type: str) -> None:
    issue = _one_issue(_ALL_BODY, {"s": "x"}, [], orjson.dumps(body), None)
    assert (issue.loc, issue.type) == (loc, error_type)


def test_deeply_nested_bodies_are_validation_errors() -> None:
    nested: dict[str, Any] = {}
    for _ in range(200):
        nested = {"child": nested}
    issue = _one_issue(_ALL_BODY, {"s": "x"}, [], orjson.dumps({"inner": nested}), None)
    assert issue.type == "value_error"
    assert len(issue.loc) == 65  # refused beyond 64 levels
    deep_json = b"[" * 300 + b"]" * 300
    for key in (b"raw", b"st", b"lv"):
        body = b'{"' + key + b'":' + (b'{"a":' if key == b"st" else b"") + deep_json
        body += b"}" * (2 if key == b"st" else 1)
        issue = _one_issue(_ALL_BODY, {"s": "x"}, [], body, None)
        assert (issue.loc, issue.type) == (("body", key.decode()), "value_error")


def test_required_but_output_only_fields_are_not_required_in_bodies() -> None:
    assert _body({"required": {"name": "n"}}).required.name == "n"


def test_body_that_is_not_an_object() -> None:
    issue = _one_issue(_ALL_BODY, {"s": "x"}, [], b"[1]", None)
    assert (issue.loc, issue.type) == (("body",), "model_attributes_type")
    issue = _one_issue(_LIST, {"retriever_id": "r"}, [], b'"x"', None)
    assert (issue.loc, issue.type) == (("body",), "model_attributes_type")


@pytest.mark.parametrize("body", [b"{", b"{'a': 1}", b"nul", b" "])
def test_invalid_json_body(body: bytes) -> None:
    with pytest.raises(InvalidJsonError):
        _LIST.map_request({"retriever_id": "r"}, [], body, "application/json")


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_body_with_a_non_json_content_type(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaTypeError) as caught:
        _LIST.map_request({"retriever_id": "r"}, [], b"{}", content_type)
    assert caught.value.content_type == content_type


# ---------------------------------------------------------------- compile-time errors


@pytest.mark.parametrize(
    ("path_fields", "body", "message"),
    [
        (["nope"], "", "nope"),
        (["inner.nope"], "", "inner.nope"),
        (["inner"], "", "inner"),
        (["r_i64"], "", "r_i64"),
        (["r_inner.n"], "", "r_inner.n"),
        (["s"], "nope", "nope"),
    ],
)
def test_unusable_route_fails_at_compile_time_naming_the_field(
    path_fields: list[str], body: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        compile_request_mapper(ALL_TYPES, path_fields, body)


# ExecutionDetail: a message with a RawJsonList field (`documents`), mapped from a body.
_DETAIL_BODY = compile_request_mapper(execution_pb2.ExecutionDetail.DESCRIPTOR, [], "*")
_DETAIL_REQUIRED = {"execution_id": "exec_1", "status": "completed"}


def test_raw_json_list_stores_the_compact_array_text() -> None:
    body = {**_DETAIL_REQUIRED, "documents": [{"z": 1, "a": [1.5, None, "ü"]}, {}], "results": []}
    request = _DETAIL_BODY.map_request({}, [], orjson.dumps(body), "application/json")
    assert isinstance(request, execution_pb2.ExecutionDetail)
    assert request.documents.json == '[{"z":1,"a":[1.5,null,"ü"]},{}]'
    assert request.HasField("results")
    assert request.results.json == "[]"


@pytest.mark.parametrize("value", [{"a": 1}, "[]", 1])
def test_raw_json_list_requires_an_array(value: object) -> None:
    issue = _one_issue(
        _DETAIL_BODY, {}, [], orjson.dumps({**_DETAIL_REQUIRED, "documents": value}), None
    )
    assert (issue.loc, issue.type) == (("body", "documents"), "list_type")
