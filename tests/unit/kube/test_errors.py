"""Mapping of API responses and Status objects to typed errors."""

from __future__ import annotations

import json

import pytest

from nats_tower_operator.kube import (
    AlreadyExists,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    KubeConnectionError,
    KubeError,
    NotFound,
    ServerError,
    TooManyRequests,
    Unauthorized,
    error_from_response,
    error_from_status,
)


def _status(code: int, reason: str, message: str = "msg", **extra: object) -> bytes:
    return json.dumps(
        {"kind": "Status", "status": "Failure", "code": code, "reason": reason, "message": message}
        | extra
    ).encode()


@pytest.mark.parametrize(
    ("code", "reason", "cls"),
    [
        (404, "NotFound", NotFound),
        (409, "AlreadyExists", AlreadyExists),
        (409, "Conflict", Conflict),
        (410, "Gone", Gone),
        (410, "Expired", Gone),
        (422, "Invalid", Invalid),
        (401, "Unauthorized", Unauthorized),
        (403, "Forbidden", Forbidden),
        (429, "TooManyRequests", TooManyRequests),
        (500, "InternalError", ServerError),
        (503, "ServiceUnavailable", ServerError),
        (400, "BadRequest", KubeError),
    ],
)
def test_status_mapping(code: int, reason: str, cls: type[KubeError]) -> None:
    err = error_from_response(code, _status(code, reason, "the message"), {})
    assert type(err) is cls
    assert (err.status, err.reason, err.message) == (code, reason, "the message")
    assert isinstance(err, KubeError)


def test_expired_reason_is_gone_even_without_410() -> None:
    assert isinstance(error_from_status(500, {"reason": "Expired"}), Gone)


def test_retry_after_header_and_details() -> None:
    err = error_from_response(429, _status(429, "TooManyRequests"), {"retry-after": "3"})
    assert isinstance(err, TooManyRequests) and err.retry_after == 3.0
    err = error_from_response(
        429, _status(429, "TooManyRequests", details={"retryAfterSeconds": 2}), {}
    )
    assert err.retry_after == 2.0
    err = error_from_response(429, b"", {"retry-after": "soon"})
    assert err.retry_after is None and err.reason == "TooManyRequests"


def test_non_status_bodies_and_truncation() -> None:
    err = error_from_response(502, b"<html>" + b"x" * 5000, {})
    assert isinstance(err, ServerError)
    assert len(err.message) < 300 and err.message.startswith("InternalError: <html>")
    long = error_from_response(422, _status(422, "Invalid", "y" * 5000), {})
    assert len(long.message) <= 512 and long.message.endswith("...")
    empty = error_from_response(404, b"", {})
    assert isinstance(empty, NotFound) and empty.reason == "NotFound"
    assert str(empty) == "404 NotFound: NotFound"


def test_connection_error_has_status_zero() -> None:
    err = KubeConnectionError("boom", request_sent=False)
    assert err.status == 0 and not err.request_sent and isinstance(err, KubeError)
