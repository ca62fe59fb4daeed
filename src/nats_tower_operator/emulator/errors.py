"""API errors as the real API server reports them: ``Status`` bodies with reason and code.

Every failure the emulator answers goes through :class:`ApiError`, whose ``status`` is the
exact ``metav1.Status`` document kube-apiserver would send (kind, apiVersion, empty
metadata, ``status: Failure``, message, reason, details, code). The constructors below copy
the real server's message formats, including its quirks (``details.kind`` holds the resource
plural for NotFound/AlreadyExists/Conflict, but the Kind for Invalid).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "ApiError",
    "Cause",
    "already_exists",
    "bad_request",
    "conflict",
    "expired",
    "forbidden",
    "internal_error",
    "invalid",
    "method_not_allowed",
    "not_acceptable",
    "not_found",
    "qualified_resource",
    "status_body",
    "too_many_requests",
    "unsupported_media_type",
]


@dataclass(frozen=True, slots=True)
class Cause:
    """One field-level cause of an ``Invalid`` error (``details.causes[]``)."""

    reason: str
    message: str
    field: str

    def as_dict(self) -> dict[str, str]:
        """Return the cause as it appears in a Status body."""
        return {"reason": self.reason, "message": self.message, "field": self.field}

    def summary(self) -> str:
        """Return ``field: message`` as used in the Status message."""
        return f"{self.field}: {self.message}"


def status_body(
    *,
    code: int,
    reason: str,
    message: str,
    details: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build a failure ``Status`` document."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": metadata or {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


class ApiError(Exception):
    """An error answer: the HTTP code plus the Status body, and optional extra headers."""

    def __init__(self, status: dict[str, Any], *, headers: dict[str, str] | None = None) -> None:
        super().__init__(status.get("message", ""))
        self.status = status
        self.headers = headers or {}

    @property
    def code(self) -> int:
        """The HTTP status code."""
        return int(self.status["code"])

    @property
    def reason(self) -> str:
        """The Status reason (``NotFound``, ``Conflict`` ...)."""
        return str(self.status.get("reason", ""))


def qualified_resource(group: str, resource: str) -> str:
    """Return ``resource`` or ``resource.group`` as the real server prints it."""
    return f"{resource}.{group}" if group else resource


def _details(group: str, kind: str, name: str) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    details["kind"] = kind
    return details


def not_found(group: str, resource: str, name: str) -> ApiError:
    """``404 NotFound``: ``pods "x" not found``."""
    qr = qualified_resource(group, resource)
    message = f'{qr} "{name}" not found' if name else f"{qr} not found"
    return ApiError(
        status_body(
            code=404,
            reason="NotFound",
            message=message,
            details=_details(group, resource, name),
        )
    )


def already_exists(group: str, resource: str, name: str) -> ApiError:
    """``409 AlreadyExists``: ``pods "x" already exists``."""
    qr = qualified_resource(group, resource)
    return ApiError(
        status_body(
            code=409,
            reason="AlreadyExists",
            message=f'{qr} "{name}" already exists',
            details=_details(group, resource, name),
        )
    )


MODIFIED_MESSAGE = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


def conflict(group: str, resource: str, name: str, why: str = MODIFIED_MESSAGE) -> ApiError:
    """``409 Conflict``: ``Operation cannot be fulfilled on pods "x": <why>``."""
    qr = qualified_resource(group, resource)
    return ApiError(
        status_body(
            code=409,
            reason="Conflict",
            message=f'Operation cannot be fulfilled on {qr} "{name}": {why}',
            details=_details(group, resource, name),
        )
    )


def invalid(group: str, kind: str, name: str, causes: list[Cause]) -> ApiError:
    """``422 Invalid``: ``Secret "x" is invalid: <field>: <message>``."""
    if len(causes) == 1:
        summary = causes[0].summary()
    else:
        summary = "[" + ", ".join(c.summary() for c in causes) + "]"
    qk = f"{kind}.{group}" if group else kind
    details = _details(group, kind, name)
    details["causes"] = [c.as_dict() for c in causes]
    return ApiError(
        status_body(
            code=422,
            reason="Invalid",
            message=f'{qk} "{name}" is invalid: {summary}',
            details=details,
        )
    )


def bad_request(message: str) -> ApiError:
    """``400 BadRequest`` with a free-form message."""
    return ApiError(status_body(code=400, reason="BadRequest", message=message))


def forbidden(
    group: str, resource: str, name: str, why: str, *, causes: list[Cause] | None = None
) -> ApiError:
    """``403 Forbidden``: ``pods "x" is forbidden: <why>``."""
    qr = qualified_resource(group, resource)
    subject = f'{qr} "{name}"' if name else qr
    details = _details(group, resource, name)
    if causes:
        details["causes"] = [c.as_dict() for c in causes]
    return ApiError(
        status_body(
            code=403, reason="Forbidden", message=f"{subject} is forbidden: {why}", details=details
        )
    )


def expired(message: str, *, continue_token: str | None = None) -> ApiError:
    """``410 Expired`` (too old resourceVersion or continue token)."""
    metadata = {"continue": continue_token} if continue_token else None
    return ApiError(status_body(code=410, reason="Expired", message=message, metadata=metadata))


def method_not_allowed(message: str) -> ApiError:
    """``405 MethodNotAllowed``."""
    return ApiError(status_body(code=405, reason="MethodNotAllowed", message=message, details={}))


def not_acceptable(message: str) -> ApiError:
    """``406 NotAcceptable``."""
    return ApiError(status_body(code=406, reason="NotAcceptable", message=message))


def unsupported_media_type(message: str) -> ApiError:
    """``415 UnsupportedMediaType``."""
    return ApiError(status_body(code=415, reason="UnsupportedMediaType", message=message))


def too_many_requests(retry_after: int) -> ApiError:
    """``429 TooManyRequests`` with a ``Retry-After`` header, as API Priority and Fairness."""
    return ApiError(
        status_body(
            code=429,
            reason="TooManyRequests",
            message="Too many requests, please try again later.",
            details={"retryAfterSeconds": retry_after},
        ),
        headers={"Retry-After": str(retry_after)},
    )


def internal_error(why: str) -> ApiError:
    """``500 InternalError``: ``Internal error occurred: <why>``."""
    return ApiError(
        status_body(
            code=500,
            reason="InternalError",
            message=f"Internal error occurred: {why}",
            details={"causes": [{"message": why}]},
        )
    )
