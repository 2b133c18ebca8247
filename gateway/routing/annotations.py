"""Read `google.api.http` rules from service descriptors into validated `Route`s.

Everything a request will need from a rule is resolved here, once, at start-up:
the parsed template, the gRPC method path, the request and response messages,
the field descriptors behind each path variable, the body and response-body
fields. Every problem is reported at once in one `RouteConfigError`, each line
naming the method (Envoy's `filter_config.cc` fails the same way), so a bad
proto stops the gateway before it serves anything.

Rules enforced beyond the template grammar (http.proto, plus what this gateway
does not support):
- a path variable names an existing, singular, non-message field, reached
  through singular message fields; a multi-segment variable (`{name=a/*}`,
  `{name=**}`) names a string field;
- `body` is "", "*" or an existing top-level field that is not repeated or a
  map (JSON arrays as bodies are not supported); never with GET;
- `response_body` is "" or an existing top-level response field;
- no client-streaming method (server-streaming ones become routes flagged
  `streaming`); `additional_bindings` nest one level only; a `custom` kind is
  an upper-case method name or `*` (any method).
Conflicts between rules (same method, equivalent template) are found by
`table.RouteTable`, which sees all routes together.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from google.api import (  # type: ignore[import-untyped, unused-ignore]
    annotations_pb2,
    http_pb2,
)
from google.protobuf.descriptor import (
    Descriptor,
    FieldDescriptor,
    MethodDescriptor,
    ServiceDescriptor,
)

from gateway.routing.errors import RouteConfigError, TemplateError
from gateway.routing.template import PathTemplate, parse_template

_STANDARD_PATTERNS = {
    "get": "GET",
    "put": "PUT",
    "post": "POST",
    "delete": "DELETE",
    "patch": "PATCH",
}
_CUSTOM_KIND = re.compile(r"[A-Z][A-Z0-9-]*|\*")
# Methods whose requests carry no body by HTTP semantics.
_BODILESS_METHODS = frozenset(("GET", "HEAD"))


@dataclass(frozen=True, slots=True)
class PathField:
    """A path variable resolved against the request message."""

    name: str  # dotted field path, e.g. "book.shelf_id"
    fields: tuple[FieldDescriptor, ...]  # from the request message down to the scalar


@dataclass(frozen=True, slots=True, eq=False)
class Route:
    """One HTTP binding of one RPC; a method with `additional_bindings` has several."""

    http_method: str  # "GET", "POST", ... or "*" (a custom rule for any method)
    template: PathTemplate
    grpc_method: str  # "/package.Service/Method", the gRPC call path
    method: MethodDescriptor
    request: Descriptor
    response: Descriptor
    body: str  # "" (no body), "*" (every field not in the path), or a top-level field name
    body_field: FieldDescriptor | None  # set when `body` names a field
    response_body: str  # "" (the whole response) or a top-level response field name
    response_body_field: FieldDescriptor | None
    streaming: bool  # server-streaming: needs a streaming dispatch (SSE), not a unary call
    path_fields: tuple[PathField, ...]
    path_field_names: frozenset[str]
    binding_index: int  # 0 for the rule itself, i + 1 for `additional_bindings[i]`

    def __repr__(self) -> str:
        return f"Route({self.description})"

    @property
    def description(self) -> str:
        """How error messages and logs name this route: method, rule and template."""
        where = "" if self.binding_index == 0 else f" additional_bindings[{self.binding_index - 1}]"
        return f"{self.method.full_name}{where} ({self.http_method} {self.template.source})"


def routes_from_services(services: Iterable[ServiceDescriptor]) -> tuple[Route, ...]:
    """Every route of every annotated method of `services`, in declaration order.

    Raise `RouteConfigError` listing every bad rule, and every service that has
    no annotated method at all (exposing it is then a configuration mistake).
    """
    routes: list[Route] = []
    problems: list[str] = []
    for service in services:
        annotated = False
        for method in service.methods:
            rule = _http_rule(method)
            if rule is None:
                continue
            annotated = True
            for index, binding in enumerate(_bindings(method, rule, problems)):
                try:
                    routes.append(_route(method, binding, index))
                except _InvalidRuleError as problem:
                    label = "" if index == 0 else f" additional_bindings[{index - 1}]"
                    problems.append(f"{method.full_name}{label}: {problem}")
        if not annotated:
            problems.append(f"{service.full_name}: no method has a google.api.http rule")
    if problems:
        raise RouteConfigError(problems)
    return tuple(routes)


class _InvalidRuleError(Exception):
    """Internal: why one binding is invalid; becomes a line of `RouteConfigError`."""


def _http_rule(method: MethodDescriptor) -> http_pb2.HttpRule | None:
    options = method.GetOptions()
    if not options.HasExtension(annotations_pb2.http):
        return None
    rule: http_pb2.HttpRule = options.Extensions[annotations_pb2.http]
    return rule


def _bindings(
    method: MethodDescriptor, rule: http_pb2.HttpRule, problems: list[str]
) -> Iterator[http_pb2.HttpRule]:
    yield rule
    for index, binding in enumerate(rule.additional_bindings):
        if binding.additional_bindings:
            problems.append(
                f"{method.full_name} additional_bindings[{index}]: "
                "additional_bindings nest one level only"
            )
        yield binding


def _route(method: MethodDescriptor, rule: http_pb2.HttpRule, binding_index: int) -> Route:
    http_method, source = _pattern(rule)
    try:
        template = parse_template(source)
    except TemplateError as error:
        raise _InvalidRuleError(str(error)) from None
    if method.client_streaming:
        raise _InvalidRuleError("client-streaming methods cannot be served over REST")
    request, response = method.input_type, method.output_type
    path_fields = tuple(
        _path_field(request, variable.field_path, multi_segment=variable.multi_segment)
        for variable in template.variables
    )
    return Route(
        http_method=http_method,
        template=template,
        grpc_method=f"/{method.containing_service.full_name}/{method.name}",
        method=method,
        request=request,
        response=response,
        body=rule.body,
        body_field=_body_field(request, rule.body, http_method),
        response_body=rule.response_body,
        response_body_field=_response_body_field(response, rule.response_body),
        streaming=method.server_streaming,
        path_fields=path_fields,
        path_field_names=frozenset(field.name for field in path_fields),
        binding_index=binding_index,
    )


def _pattern(rule: http_pb2.HttpRule) -> tuple[str, str]:
    kind = rule.WhichOneof("pattern")
    if kind is None:
        raise _InvalidRuleError(
            "the rule sets no pattern (get, put, post, delete, patch or custom)"
        )
    if kind == "custom":
        if not _CUSTOM_KIND.fullmatch(rule.custom.kind):
            raise _InvalidRuleError(
                f"custom kind {rule.custom.kind!r} is not an upper-case HTTP method or '*'"
            )
        return rule.custom.kind, rule.custom.path
    return _STANDARD_PATTERNS[kind], getattr(rule, kind)


def _path_field(
    request: Descriptor, field_path: tuple[str, ...], *, multi_segment: bool
) -> PathField:
    name = ".".join(field_path)
    message = request
    chain: list[FieldDescriptor] = []
    for depth, component in enumerate(field_path):
        field = message.fields_by_name.get(component)
        if field is None:
            raise _InvalidRuleError(
                f"path variable {name!r}: {message.full_name} has no field {component!r}"
            )
        chain.append(field)
        is_last = depth == len(field_path) - 1
        if field.is_repeated:
            raise _InvalidRuleError(
                f"path variable {name!r}: field {field.full_name} is repeated or a map"
            )
        if is_last:
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                raise _InvalidRuleError(
                    f"path variable {name!r}: field {field.full_name} is a message, not a scalar"
                )
            if multi_segment and field.type != FieldDescriptor.TYPE_STRING:
                raise _InvalidRuleError(
                    f"path variable {name!r}: a multi-segment variable needs a string field, "
                    f"and {field.full_name} is not one"
                )
        else:
            if field.message_type is None:
                raise _InvalidRuleError(
                    f"path variable {name!r}: field {field.full_name} is not a message, "
                    f"so it has no field {field_path[depth + 1]!r}"
                )
            message = field.message_type
    return PathField(name, tuple(chain))


def _body_field(request: Descriptor, body: str, http_method: str) -> FieldDescriptor | None:
    if body and http_method in _BODILESS_METHODS:
        raise _InvalidRuleError(f"{http_method} cannot have a body (body: {body!r})")
    if body in ("", "*"):
        return None
    field = request.fields_by_name.get(body)
    if field is None:
        raise _InvalidRuleError(
            f"body {body!r}: {request.full_name} has no top-level field {body!r}"
        )
    if field.is_repeated:
        raise _InvalidRuleError(
            f"body {body!r}: field {field.full_name} is repeated or a map, "
            "which this gateway does not accept as a body"
        )
    return field


def _response_body_field(response: Descriptor, response_body: str) -> FieldDescriptor | None:
    if not response_body:
        return None
    field = response.fields_by_name.get(response_body)
    if field is None:
        raise _InvalidRuleError(
            f"response_body {response_body!r}: {response.full_name} has no top-level "
            f"field {response_body!r}"
        )
    return field
