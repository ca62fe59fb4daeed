"""How objects are rendered for a request: Accept negotiation, Table, PartialObjectMetadata.

The real server lets a client ask, through ``Accept`` parameters, for a server-side
``Table`` (``as=Table;g=meta.k8s.io;v=v1``, what ``kubectl get`` sends) or for metadata only
(``as=PartialObjectMetadata``/``PartialObjectMetadataList``, what metadata informers send).
:func:`negotiate` picks the first acceptable entry of the header; the render functions
build the documents.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from nats_tower_operator.emulator import errors
from nats_tower_operator.emulator.jsonutil import JsonObj
from nats_tower_operator.emulator.resources import Column, ResourceType

__all__ = [
    "Representation",
    "human_duration",
    "negotiate",
    "partial",
    "partial_list",
    "table",
]

_JSON_TYPES = ("application/json", "application/*", "*/*")
_META_KINDS = ("Table", "PartialObjectMetadata", "PartialObjectMetadataList")


@dataclass(frozen=True, slots=True)
class Representation:
    """The negotiated output: full objects (``kind=""``), a Table, or metadata only."""

    kind: str = ""
    version: str = "v1"

    @property
    def api_version(self) -> str:
        """``meta.k8s.io/<version>`` of the rendered document."""
        return f"meta.k8s.io/{self.version}"


FULL = Representation()


def _parse(accept: str) -> list[tuple[str, dict[str, str]]]:
    out = []
    for entry in accept.split(","):
        parts = [p.strip() for p in entry.split(";") if p.strip()]
        if not parts:
            continue
        params = {}
        for part in parts[1:]:
            key, _, value = part.partition("=")
            params[key.strip()] = value.strip().strip('"')
        out.append((parts[0].lower(), params))
    return out


def negotiate(accept: str | None, *, is_list: bool, is_watch: bool) -> Representation:  # noqa: C901 - one branch per media type the real server offers
    """Pick the representation for a request; raise 406 when none is acceptable."""
    if not accept or not accept.strip():
        return FULL
    rejected: list[str] = []
    for mime, params in _parse(accept):
        if mime not in _JSON_TYPES:
            continue
        if params.get("q") == "0":
            continue
        as_kind = params.get("as")
        if not as_kind:
            return FULL
        group, version = params.get("g"), params.get("v")
        if group != "meta.k8s.io" or version not in ("v1", "v1beta1") or as_kind not in _META_KINDS:
            rejected.append(as_kind)
            continue
        if is_watch:
            if as_kind == "PartialObjectMetadataList":
                as_kind = "PartialObjectMetadata"
            return Representation(as_kind, version)
        if is_list and as_kind == "PartialObjectMetadata":
            rejected.append(as_kind)
            continue
        if not is_list and as_kind == "PartialObjectMetadataList":
            rejected.append(as_kind)
            continue
        return Representation(as_kind, version)
    if rejected:
        raise errors.not_acceptable(
            f"the server was unable to respond with a content type that the client supports "
            f"(requested conversion to {rejected[0]})"
        )
    raise errors.not_acceptable(
        "only the following media types are accepted: application/json, application/yaml, "
        "application/vnd.kubernetes.protobuf"
    )


def partial(obj: JsonObj, rep: Representation) -> JsonObj:
    """One object as ``PartialObjectMetadata``."""
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": rep.api_version,
        "metadata": obj["metadata"],
    }


def partial_list(items: Iterable[JsonObj], rep: Representation, *, list_meta: JsonObj) -> JsonObj:
    """A list as ``PartialObjectMetadataList``."""
    return {
        "kind": "PartialObjectMetadataList",
        "apiVersion": rep.api_version,
        "metadata": list_meta,
        "items": [partial(o, rep) for o in items],
    }


def human_duration(seconds: float) -> str:  # noqa: PLR0911 - one return per unit, as kubectl prints ages
    """kubectl's ``HumanDuration`` (``45s``, ``3m12s``, ``5h``, ``2d3h`` ...)."""
    total = int(seconds)
    if total < -1:
        return "<invalid>"
    if total < 0:
        return "0s"
    if total < 120:
        return f"{total}s"
    minutes = total // 60
    if minutes < 10:
        rest = total % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = total // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    years, days = hours // 24 // 365, (hours // 24) % 365
    return f"{years}y{days}d" if days and years < 8 else f"{years}y"


def _age(obj: JsonObj, now: datetime) -> str:
    created = obj.get("metadata", {}).get("creationTimestamp")
    if not created:
        return "<unknown>"
    try:
        then = datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "<unknown>"
    return human_duration((now - then).total_seconds())


def table(  # noqa: PLR0913 - keyword-only table parts
    rt: ResourceType,
    items: Iterable[JsonObj],
    rep: Representation,
    *,
    view: Callable[[JsonObj], JsonObj],
    list_meta: JsonObj,
    include_object: str = "Metadata",
    now: datetime | None = None,
) -> JsonObj:
    """Stored objects as a ``meta.k8s.io`` Table with Name, the type's columns and Age.

    ``view`` turns a stored object into its served form for ``rows[].object``.
    """
    moment = now or datetime.now(UTC)
    columns: list[Column] = [
        Column(
            "Name",
            format="name",
            description="Name must be unique within a namespace. Is required when creating "
            "resources, although some resources may allow a client to request the generation "
            "of an appropriate name automatically.",
        ),
        *rt.behaviour.columns(),
        Column(
            "Age",
            description="CreationTimestamp is a timestamp representing the server "
            "time when this object was created.",
        ),
    ]
    rows = []
    for obj in items:
        row: dict[str, Any] = {
            "cells": [obj["metadata"].get("name", ""), *rt.behaviour.cells(obj), _age(obj, moment)]
        }
        if include_object == "Object":
            row["object"] = view(obj)
        elif include_object != "None":
            row["object"] = partial(obj, rep)
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": rep.api_version,
        "metadata": list_meta,
        "columnDefinitions": [c.as_dict() for c in columns],
        "rows": rows,
    }
