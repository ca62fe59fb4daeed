"""An index of labelled objects (pods, NACK Accounts) by the Secret they ask for.

Informer handlers feed it; it answers "which objects use Secret (namespace, name)?" in
O(1) and tells the caller which Secret keys an event touched (a relabel touches two).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from typing import Any

from nats_tower_operator.reconcile import Request
from nats_tower_operator.reconcilers.desired import MAX_VALUE, TOO_LARGE, Consumer
from nats_tower_operator.reconcilers.labels import (
    CONSUMER_ANNOTATIONS,
    CONSUMER_LABELS,
    SECRET_LABEL,
)

__all__ = ["ConsumerIndex", "consumer_from_object", "slim_consumer"]

_ObjectKey = tuple[str, str, str]  # kind, namespace, name
_SecretKey = tuple[str, str]  # namespace, secret name


_KEPT_METADATA = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
)


def _ours(values: object, known: frozenset[str]) -> dict[str, str]:
    if not isinstance(values, Mapping):
        return {}
    # Only the keys the operator reads are kept, so nothing else can inflate the cache. Keys
    # and most values (account, installation, role) repeat across thousands of objects:
    # interned, each is stored once. A value over MAX_VALUE is never kept: a marker stands
    # for it, and the consumer is told (desired.py).
    kept: dict[str, str] = {}
    for key in known:
        value = values.get(key)
        if value is not None:
            text = str(value)
            kept[sys.intern(key)] = sys.intern(text) if len(text) <= MAX_VALUE else TOO_LARGE
    return kept


def slim_consumer(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What the operator keeps of a pod or Account: identity and our labels/annotations.

    Used as the informers' transform, so other labels and big annotations (for example
    ``kubectl.kubernetes.io/last-applied-configuration``) never stay in memory.
    """
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        meta = {}
    slim: dict[str, Any] = {k: meta[k] for k in _KEPT_METADATA if k in meta}
    if "namespace" in slim:
        slim["namespace"] = sys.intern(str(slim["namespace"]))
    slim["labels"] = _ours(meta.get("labels"), CONSUMER_LABELS)
    slim["annotations"] = _ours(meta.get("annotations"), CONSUMER_ANNOTATIONS)
    return {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "metadata": slim}


def consumer_from_object(kind: str, api_version: str, obj: Mapping[str, Any]) -> Consumer | None:
    """Read a (metadata-only or full) object as a consumer; None without the secret label."""
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        return None
    labels = meta.get("labels")
    if not isinstance(labels, Mapping) or not isinstance(labels.get(SECRET_LABEL), str):
        return None
    annotations = meta.get("annotations")
    return Consumer(
        kind=kind,
        api_version=api_version,
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        uid=str(meta.get("uid") or ""),
        # The informer's slim copies are never mutated: shared, not copied.
        labels=labels,
        annotations=annotations if isinstance(annotations, Mapping) else {},
        resource_version=str(meta.get("resourceVersion") or ""),
        creation_timestamp=str(meta.get("creationTimestamp") or ""),
        deleting=bool(meta.get("deletionTimestamp")),
    )


class ConsumerIndex:
    """Labelled objects grouped by (namespace, secret name)."""

    def __init__(self) -> None:
        self._objects: dict[_ObjectKey, Consumer] = {}
        self._by_secret: dict[_SecretKey, set[_ObjectKey]] = {}

    def observe(
        self, kind: str, api_version: str, event: str, obj: Mapping[str, Any]
    ) -> list[Request]:
        """Apply an informer event; return the Secret keys whose consumers changed."""
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
        assert isinstance(meta, Mapping)
        key: _ObjectKey = (kind, str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        touched: list[Request] = []
        previous = self._objects.pop(key, None)
        if previous is not None:
            secret_key = (previous.namespace, previous.secret_name)
            members = self._by_secret.get(secret_key)
            if members is not None:
                members.discard(key)
                if not members:
                    del self._by_secret[secret_key]
            touched.append(Request(previous.namespace, previous.secret_name))
        current = None if event == "DELETED" else consumer_from_object(kind, api_version, obj)
        if current is not None:
            self._objects[key] = current
            self._by_secret.setdefault((current.namespace, current.secret_name), set()).add(key)
            request = Request(current.namespace, current.secret_name)
            if request not in touched:
                touched.append(request)
        return touched

    def for_secret(self, namespace: str, secret: str) -> list[Consumer]:
        """The objects that ask for Secret ``namespace/secret``, in a stable order."""
        keys = sorted(self._by_secret.get((namespace, secret), ()))
        return [self._objects[k] for k in keys]

    def secret_keys(self) -> Iterator[Request]:
        """Every (namespace, secret) that at least one object asks for."""
        for namespace, secret in list(self._by_secret):
            yield Request(namespace, secret)

    def __len__(self) -> int:
        return len(self._objects)
