"""Typed Kubernetes API errors, and the pure mapping from an HTTP response or Status to them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = [
    "AlreadyExists",
    "Conflict",
    "Forbidden",
    "Gone",
    "Invalid",
    "KubeConnectionError",
    "KubeError",
    "MalformedWatchEvent",
    "NotFound",
    "ServerError",
    "TooManyRequests",
    "Unauthorized",
    "error_from_response",
    "error_from_status",
]

MAX_MESSAGE = 512


def _truncate(text: str, limit: int = MAX_MESSAGE) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class KubeError(Exception):
    """An error answered by (or on the way to) the Kubernetes API server."""

    def __init__(
        self, status: int, reason: str, message: str, *, retry_after: float | None = None
    ) -> None:
        self.status = status
        self.reason = reason
        self.message = _truncate(message)
        self.retry_after = retry_after
        super().__init__(f"{status} {reason}: {self.message}")


class NotFound(KubeError):
    """404: the object or the resource does not exist."""


class AlreadyExists(KubeError):
    """409 AlreadyExists: create of an object whose name is taken."""


class Conflict(KubeError):
    """409: a resourceVersion/uid precondition failed (someone else wrote first)."""


class Gone(KubeError):
    """410 Gone/Expired: the requested resourceVersion or continue token is too old."""


class Invalid(KubeError):
    """422: the object failed validation."""


class Unauthorized(KubeError):
    """401: the credentials were missing or rejected."""


class Forbidden(KubeError):
    """403: RBAC does not allow this request."""


class TooManyRequests(KubeError):
    """429: the server asks the client to slow down (see ``retry_after``)."""


class ServerError(KubeError):
    """5xx: the server failed; safe to retry only for reads."""


class KubeConnectionError(KubeError):
    """The request failed in transport (connect, timeout, broken stream); ``status`` is 0.

    ``request_sent`` is False when the failure happened before the request could reach the
    server (connect errors, pool timeouts), which makes retrying any verb safe.
    """

    def __init__(self, message: str, *, request_sent: bool = True) -> None:
        super().__init__(0, "ConnectionError", message)
        self.request_sent = request_sent


class MalformedWatchEvent(KubeError):
    """A watch stream line that is not a valid watch event; the caller should relist."""

    def __init__(self, message: str) -> None:
        super().__init__(0, "MalformedWatchEvent", message)


def _parse_retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def error_from_status(  # noqa: C901 - one branch per Kubernetes status reason
    status: int, payload: Mapping[str, Any], *, retry_after: float | None = None
) -> KubeError:
    """Build the typed error for an HTTP status and a (possibly empty) Status object."""
    reason = payload.get("reason")
    message = payload.get("message")
    details = payload.get("details")
    if retry_after is None and isinstance(details, Mapping):
        seconds = details.get("retryAfterSeconds")
        if isinstance(seconds, int | float) and seconds >= 0:
            retry_after = float(seconds)
    reason_s = reason if isinstance(reason, str) and reason else _default_reason(status)
    message_s = message if isinstance(message, str) and message else reason_s
    cls: type[KubeError]
    if status == 404:
        cls = NotFound
    elif status == 409:
        cls = AlreadyExists if reason_s == "AlreadyExists" else Conflict
    elif status == 410 or reason_s in ("Gone", "Expired"):
        cls = Gone
    elif status == 422:
        cls = Invalid
    elif status == 401:
        cls = Unauthorized
    elif status == 403:
        cls = Forbidden
    elif status == 429:
        cls = TooManyRequests
    elif 500 <= status <= 599:
        cls = ServerError
    else:
        cls = KubeError
    return cls(status, reason_s, message_s, retry_after=retry_after)


def error_from_response(status: int, body: bytes, headers: Mapping[str, str]) -> KubeError:
    """Map an error response (status, body, headers) to a typed :class:`KubeError`.

    The body is expected to be a ``Status`` object; anything else contributes at most a
    short, truncated snippet to the message.
    """
    retry_after = _parse_retry_after(headers.get("retry-after") or headers.get("Retry-After"))
    payload: Mapping[str, Any] = {}
    try:
        decoded = json.loads(body) if body else {}
    except (ValueError, UnicodeDecodeError):
        decoded = None
    if isinstance(decoded, dict):
        payload = decoded
    elif body:
        snippet = body[:200].decode("utf-8", errors="replace")
        payload = {"message": f"{_default_reason(status)}: {snippet}"}
    return error_from_status(status, payload, retry_after=retry_after)


_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Gone",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def _default_reason(status: int) -> str:
    return _REASONS.get(status, "InternalError" if status >= 500 else f"HTTP{status}")
