"""Metadata allow-listing, deadlines and response-metadata headers of upstream calls."""

from __future__ import annotations

import json

import pytest
from multidict import CIMultiDict

from gateway.config import GatewayConfig
from gateway.upstream import (
    InvalidRequestHeaderError,
    call_timeout,
    channel_options,
    forwarded_metadata,
    refuse_repeated_headers,
    response_headers,
    service_config,
)


def test_only_allow_listed_headers_are_forwarded() -> None:
    headers = {
        "authorization": "Bearer k",
        "x-namespace": "demo",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "grpc-metadata-x-admin": "1",
        "cookie": "session=1",
        "x-request-id": "client-chosen",
    }
    metadata = dict(forwarded_metadata(headers, "req-1"))
    assert metadata == {
        "x-request-id": "req-1",
        "authorization": "Bearer k",
        "x-namespace": "demo",
        "traceparent": headers["traceparent"],
    }


def test_absent_headers_are_not_invented() -> None:
    assert forwarded_metadata({}, "req-1") == (("x-request-id", "req-1"),)


@pytest.mark.parametrize("value", ["Bearer \u00e9", "Bearer \x01", "x" * 5000])
def test_unusable_forwarded_values_are_refused(value: str) -> None:
    with pytest.raises(InvalidRequestHeaderError) as caught:
        forwarded_metadata({"authorization": value}, "req-1")
    assert caught.value.header == "authorization"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, 10.0), ("2", 2.0), ("0.25", 0.25), ("600", 60.0), ("0.05", 0.05), (" 3 ", 3.0)],
)
def test_call_timeout_defaults_and_clamps(raw: str | None, expected: float) -> None:
    assert call_timeout(raw, 10.0, 60.0) == expected


@pytest.mark.parametrize(
    "raw",
    [
        *("", "abc", "0", "-1", "nan", "inf", "+2", "2.", ".5", "1.2345", "1234567"),
        *("1e-3", "5e-324", "1E3", "1_0", "0x10"),  # float() takes these; the header does not
        *("\u0661", "\uff11", "\u0661.5"),  # Arabic-Indic and full-width digits
        *("0.049", "0.001", "0.000"),  # below the minimum
    ],
)
def test_call_timeout_rejects(raw: str) -> None:
    with pytest.raises(InvalidRequestHeaderError) as caught:
        call_timeout(raw, 10.0, 60.0)
    assert caught.value.header == "x-request-timeout"


@pytest.mark.parametrize("name", ["Authorization", "X-Namespace", "X-Request-Timeout"])
def test_a_repeated_single_valued_header_is_refused(name: str) -> None:
    headers = CIMultiDict([(name, "a"), ("X-Other", "1"), (name.lower(), "a")])
    with pytest.raises(InvalidRequestHeaderError) as caught:
        refuse_repeated_headers(headers)
    assert caught.value.header == name.lower()


def test_single_headers_and_repeated_others_pass() -> None:
    refuse_repeated_headers(
        CIMultiDict([("Authorization", "Bearer k"), ("Accept", "a"), ("Accept", "b")])
    )


def test_response_headers_allow_list_trailing_wins() -> None:
    initial = (("etag", '"a"'), ("x-internal", "secret"))
    trailing = (("etag", '"b"'), ("cache-control", "private"), ("grpc-status-details-bin", b"\x00"))
    assert response_headers(initial, trailing, None) == {"ETag": '"b"', "Cache-Control": "private"}


def test_channel_options() -> None:
    options = dict(channel_options(GatewayConfig(max_message_bytes=1234)))
    assert options["grpc.max_receive_message_length"] == 1234
    assert options["grpc.max_send_message_length"] == 1234
    config = json.loads(str(options["grpc.service_config"]))
    assert config["loadBalancingConfig"] == [{"round_robin": {}}]
    (method,) = config["methodConfig"]
    assert method["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert method["retryPolicy"]["maxAttempts"] == 5
    assert json.loads(service_config()) == config
