"""Controllers that run inside the emulator: ownerReference GC and namespace lifecycle.

:class:`GarbageCollector` follows kube-controller-manager's garbage collector: a dependent
whose owners (by uid; a namespaced owner must be in the dependent's namespace) are all gone
is deleted; dangling references next to a live owner are removed from the dependent; owners
deleted with ``propagationPolicy=Foreground`` wait (``foregroundDeletion`` finalizer) until
their ``blockOwnerDeletion`` dependents are gone; ``Orphan`` strips the owner's references
from its dependents. :class:`NamespaceController` deletes everything in a terminating
namespace and removes the namespace once it is empty.

Both react synchronously to store commits, so effects are visible as soon as the request
that caused them returns (the real controllers are asynchronous; clients must not rely on
either ordering).
"""

from __future__ import annotations

import logging

from nats_tower_operator.emulator.errors import ApiError
from nats_tower_operator.emulator.jsonutil import JsonObj
from nats_tower_operator.emulator.resources import ResourceType
from nats_tower_operator.emulator.store import Store
from nats_tower_operator.emulator.watch import Change

__all__ = ["GarbageCollector", "NamespaceController"]

log = logging.getLogger(__name__)

_NAMESPACES = ("", "namespaces")


def _refs(obj: JsonObj | None) -> list[JsonObj]:
    if obj is None:
        return []
    return list(obj["metadata"].get("ownerReferences") or [])


def _deleting_with(obj: JsonObj, finalizer: str) -> bool:
    meta = obj["metadata"]
    return bool(meta.get("deletionTimestamp")) and finalizer in (meta.get("finalizers") or [])


class GarbageCollector:
    """Deletes dependents whose owners are gone; finishes Foreground/Orphan deletions."""

    def __init__(self, store: Store) -> None:
        self._store = store
        store.add_listener(self._on_change)

    def _on_change(self, rt: ResourceType, change: Change) -> None:
        meta = change.obj["metadata"]
        uid = meta["uid"]
        if change.type == "DELETED":
            for dep_rt, dep in self._store.dependents(uid):
                self._attempt(dep_rt, dep)
            for ref in _refs(change.obj):
                self._finish_foreground(ref.get("uid", ""))
            return
        if _refs(change.obj) != _refs(change.prev) and _refs(change.obj):
            self._attempt(rt, change.obj)
        prev_meta = change.prev["metadata"] if change.prev else {}
        became = bool(meta.get("deletionTimestamp")) and (
            not prev_meta.get("deletionTimestamp")
            or set(meta.get("finalizers") or []) != set(prev_meta.get("finalizers") or [])
        )
        if not became:
            return
        current = self._store.raw_get(rt, meta.get("namespace", ""), meta["name"])
        if current is None or current["metadata"]["uid"] != uid:
            return
        if _deleting_with(current, "orphan"):
            self._orphan(rt, current)
        elif _deleting_with(current, "foregroundDeletion"):
            for dep_rt, dep in self._store.dependents(uid):
                self._attempt(dep_rt, dep)
            self._finish_foreground(uid)

    def _owner_state(self, dep: JsonObj, ref: JsonObj) -> str:
        found = self._store.locate(ref.get("uid", ""))
        if found is None:
            return "dangling"
        owner_rt, owner = found
        if owner_rt.namespaced and owner["metadata"].get("namespace") != dep["metadata"].get(
            "namespace"
        ):
            return "dangling"
        if _deleting_with(owner, "foregroundDeletion"):
            return "waiting"
        return "solid"

    def _attempt(self, rt: ResourceType, dep: JsonObj) -> None:
        """kube's ``attemptToDeleteItem`` for one dependent."""
        meta = dep["metadata"]
        current = self._store.raw_get(rt, meta.get("namespace", ""), meta["name"])
        if current is None or current["metadata"]["uid"] != meta["uid"]:
            return
        refs = _refs(current)
        if not refs:
            return
        states = [self._owner_state(current, ref) for ref in refs]
        if "solid" in states:
            keep = [ref for ref, state in zip(refs, states, strict=True) if state == "solid"]
            if len(keep) != len(refs):
                new = dict(current)
                new["metadata"] = {**current["metadata"], "ownerReferences": keep}
                self._store.replace_internal(rt, current, new)
            return
        policy = (
            "Foreground"
            if "waiting" in states and self._store.dependents(meta["uid"])
            else "Background"
        )
        try:
            self._store.delete(
                rt, meta.get("namespace", ""), meta["name"], uid=meta["uid"], propagation=policy
            )
        except ApiError as exc:
            if exc.code not in (404, 409):
                raise
            log.debug("garbage collection of %s skipped: %s", meta["name"], exc.reason)

    def _finish_foreground(self, owner_uid: str) -> None:
        found = self._store.locate(owner_uid)
        if found is None:
            return
        owner_rt, owner = found
        if not _deleting_with(owner, "foregroundDeletion"):
            return
        for _, dep in self._store.dependents(owner_uid):
            for ref in _refs(dep):
                if ref.get("uid") == owner_uid and ref.get("blockOwnerDeletion") is True:
                    return
        self._store.finalize(owner_rt, owner, remove=["foregroundDeletion"])

    def _orphan(self, rt: ResourceType, owner: JsonObj) -> None:
        uid = owner["metadata"]["uid"]
        for dep_rt, dep in self._store.dependents(uid):
            new = dict(dep)
            refs = [r for r in _refs(dep) if r.get("uid") != uid]
            meta = {**dep["metadata"], "ownerReferences": refs}
            if not refs:
                meta.pop("ownerReferences")
            new["metadata"] = meta
            self._store.replace_internal(dep_rt, dep, new)
        self._store.finalize(rt, owner, remove=["orphan"])


class NamespaceController:
    """Empties terminating namespaces and removes them when nothing is left."""

    def __init__(self, store: Store) -> None:
        self._store = store
        store.add_listener(self._on_change)

    def _namespace(self, name: str) -> JsonObj | None:
        return self._store.raw_get(self._store.primary_type(_NAMESPACES), "", name)

    def _on_change(self, rt: ResourceType, change: Change) -> None:
        meta = change.obj["metadata"]
        if rt.storage_key == _NAMESPACES:
            if (
                change.type == "MODIFIED"
                and meta.get("deletionTimestamp")
                and not (change.prev and change.prev["metadata"].get("deletionTimestamp"))
            ):
                self._empty(meta["name"])
            return
        if change.type == "DELETED" and rt.namespaced:
            ns = self._namespace(meta.get("namespace", ""))
            if ns is not None and ns["metadata"].get("deletionTimestamp"):
                self._finish(ns)

    def _empty(self, namespace: str) -> None:
        for rt in self._store.types():
            if (
                not rt.namespaced
                or rt.virtual
                or self._store.primary_type(rt.storage_key) is not rt
            ):
                continue
            for obj in list(self._store.objects(rt, namespace)):
                if obj["metadata"].get("deletionTimestamp"):
                    continue
                try:
                    self._store.delete(
                        rt, namespace, obj["metadata"]["name"], propagation="Background"
                    )
                except ApiError as exc:
                    if exc.code != 404:
                        raise
        ns = self._namespace(namespace)
        if ns is not None:
            self._finish(ns)

    def _finish(self, ns: JsonObj) -> None:
        if self._store.count_in_namespace(ns["metadata"]["name"]) == 0:
            self._store.finalize(self._store.primary_type(_NAMESPACES), ns, remove=["kubernetes"])
