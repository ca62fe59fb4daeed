"""A record of every API request in RBAC terms, to check RBAC rules against real usage.

Each request becomes an :class:`AuditRecord` with the RBAC verb (get, list, watch, create,
update, patch, delete, deletecollection), API group, resource, subresource, namespace,
name, user and response code. Non-resource requests (discovery, ``/version``,
``/openapi/...``) have an empty resource and their ``path`` set.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["AuditLog", "AuditRecord"]


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One API request."""

    verb: str
    group: str
    resource: str
    subresource: str
    namespace: str
    name: str
    user: str
    code: int
    path: str = ""

    @property
    def rbac_resource(self) -> str:
        """``resource`` or ``resource/subresource`` as written in an RBAC rule."""
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource

    def as_dict(self) -> dict[str, Any]:
        """The record as a JSON-friendly dict."""
        return asdict(self)


class AuditLog:
    """Append-only list of :class:`AuditRecord`, in arrival order."""

    def __init__(self) -> None:
        self.records: list[AuditRecord] = []

    def record(self, entry: AuditRecord) -> None:
        """Append one record."""
        self.records.append(entry)

    def clear(self) -> None:
        """Forget every record."""
        self.records.clear()

    def resource_requests(self, *, user: str | None = None) -> list[AuditRecord]:
        """Records of resource requests (optionally of one user)."""
        return [r for r in self.records if r.resource and (user is None or r.user == user)]

    def permissions(self, *, user: str | None = None) -> set[tuple[str, str, str]]:
        """The distinct ``(group, resource[/subresource], verb)`` triples used."""
        return {(r.group, r.rbac_resource, r.verb) for r in self.resource_requests(user=user)}
