"""Discovery documents: ``/version``, ``/api``, ``/api/v1``, ``/apis``, ``/apis/{g}[/{v}]``.

Built from the served :class:`~nats_tower_operator.emulator.resources.ResourceType` list,
in the legacy (non-aggregated) format that kubectl and client libraries fall back to when
the response is plain ``application/json``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from nats_tower_operator.emulator.crd import version_priority
from nats_tower_operator.emulator.jsonutil import JsonObj
from nats_tower_operator.emulator.resources import ResourceType

__all__ = ["SERVER_VERSION", "api_versions", "group", "group_list", "resource_list", "version_info"]

SERVER_VERSION = ("1", "36")

_SUBRESOURCE_VERBS = {
    "status": ["get", "patch", "update"],
    "finalize": ["update"],
}


def version_info() -> JsonObj:
    """The ``/version`` document."""
    major, minor = SERVER_VERSION
    return {
        "major": major,
        "minor": minor,
        "emulationMajor": major,
        "emulationMinor": minor,
        "gitVersion": f"v{major}.{minor}.0",
        "gitCommit": "nats-tower-operator-emulator",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def api_versions(server_address: str) -> JsonObj:
    """The ``/api`` document."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _group_versions(types: Iterable[ResourceType]) -> dict[str, list[str]]:
    groups: dict[str, set[str]] = {}
    for rt in types:
        if rt.group:
            groups.setdefault(rt.group, set()).add(rt.version)
    return {g: sorted(vs, key=version_priority) for g, vs in groups.items()}


def _group_doc(name: str, versions: list[str]) -> JsonObj:
    entries = [{"groupVersion": f"{name}/{ver}", "version": ver} for ver in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def group_list(types: Iterable[ResourceType]) -> JsonObj:
    """The ``/apis`` document."""
    groups = _group_versions(types)
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group_doc(g, groups[g]) for g in sorted(groups)],
    }


def group(types: Iterable[ResourceType], name: str) -> JsonObj | None:
    """The ``/apis/{group}`` document, or None when the group is not served."""
    versions = _group_versions(types).get(name)
    if not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_doc(name, versions)}


def resource_list(types: Iterable[ResourceType], group_name: str, version: str) -> JsonObj | None:
    """The ``APIResourceList`` of one group/version, or None when it is not served."""
    resources: list[dict[str, Any]] = []
    selected = sorted(
        (rt for rt in types if rt.group == group_name and rt.version == version),
        key=lambda rt: rt.plural,
    )
    if not selected:
        return None
    for rt in selected:
        entry: dict[str, Any] = {
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": sorted(rt.verbs),
        }
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        resources.append(entry)
        for sub in sorted(rt.subresources):
            resources.append(
                {
                    "name": f"{rt.plural}/{sub}",
                    "singularName": "",
                    "namespaced": rt.namespaced,
                    "kind": rt.kind,
                    "verbs": _SUBRESOURCE_VERBS.get(sub, ["get"]),
                }
            )
    doc: JsonObj = {
        "kind": "APIResourceList",
        "groupVersion": f"{group_name}/{version}" if group_name else version,
        "resources": resources,
    }
    if group_name:
        doc["apiVersion"] = "v1"
    return doc
