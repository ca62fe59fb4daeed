"""Errors of the Tower-compatible server, each carrying its PocketBase-style answer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "BadRequest",
    "NotFound",
    "TowerServerError",
    "ValidationFailed",
    "field_error",
]

NOT_FOUND_MESSAGE = "The requested resource wasn't found."


class TowerServerError(Exception):
    """Base class: an error the HTTP layer answers with ``status`` and a PocketBase body."""

    status = 400

    def __init__(self, message: str, data: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.data: dict[str, Any] = dict(data or {})

    def body(self) -> dict[str, Any]:
        """The JSON body PocketBase would answer."""
        return {"code": self.status, "message": self.message, "data": self.data}


class NotFound(TowerServerError):
    """The collection or record does not exist (404)."""

    status = 404

    def __init__(self) -> None:
        super().__init__(NOT_FOUND_MESSAGE)


class BadRequest(TowerServerError):
    """A request that cannot be served as asked (400)."""


class ValidationFailed(TowerServerError):
    """Field validation failed (400); ``data`` maps field -> ``{"code", "message"}``."""


def field_error(code: str, message: str) -> dict[str, str]:
    """One field's validation error entry."""
    return {"code": code, "message": message}
