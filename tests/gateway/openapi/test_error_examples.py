"""The document's error responses come from the error table: one per status, each entry's
own body as an example under its own status, its headers, every `type` of the vocabulary."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.errors import STATUS_TEXTS, Failure, answer
from gateway.errors.table import FAILURES
from gateway.openapi.operations import error_response_name

GET_PATH = "/v1/retrievers/{retriever_id}/executions/{execution_id}"
LIST_PATH = "/v1/retrievers/{retriever_id}/executions/list"


def _response(document: dict[str, Any], status: int) -> dict[str, Any]:
    response: dict[str, Any] = document["components"]["responses"][error_response_name(status)]
    return response


@pytest.mark.parametrize("failure", FAILURES, ids=lambda failure: failure.name)
def test_every_entry_is_documented_with_its_own_body(
    failure: Failure[Any], execution_document: dict[str, Any]
) -> None:
    response = _response(execution_document, failure.status)
    example = response["content"]["application/json"]["examples"][failure.name]
    assert example["value"] == orjson.loads(answer(failure.sample(), 1).rendered.body)
    assert failure.when in response["description"]
    documented_headers = {ref.rsplit("/", 1)[-1] for ref in _refs(response["headers"])}
    assert set(failure.headers) <= documented_headers
    operations = execution_document["paths"]
    assert str(failure.status) in operations[LIST_PATH]["post"]["responses"]
    on_get = str(failure.status) in operations[GET_PATH]["get"]["responses"]
    assert on_get or failure.needs_body


def _refs(headers: dict[str, Any]) -> list[str]:
    return [header["$ref"] for header in headers.values()]


def test_each_status_shows_only_bodies_of_that_status(execution_document: dict[str, Any]) -> None:
    responses = execution_document["components"]["responses"]
    assert responses, "no error responses"
    for status in {failure.status for failure in FAILURES}:
        media = _response(execution_document, status)["content"]["application/json"]
        assert media["examples"], status
        for example in media["examples"].values():
            value = example["value"]
            if status == 422:
                assert set(value) == {"detail"}
            else:
                assert value["status"] == status
                assert value["error"]["type"] == STATUS_TEXTS[status].type


def test_every_error_type_is_in_the_document(execution_document: dict[str, Any]) -> None:
    text = orjson.dumps(execution_document).decode()
    type_doc = execution_document["components"]["schemas"]["ErrorDetail"]["properties"]["type"]
    for status, status_text in STATUS_TEXTS.items():
        if status == 422:
            continue
        assert f'"type":"{status_text.type}"' in text, status_text.type
        assert f"{status} `{status_text.type}`" in type_doc["description"]
