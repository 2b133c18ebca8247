"""Filling a request message from path parameters, query parameters and a JSON body.

`compile_request_mapper(descriptor, path_fields, body)` is called once per route at
start-up (it raises ValueError naming a bad field); `mapper.map_request(...)` per request.

Per `google/api/http.proto`: fields bound by the path or the body are not query
parameters, and with `body: "*"` there are none. The path wins over a body value for the
same field. Names: proto names (`include_legacy_results`) and lowerCamel JSON names
(`includeLegacyResults`) are both accepted, in the query (dotted for nested fields,
`filters.created_after`) and in the body. Query parameters set scalar, enum and
single-value well-known-type fields, repeated ones by repeating the parameter (a
singular one given twice is an error); maps, repeated messages and free-form JSON
fields are body-only. Value spellings: see `value_parsing`. JSON `null` leaves a field
unset. A `RawJson` field accepts any JSON value and stores its compact serialisation; a
`RawJsonList` field accepts a JSON array and stores the array's compact serialisation.
A field marked `(google.api.field_behavior) = REQUIRED` (and not OUTPUT_ONLY) must be
given in the body object that holds it (or as a query parameter, at the top level).

`(execgate.api.v1.rest_field)` options add to this: integer `minimum`/`maximum` (checked
wherever the field is read), `query_aliases` (other query names of a field: a value
given under two spellings must be the same) and `page_number` (a 1-based page in the
query that sets an offset field to (page - 1) * page size, the page size being the
given value of `page_size_field` or its `default_value`).

Every problem found is collected into one `RequestValidationError` (422); a body that is
not JSON raises `InvalidJsonError` (400) and a body with a non-JSON content type
`UnsupportedMediaTypeError` (415). A request without Content-Type is read as JSON.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import orjson
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from gateway.transcode import descriptor_info as info
from gateway.transcode.exceptions import (
    InvalidJsonError,
    RequestValidationError,
    UnsupportedMediaTypeError,
    ValidationIssue,
)
from gateway.transcode.value_parsing import (
    JsonParser,
    ParsedValue,
    TextParser,
    ValueParseError,
    integer_text_parser,
    message_value_parsers,
    scalar_parsers,
)

Loc = tuple[str | int, ...]
# Query parameters are offered this many message levels deep (`a.b.c.d`); this also
# bounds recursive message types.
_MAX_QUERY_DEPTH = 4
# Locations deeper than this in a body are refused: recursive messages would otherwise
# exhaust the Python stack before orjson's own nesting limit.
_MAX_BODY_DEPTH = 64
_JSON_PARSED_TYPES = frozenset({info.STRUCT, info.VALUE, info.LIST_VALUE, info.ANY, info.EMPTY})
_OBJECT_EXPECTED = "Input should be a valid dictionary or object to extract fields from"


def _assign(target: Message, field: FieldDescriptor, value: ParsedValue) -> None:
    """Sets a singular field or appends to a repeated one; messages are copied in."""
    if field.message_type is not None:
        assert isinstance(value, Message)
        if field.is_repeated:
            getattr(target, field.name).add().CopyFrom(value)
        else:
            child = getattr(target, field.name)
            child.CopyFrom(value)
            child.SetInParent()  # a default-valued wrapper or Timestamp is still "set"
    elif field.is_repeated:
        getattr(target, field.name).append(value)
    else:
        setattr(target, field.name, value)


_Raw = TypeVar("_Raw")  # a URL text (path, query) or a decoded JSON value (body)


def _parse(
    parse: Callable[[_Raw], ParsedValue], raw: _Raw, loc: Loc, errors: list[ValidationIssue]
) -> tuple[bool, ParsedValue]:
    """Parses a URL text or a JSON value; a failure becomes a ValidationIssue at `loc`."""
    try:
        return True, parse(raw)
    except ValueParseError as invalid:
        errors.append(ValidationIssue(loc, invalid.msg, invalid.type))
        return False, None


def _text_parser(field: FieldDescriptor) -> TextParser | None:
    """URL-text parser of a field usable as a path or query value, or None."""
    if field.message_type is not None:
        parsers = message_value_parsers(field)
        return parsers[0] if parsers else None
    return scalar_parsers(field)[0]


# ---------------------------------------------------------------- JSON body


@dataclass(frozen=True, slots=True)
class _BodyFields:
    """How JSON objects of one message type are read."""

    by_key: Mapping[str, FieldDescriptor]
    accepted: str
    required: tuple[FieldDescriptor, ...]


@functools.cache
def _body_fields(descriptor: Descriptor) -> _BodyFields:
    by_key: dict[str, FieldDescriptor] = {}
    for field in descriptor.fields:
        by_key[field.name] = field
        by_key.setdefault(field.json_name, field)
    return _BodyFields(
        by_key=by_key,
        accepted=", ".join(f.name for f in descriptor.fields) or "none",
        required=tuple(f for f in descriptor.fields if info.is_required_input(f)),
    )


def _raw_json_parser(field: FieldDescriptor) -> JsonParser:
    message_class = info.message_class(info.message_type(field))

    def parse(value: object) -> Message:
        try:
            text = orjson.dumps(value).decode()
        except orjson.JSONEncodeError:  # orjson writes at most 254 levels of nesting
            raise ValueParseError("value_error", "JSON value is nested too deeply") from None
        return message_class(json=text)

    return parse


def _raw_json_list_parser(field: FieldDescriptor) -> JsonParser:
    parse_any = _raw_json_parser(field)

    def parse(value: object) -> ParsedValue:
        if not isinstance(value, list):
            raise ValueParseError("list_type", "Input should be a valid list")
        return parse_any(value)

    return parse


def _json_format_parser(descriptor: Descriptor) -> JsonParser:
    message_class = info.message_class(descriptor)

    def parse(value: object) -> Message:
        try:
            return json_format.ParseDict(value, message_class())  # type: ignore[arg-type]
        except json_format.ParseError as error:
            raise ValueParseError("value_error", str(error)[:300]) from None
        except RecursionError:
            raise ValueParseError("value_error", "JSON value is nested too deeply") from None

    return parse


@functools.cache
def _json_value_parser(field: FieldDescriptor) -> JsonParser | None:
    """Parser of one JSON value of `field` (an element if repeated), or None when the value
    is a JSON object filled field by field (an ordinary message)."""
    if field.message_type is None:
        return scalar_parsers(field)[1]
    name = info.message_type_name(field)
    if name == info.RAW_JSON:
        return _raw_json_parser(field)
    if name == info.RAW_JSON_LIST:
        return _raw_json_list_parser(field)
    if name in _JSON_PARSED_TYPES:
        return _json_format_parser(info.message_type(field))
    parsers = message_value_parsers(field)
    return parsers[1] if parsers else None


def _fill_from_json(
    message: Message,
    value: object,
    loc: Loc,
    errors: list[ValidationIssue],
    exempt: frozenset[str] = frozenset(),
) -> None:
    """Fills `message` from a JSON object, collecting every problem into `errors`."""
    if not isinstance(value, dict):
        errors.append(ValidationIssue(loc, _OBJECT_EXPECTED, "model_attributes_type"))
        return
    if len(loc) > _MAX_BODY_DEPTH:
        errors.append(ValidationIssue(loc, "Input is nested too deeply", "value_error"))
        return
    fields = _body_fields(message.DESCRIPTOR)
    given: set[str] = set()
    oneof_choice: dict[str, str] = {}
    for key, item in value.items():
        field = fields.by_key.get(key)
        if field is None:
            errors.append(
                ValidationIssue(
                    (*loc, key),
                    f"Extra inputs are not permitted; accepted fields: {fields.accepted}",
                    "extra_forbidden",
                )
            )
            continue
        if field.name in given:
            errors.append(
                ValidationIssue((*loc, key), f"Field {field.name} is given twice", "value_error")
            )
            continue
        if item is None and info.message_type_name(field) != info.VALUE:
            continue  # JSON null leaves the field unset
        given.add(field.name)
        if field.containing_oneof is not None and info.is_real_oneof_member(field):
            oneof = field.containing_oneof.name
            chosen = oneof_choice.setdefault(oneof, field.name)
            if chosen != field.name:
                errors.append(
                    ValidationIssue(
                        (*loc, key),
                        f"Only one of the fields of {oneof} may be set; {chosen} already is",
                        "value_error",
                    )
                )
                continue
        _set_from_json(message, field, item, (*loc, key), errors)
    for field in fields.required:
        if field.name not in given and field.name not in exempt:
            errors.append(ValidationIssue((*loc, field.name), "Field required", "missing"))


def _set_from_json(
    message: Message,
    field: FieldDescriptor,
    value: object,
    loc: Loc,
    errors: list[ValidationIssue],
) -> None:
    if info.is_map(field):
        _set_map_from_json(message, field, value, loc, errors)
        return
    parse = _json_value_parser(field)
    if field.is_repeated:
        if not isinstance(value, list):
            errors.append(ValidationIssue(loc, "Input should be a valid list", "list_type"))
            return
        container = getattr(message, field.name)
        for index, item in enumerate(value):
            if parse is None:
                _fill_from_json(container.add(), item, (*loc, index), errors)
                continue
            ok, parsed = _parse(parse, item, (*loc, index), errors)
            if ok:
                _assign_checked(message, field, parsed, (*loc, index), errors)
        return
    if parse is None:
        child = getattr(message, field.name)
        child.SetInParent()
        _fill_from_json(child, value, loc, errors)
        return
    ok, parsed = _parse(parse, value, loc, errors)
    if ok:
        _assign_checked(message, field, parsed, loc, errors)


def _assign_checked(
    message: Message,
    field: FieldDescriptor,
    value: ParsedValue,
    loc: Loc,
    errors: list[ValidationIssue],
) -> None:
    try:
        _assign(message, field, value)
    except (TypeError, ValueError) as error:  # protobuf's own checks, e.g. open enums
        errors.append(ValidationIssue(loc, f"Invalid value: {error}"[:300], "value_error"))


def _set_map_from_json(
    message: Message,
    field: FieldDescriptor,
    value: object,
    loc: Loc,
    errors: list[ValidationIssue],
) -> None:
    if not isinstance(value, dict):
        errors.append(ValidationIssue(loc, "Input should be a valid dictionary", "dict_type"))
        return
    key_field, value_field = info.map_key_value(field)
    parse_key = scalar_parsers(key_field)[0]
    parse_value = _json_value_parser(value_field)
    container = getattr(message, field.name)
    for raw_key, item in value.items():
        ok, key = _parse(parse_key, raw_key, (*loc, raw_key), errors)
        if not ok:
            continue
        if parse_value is None:
            _fill_from_json(container[key], item, (*loc, raw_key), errors)
            continue
        ok, parsed = _parse(parse_value, item, (*loc, raw_key), errors)
        if not ok:
            continue
        if isinstance(parsed, Message):
            container[key].CopyFrom(parsed)
        else:
            try:
                container[key] = parsed
            except (TypeError, ValueError) as error:
                errors.append(
                    ValidationIssue((*loc, raw_key), f"Invalid value: {error}"[:300], "value_error")
                )


def _is_json_media_type(content_type: str) -> bool:
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type in ("", "application/json") or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


# ---------------------------------------------------------------- path and query


@dataclass(frozen=True, slots=True)
class _UrlField:
    """A field set from one URL value: its dotted proto name and the fields leading to it."""

    name: str
    path: tuple[FieldDescriptor, ...]
    parse: TextParser

    def set(self, message: Message, value: ParsedValue) -> None:
        target = message
        for field in self.path[:-1]:
            target = getattr(target, field.name)
        _assign(target, self.path[-1], value)

    @property
    def leaf(self) -> FieldDescriptor:
        return self.path[-1]


@dataclass(frozen=True, slots=True)
class _PageNumber:
    """A 1-based page number query parameter that sets `offset` to (page - 1) * size."""

    name: str
    offset: _UrlField
    size: _UrlField
    default_size: int
    parse: TextParser


def _is_singular_integer(field: FieldDescriptor) -> bool:
    return field.type in info.INTEGER_RANGES and not field.is_repeated


def _query_aliases(descriptor: Descriptor, query: dict[str, _UrlField]) -> dict[str, _UrlField]:
    """`rest_field.query_aliases` of the query parameters: alias -> field."""
    aliases: dict[str, _UrlField] = {}
    for url_field in dict.fromkeys(query.values()):
        rules = info.rest_field(url_field.leaf)
        for alias in rules.query_aliases if rules is not None else ():
            if alias in query or alias in aliases:
                raise ValueError(
                    f"{descriptor.full_name}.{url_field.name}: query alias {alias!r} "
                    "is already a query parameter"
                )
            aliases[alias] = url_field
    return aliases


def _page_numbers(descriptor: Descriptor, query: Mapping[str, _UrlField]) -> dict[str, _PageNumber]:
    """`rest_field.page_number` of the query parameters: page parameter name -> its rule."""
    pages: dict[str, _PageNumber] = {}
    for url_field in dict.fromkeys(query.values()):
        rules = info.rest_field(url_field.leaf)
        if rules is None or not rules.HasField("page_number"):
            continue
        where = f"{descriptor.full_name}.{url_field.name}"
        page = rules.page_number
        size = query.get(page.page_size_field)
        size_rules = info.rest_field(size.leaf) if size is not None else None
        if (
            size is None
            or size_rules is None
            or not size_rules.HasField("default_value")
            or not _is_singular_integer(size.leaf)
            or not _is_singular_integer(url_field.leaf)
        ):
            raise ValueError(
                f"{where}: page_number needs an integer offset and a page_size_field naming "
                "an integer query parameter with a default_value"
            )
        if not page.query_name or page.query_name in query or page.query_name in pages:
            raise ValueError(f"{where}: page number name {page.query_name!r} is not free")
        pages[page.query_name] = _PageNumber(
            page.query_name,
            url_field,
            size,
            size_rules.default_value,
            integer_text_parser(1, info.INTEGER_RANGES[url_field.leaf.type][1]),
        )
    return pages


def _resolve_path_field(descriptor: Descriptor, dotted: str) -> _UrlField:
    path: list[FieldDescriptor] = []
    current: Descriptor | None = descriptor
    for segment in dotted.split("."):
        field = current.fields_by_name.get(segment) if current is not None else None
        if field is None:
            raise ValueError(f"{descriptor.full_name} has no field {dotted!r}")
        path.append(field)
        current = field.message_type
    leaf = path[-1]
    parse = None if leaf.is_repeated else _text_parser(leaf)
    if parse is None or any(f.is_repeated for f in path):
        raise ValueError(f"{descriptor.full_name}.{dotted} cannot be bound to a path variable")
    return _UrlField(dotted, tuple(path), parse)


def _query_fields(descriptor: Descriptor, excluded: frozenset[str]) -> dict[str, _UrlField]:
    """Every query parameter name (proto and JSON spellings) -> its field."""
    found: dict[str, _UrlField] = {}

    def walk(
        message: Descriptor,
        proto_prefix: str,
        json_prefix: str,
        path: tuple[FieldDescriptor, ...],
    ) -> None:
        for field in message.fields:
            name = proto_prefix + field.name
            json_name = json_prefix + field.json_name
            if name in excluded or info.is_map(field):
                continue
            if field.message_type is not None and message_value_parsers(field) is None:
                nested = info.message_type(field)
                if (
                    field.is_repeated
                    or nested.full_name in info.SPECIAL_JSON_TYPES
                    or len(path) + 1 >= _MAX_QUERY_DEPTH
                ):
                    continue
                walk(nested, name + ".", json_name + ".", (*path, field))
                continue
            parse = _text_parser(field)
            assert parse is not None
            url_field = _UrlField(name, (*path, field), parse)
            found[name] = url_field
            found.setdefault(json_name, url_field)

    walk(descriptor, "", "", ())
    return found


class RequestMapper:
    """Builds the request message of one route from the parts of an HTTP request."""

    def __init__(self, descriptor: Descriptor, path_fields: Sequence[str], body: str) -> None:
        self.descriptor = descriptor
        self._message_class = info.message_class(descriptor)
        self._path = tuple(_resolve_path_field(descriptor, dotted) for dotted in path_fields)
        self._body = body
        self._body_field: FieldDescriptor | None = None
        if body and body != "*":
            self._body_field = descriptor.fields_by_name.get(body)
            if self._body_field is None:
                raise ValueError(f"body {body!r} is not a field of {descriptor.full_name}")
        # Top-level fields the path binds need not appear in a `body: "*"` object.
        self._path_roots = frozenset(dotted.split(".")[0] for dotted in path_fields)
        if body == "*":
            self._query: dict[str, _UrlField] = {}
        else:
            self._query = _query_fields(
                descriptor, frozenset(path_fields) | ({body} if body else set())
            )
        canonical = dict.fromkeys(field.name for field in self._query.values())
        self.query_parameters: tuple[str, ...] = tuple(canonical)
        aliases = _query_aliases(descriptor, self._query)
        self._pages = _page_numbers(descriptor, self._query)
        self._query.update(aliases)
        # Other query names: alias -> the parameter it spells; page -> the offset it sets.
        self.query_aliases: dict[str, str] = {name: f.name for name, f in aliases.items()}
        self.page_parameters: dict[str, tuple[str, str]] = {
            name: (page.offset.name, page.size.name) for name, page in self._pages.items()
        }
        self._accepted_query = ", ".join([*canonical, *aliases, *self._pages]) or "none"
        self._required_query = tuple(
            name
            for name in canonical
            if "." not in name and info.is_required_input(descriptor.fields_by_name[name])
        )

    def map_request(
        self,
        path_params: Mapping[str, str],
        query: Iterable[tuple[str, str]],
        body: bytes | None,
        content_type: str | None,
    ) -> Message:
        """The request message; raises RequestValidationError, InvalidJsonError or
        UnsupportedMediaTypeError. `path_params` are percent-decoded, keyed by dotted
        field path; `query` is the decoded (name, value) pairs in order."""
        message = self._message_class()
        errors: list[ValidationIssue] = []
        if self._body and body:
            self._read_body(message, body, content_type, errors)
        for url_field in self._path:
            text = path_params.get(url_field.name)
            if text is None:
                errors.append(
                    ValidationIssue(("path", url_field.name), "Field required", "missing")
                )
                continue
            ok, value = _parse(url_field.parse, text, ("path", url_field.name), errors)
            if ok:
                url_field.set(message, value)
        self._read_query(message, query, errors)
        if errors:
            raise RequestValidationError(errors)
        return message

    def _read_body(
        self,
        message: Message,
        body: bytes,
        content_type: str | None,
        errors: list[ValidationIssue],
    ) -> None:
        if content_type is not None and not _is_json_media_type(content_type):
            raise UnsupportedMediaTypeError(content_type)
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise InvalidJsonError(str(error)) from None
        if self._body_field is None:
            _fill_from_json(message, value, ("body",), errors, exempt=self._path_roots)
        elif value is not None:
            _set_from_json(message, self._body_field, value, ("body",), errors)

    def _read_query(
        self, message: Message, query: Iterable[tuple[str, str]], errors: list[ValidationIssue]
    ) -> None:
        # Parameter (canonical name) -> (the spelling used, its value; None if invalid).
        seen: dict[str, tuple[str, ParsedValue]] = {}
        pages: dict[str, tuple[_PageNumber, int]] = {}
        for name, text in query:
            page = self._pages.get(name)
            if page is not None:
                if name in pages:
                    errors.append(_only_one_value(name))
                    continue
                ok, number = _parse(page.parse, text, ("query", name), errors)
                if ok:
                    assert isinstance(number, int)
                    pages[name] = (page, number)
                continue
            url_field = self._query.get(name)
            if url_field is None:
                errors.append(
                    ValidationIssue(
                        ("query", name),
                        f"Unknown query parameter; accepted: {self._accepted_query}",
                        "extra_forbidden",
                    )
                )
                continue
            repeated = url_field.leaf.is_repeated
            earlier = seen.get(url_field.name)
            if earlier is not None and not repeated and earlier[0] == name:
                errors.append(_only_one_value(name))
                continue
            ok, value = _parse(url_field.parse, text, ("query", name), errors)
            if earlier is not None and not repeated:
                if ok and earlier[1] is not None and earlier[1] != value:
                    errors.append(_disagree(name, earlier[0]))
                continue  # the same value under another name, or already reported
            seen[url_field.name] = (name, value if ok else None)
            if ok:
                url_field.set(message, value)
        for page, number in pages.values():
            self._set_page(message, page, number, seen, errors)
        for name in self._required_query:
            if name not in seen:
                errors.append(ValidationIssue(("query", name), "Field required", "missing"))

    @staticmethod
    def _set_page(
        message: Message,
        page: _PageNumber,
        number: int,
        seen: Mapping[str, tuple[str, ParsedValue]],
        errors: list[ValidationIssue],
    ) -> None:
        given_size = seen.get(page.size.name)
        if given_size is not None and given_size[1] is None:
            return  # the page size is invalid (reported)
        size = given_size[1] if given_size is not None else page.default_size
        assert isinstance(size, int)
        offset = (number - 1) * size
        low, high = info.integer_bounds(page.offset.leaf)
        if not low <= offset <= high:
            errors.append(
                ValidationIssue(
                    ("query", page.name),
                    f"Input should be at most {high // size + 1} with {size} per page "
                    f"({page.offset.name} {low} to {high})",
                    "less_than_equal",
                )
            )
            return
        given_offset = seen.get(page.offset.name)
        if given_offset is not None:
            if given_offset[1] is not None and given_offset[1] != offset:
                errors.append(_disagree(page.name, given_offset[0]))
            return
        page.offset.set(message, offset)


def _only_one_value(name: str) -> ValidationIssue:
    return ValidationIssue(
        ("query", name), "Only one value is allowed for this parameter", "value_error"
    )


def _disagree(name: str, other: str) -> ValidationIssue:
    return ValidationIssue(
        ("query", name), f"{name} and {other} name one parameter but disagree", "value_error"
    )


def compile_request_mapper(
    descriptor: Descriptor, path_fields: Sequence[str], body: str
) -> RequestMapper:
    """The mapper of a route whose rule binds `path_fields` (dotted field paths) in its
    path template and has `body` "" (no body), "*" (the whole message) or a field name.
    Raises ValueError naming the field when a path field or the body field is unusable."""
    return RequestMapper(descriptor, path_fields, body)
