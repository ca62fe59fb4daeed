"""JSON value helpers shared by the emulator: fast deep copies and compact encoding.

Stored objects are treated as immutable: every write builds a new dict, so readers, the
watch event log and list snapshots can share references safely. Values handed to callers
outside the emulator are deep-copied with :func:`clone`.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar, cast

__all__ = ["JsonObj", "clone", "dumps"]

JsonObj = dict[str, Any]
"""A decoded JSON object (a Kubernetes object, a patch, a Status ...)."""


T = TypeVar("T")


def clone(value: T) -> T:
    """Return a deep copy of a JSON-like value (dicts, lists and scalars only)."""
    if isinstance(value, dict):
        return cast(T, {k: clone(v) for k, v in value.items()})
    if isinstance(value, list):
        return cast(T, [clone(v) for v in value])
    return value


def dumps(value: Any) -> bytes:
    """Encode ``value`` as compact UTF-8 JSON."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
