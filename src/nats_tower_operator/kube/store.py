"""The informer's in-memory store: the latest known (slimmed) object per namespace/name."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from .errors import MalformedWatchEvent
from .models import JSON

__all__ = ["Change", "Key", "Store", "object_key", "resource_version_of"]

Key = tuple[str, str]
"""``(namespace, name)``; the namespace is ``""`` for cluster-scoped objects."""

Change = tuple[str, JSON, JSON | None]
"""``(event_type, obj, old_obj)`` as handlers receive it."""

_Objects = list[JSON]
_Keys = list[Key]
_Changes = list[Change]


def object_key(obj: JSON) -> Key:
    """The store key of ``obj``; raises ``MalformedWatchEvent`` if it has no name."""
    meta: Any = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(name, str) or not name:
        raise MalformedWatchEvent("object without metadata.name")
    namespace = meta.get("namespace")
    return (namespace if isinstance(namespace, str) else "", name)


def resource_version_of(obj: JSON | None) -> str | None:
    """``metadata.resourceVersion`` of ``obj`` (None when absent)."""
    if obj is None:
        return None
    meta = obj.get("metadata")
    rv = meta.get("resourceVersion") if isinstance(meta, dict) else None
    return rv if isinstance(rv, str) else None


class Store:
    """Read access for handlers and reconcilers; only the owning informer writes."""

    def __init__(self) -> None:
        self._items: dict[Key, JSON] = {}

    def get(self, namespace: str | None, name: str) -> JSON | None:
        """The object, or None when the informer does not know it."""
        return self._items.get((namespace or "", name))

    def list(self, namespace: str | None = None) -> _Objects:
        """All objects, or those of one namespace."""
        if namespace is None:
            return list(self._items.values())
        return [obj for (ns, _), obj in self._items.items() if ns == namespace]

    def keys(self) -> _Keys:
        """All ``(namespace, name)`` keys."""
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[JSON]:
        return iter(list(self._items.values()))

    # -- writes, used by the informer ------------------------------------------------------

    def put(self, key: Key, obj: JSON) -> JSON | None:
        """Store ``obj`` under ``key``; return the previous object."""
        old = self._items.get(key)
        self._items[key] = obj
        return old

    def pop(self, key: Key) -> JSON | None:
        """Forget ``key``; return the object it had."""
        return self._items.pop(key, None)

    def replace(self, objects: Iterable[tuple[Key, JSON]]) -> _Changes:
        """Replace everything; return the (type, obj, old) changes a relist implies.

        New keys are ``ADDED``, keys whose resourceVersion changed are ``MODIFIED`` and
        keys that vanished are ``DELETED`` (with their last known state as both objects).
        """
        new = dict(objects)
        changes: _Changes = []
        for key, obj in new.items():
            old = self._items.get(key)
            if old is None:
                changes.append(("ADDED", obj, None))
            elif resource_version_of(old) != resource_version_of(obj):
                changes.append(("MODIFIED", obj, old))
        for key, old in self._items.items():
            if key not in new:
                changes.append(("DELETED", old, old))
        self._items = new
        return changes
