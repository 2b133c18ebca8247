"""Walk the error table: every entry is reachable, renders a valid envelope of its own
status, type and code, and every exception class the gateway raises has an entry."""

from __future__ import annotations

import ast
import builtins
import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from jsonschema import Draft202012Validator

import gateway
from gateway.errors import STATUS_TEXTS, Failure, answer, failure_for
from gateway.errors.table import FAILURES

ROOT = Path(__file__).resolve().parents[3]
SPEC = ROOT / "tests" / "contract" / "get-execution.openapi.yaml"
_COMPONENTS: dict[str, Any] = yaml.safe_load(SPEC.read_text(encoding="utf-8"))["components"]
_INTERNAL = FAILURES[-1]
# Raised only at start-up or inside a component that turns them into another exception
# before they can reach a request's answer; each with the reason it needs no entry.
_NOT_ANSWERS: dict[str, str] = {
    "ConfigError": "start-up: a bad setting stops the gateway",
    "CorsConfigError": "start-up: an unusable CORS allow-list (becomes ConfigError)",
    "OSError": "start-up: a listener (--admin-listen) that cannot bind",
    "TemplateError": "start-up: a google.api.http template that does not parse",
    "RouteConfigError": "start-up: rules that cannot be served",
    "_InvalidRuleError": "start-up: collected into RouteConfigError",
    "ServiceNotFoundError": "start-up: a configured service name is unknown",
    "ValueParseError": "request_mapper turns it into RequestValidationError",
    "ValueError": "start-up checks (config, descriptors); per request only via subclasses",
    "FileNotFoundError": "start-up: a missing docs asset",
    "SystemExit": "the command line",
    "ConnectionError": "raised when nothing can be answered any more (response started)",
}


def _validator(name: str) -> Draft202012Validator:
    root = {"$ref": f"#/components/schemas/{name}", "components": _COMPONENTS}
    return Draft202012Validator(root)


_ENVELOPE = _validator("ErrorResponse")
_VALIDATION = _validator("HTTPValidationError")


def _ids(failure: Failure[Any]) -> str:
    return failure.name


def test_names_are_unique() -> None:
    names = [failure.name for failure in FAILURES]
    assert len(names) == len(set(names))


def test_the_last_entry_answers_anything_with_a_generic_500() -> None:
    assert _INTERNAL.cause is Exception
    assert (_INTERNAL.status, _INTERNAL.code) == (500, None)
    assert failure_for(KeyError("x")) is _INTERNAL


@pytest.mark.parametrize("failure", FAILURES, ids=_ids)
def test_entry_answers_its_own_sample(failure: Failure[Any]) -> None:
    # An entry shadowed by an earlier, broader one would answer nothing.
    assert failure_for(failure.sample()) is failure


@pytest.mark.parametrize("failure", FAILURES, ids=_ids)
def test_entry_renders_a_valid_body_of_its_status_type_and_code(failure: Failure[Any]) -> None:
    assert failure.status in STATUS_TEXTS
    assert failure.when.strip()
    found = answer(failure.sample(), retry_after_s=3)
    body = orjson.loads(found.rendered.body)
    assert found.rendered.status == failure.status
    if failure.status == 422:
        assert _VALIDATION.is_valid(body), body
        return
    assert _ENVELOPE.is_valid(body), body
    assert set(body) == {"success", "status", "error"}
    assert set(body["error"]) == {"message", "type", "code", "details"}
    assert body["status"] == failure.status
    assert body["error"]["type"] == STATUS_TEXTS[failure.status].type
    if failure.code is not None:
        assert body["error"]["code"] == failure.code
    assert body["error"]["message"]
    # Extra headers: only those the entry documents (plus forwarded service metadata).
    assert set(found.headers) <= {*failure.headers, "ETag", "Cache-Control"}
    assert ("Retry-After" in found.headers) is failure.retry_after


def _raised_names(tree: ast.AST) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(target, ast.Name):
                yield target.id
            elif isinstance(target, ast.Attribute):
                yield ast.unparse(target)


def _raised_classes() -> dict[str, type[BaseException]]:
    """Every exception class named in a `raise` of the gateway's own code."""
    found: dict[str, type[BaseException]] = {}
    package = Path(gateway.__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        dotted = ".".join(path.relative_to(package.parent).with_suffix("").parts)
        module = importlib.import_module(dotted.removesuffix(".__init__"))
        for name in _raised_names(ast.parse(path.read_text(encoding="utf-8"))):
            value: object = module if hasattr(module, name.split(".")[0]) else builtins
            try:
                for part in name.split("."):
                    value = getattr(value, part)
            except AttributeError:
                continue  # a local variable or attribute holding an instance
            if isinstance(value, type) and issubclass(value, BaseException):
                found[name.rsplit(".", 1)[-1]] = value
    return found


def test_every_exception_the_gateway_raises_has_an_entry() -> None:
    raised = _raised_classes()
    assert {"RouteNotFoundError", "AioRpcError", "InvalidJsonError"} <= set(raised)
    missing = {
        name
        for name, cls in raised.items()
        if name not in _NOT_ANSWERS
        and not any(issubclass(cls, f.cause) for f in FAILURES if f is not _INTERNAL)
    }
    assert missing == set(), f"add an entry to gateway/errors/table.py for {sorted(missing)}"
