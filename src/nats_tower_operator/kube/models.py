"""Plain value types returned by the client: list results and watch events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["JSON", "ObjectList", "WatchEvent"]

JSON = dict[str, Any]
"""A Kubernetes object (or patch) as decoded JSON."""


@dataclass(frozen=True, slots=True)
class ObjectList:
    """All items of a (possibly paginated) list and the list's resourceVersion."""

    items: list[JSON]
    resource_version: str


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One watch event: ``ADDED``, ``MODIFIED``, ``DELETED`` or ``BOOKMARK`` and its object."""

    type: str
    object: JSON

    @property
    def resource_version(self) -> str | None:
        """The object's ``metadata.resourceVersion``, if present."""
        meta = self.object.get("metadata")
        rv = meta.get("resourceVersion") if isinstance(meta, dict) else None
        return rv if isinstance(rv, str) and rv else None
