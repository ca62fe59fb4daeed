"""Object storage with the API server's write semantics; the emulator's single source of truth.

Objects live in dicts keyed by storage bucket, namespace and name, indexed by uid and by
owner uid. Every write goes through :class:`Store`, which assigns uid, creationTimestamp,
generation and a single cluster-wide, strictly increasing resourceVersion; rejects stale
updates (409), duplicates (409) and invalid objects (422); keeps objects with finalizers
(setting ``deletionTimestamp``) until the finalizers are gone; and publishes each change to
the :class:`~nats_tower_operator.emulator.watch.WatchHub` and to change listeners (the garbage
collector, the namespace and CRD controllers) synchronously, in commit order.

Stored objects are never mutated after they are committed: the engine methods
(:meth:`Store.create`, :meth:`Store.get`, ...) return shared, read-only references in storage
form; the convenience methods for tests (:meth:`Store.read`, :meth:`Store.write`, ...) return
deep copies in the served form.
"""

from __future__ import annotations

import base64
import json
import random
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from nats_tower_operator.emulator import errors
from nats_tower_operator.emulator import validation as v
from nats_tower_operator.emulator.errors import ApiError, Cause
from nats_tower_operator.emulator.jsonutil import JsonObj, clone
from nats_tower_operator.emulator.patch import (
    PatchError,
    json_merge_patch,
    json_patch,
    strategic_merge_patch,
)
from nats_tower_operator.emulator.resources import ResourceType, builtin_types
from nats_tower_operator.emulator.selectors import FieldSelector, LabelSelector, SelectorError
from nats_tower_operator.emulator.watch import Change, StorageKey, TooOld, Watcher, WatchHub

__all__ = [
    "DEFAULT_NAMESPACES",
    "ChangeListener",
    "ListPage",
    "Store",
    "format_time",
]

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")

ChangeListener = Callable[[ResourceType, Change], None]
"""Called after each commit with the bucket's primary type and the change."""

PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)

_META_ORDER = (
    "name",
    "generateName",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
)
_SYSTEM_META = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
)
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_SNAPSHOT_LIMIT = 256
_SNAPSHOT_TTL = 300.0


def format_time(moment: datetime) -> str:
    """RFC 3339 with second precision, as ``metav1.Time`` is serialized."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _ordered(meta: JsonObj) -> JsonObj:
    out = {k: meta[k] for k in _META_ORDER if k in meta}
    for key, value in meta.items():
        if key not in out:
            out[key] = value
    return out


def _content(obj: JsonObj, *, skip_status: bool) -> JsonObj:
    return {
        k: val
        for k, val in obj.items()
        if k not in ("metadata", "apiVersion", "kind") and not (skip_status and k == "status")
    }


@dataclass(frozen=True, slots=True)
class ListPage:
    """One page of a list: items (storage form), the list's resourceVersion and continue."""

    items: list[JsonObj]
    resource_version: int
    continue_token: str | None = None
    remaining: int | None = None


@dataclass(slots=True)
class _Snapshot:
    items: list[JsonObj]
    rv: int
    created: float


class Store:
    """In-memory objects with Kubernetes API semantics."""

    def __init__(
        self,
        *,
        window: int = 10_000,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.hub = WatchHub(window=window)
        self._clock = clock
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        self._primary: dict[StorageKey, ResourceType] = {}
        self._objects: dict[StorageKey, dict[str, dict[str, JsonObj]]] = {}
        self._uids: dict[str, tuple[StorageKey, str, str]] = {}
        self._dependents: dict[str, set[str]] = {}
        self._rv = 0
        self._listeners: list[ChangeListener] = []
        self._create_guards: list[Callable[[ResourceType, str], None]] = []
        self._snapshots: OrderedDict[str, _Snapshot] = OrderedDict()
        self._compact_floor = 0
        for rt in builtin_types():
            self.register_type(rt)
        namespaces = self.type_for("", "v1", "namespaces")
        for name in DEFAULT_NAMESPACES:
            self.create(namespaces, "", {"metadata": {"name": name}})

    # --- types ----------------------------------------------------------------------------

    def register_type(self, rt: ResourceType) -> None:
        """Serve ``rt`` (replacing a previous definition of the same group/version/plural)."""
        self._types[(rt.group, rt.version, rt.plural)] = rt
        key = rt.storage_key
        primary = self._primary.get(key)
        if (
            primary is None
            or rt.storage_version
            or primary is self._types.get((rt.group, rt.version, rt.plural))
        ):
            self._primary[key] = rt
        self._objects.setdefault(key, {})

    def unregister_type(self, rt: ResourceType) -> None:
        """Stop serving ``rt``; the last type of a bucket also drops the bucket's objects."""
        self._types.pop((rt.group, rt.version, rt.plural), None)
        key = rt.storage_key
        remaining = [t for t in self._types.values() if t.storage_key == key]
        if remaining:
            if self._primary.get(key) is rt or self._primary.get(key) not in remaining:
                remaining.sort(key=lambda t: not t.storage_version)
                self._primary[key] = remaining[0]
            return
        self._primary.pop(key, None)
        for by_name in self._objects.pop(key, {}).values():
            for obj in by_name.values():
                self._forget_indexes(obj)
        self.hub.forget(key)

    def type_for(self, group: str, version: str, plural: str) -> ResourceType:
        """Return the served type, raising a NotFound ApiError when it is not served."""
        rt = self._types.get((group, version, plural))
        if rt is None:
            raise ApiError(
                errors.status_body(
                    code=404,
                    reason="NotFound",
                    message="the server could not find the requested resource",
                    details={},
                )
            )
        return rt

    def find_type(self, group: str, version: str, plural: str) -> ResourceType | None:
        """Return the served type or None."""
        return self._types.get((group, version, plural))

    def types(self) -> list[ResourceType]:
        """Every served type."""
        return list(self._types.values())

    def primary_type(self, key: StorageKey) -> ResourceType:
        """The type whose form objects of bucket ``key`` are stored in."""
        return self._primary[key]

    def resolve(self, resource: str | ResourceType) -> ResourceType:
        """Find a type by plural, ``plural.group``, short name or kind (preferred version)."""
        if isinstance(resource, ResourceType):
            return resource
        name, _, group = resource.partition(".")
        candidates = [
            rt
            for rt in self._types.values()
            if (not group or rt.group == group)
            and name.lower() in (rt.plural, rt.singular, rt.kind.lower(), *rt.short_names)
        ]
        if not candidates:
            raise KeyError(f"no served resource matches {resource!r}")
        candidates.sort(key=lambda rt: (rt.group != "" and not group, not rt.storage_version))
        return candidates[0]

    # --- bookkeeping ----------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        """The current cluster-wide resourceVersion."""
        return self._rv

    def add_listener(self, listener: ChangeListener) -> None:
        """Call ``listener`` after every commit (synchronously, in commit order)."""
        self._listeners.append(listener)

    def add_create_guard(self, guard: Callable[[ResourceType, str], None]) -> None:
        """Call ``guard(type, namespace)`` before each create; it may raise an ApiError."""
        self._create_guards.append(guard)

    def now(self) -> str:
        """The current time as a metav1.Time string."""
        return format_time(self._clock())

    def _bucket(self, rt: ResourceType) -> dict[str, dict[str, JsonObj]]:
        return self._objects.setdefault(rt.storage_key, {})

    def raw_get(self, rt: ResourceType, namespace: str, name: str) -> JsonObj | None:
        """Return the stored object (shared, read-only) or None."""
        return self._bucket(rt).get(namespace if rt.namespaced else "", {}).get(name)

    def locate(self, uid: str) -> tuple[ResourceType, JsonObj] | None:
        """Find an object by uid."""
        where = self._uids.get(uid)
        if where is None:
            return None
        key, ns, name = where
        obj = self._objects.get(key, {}).get(ns, {}).get(name)
        if obj is None:
            return None
        return self._primary[key], obj

    def dependents(self, owner_uid: str) -> list[tuple[ResourceType, JsonObj]]:
        """Objects that list ``owner_uid`` in their ownerReferences."""
        out = []
        for uid in tuple(self._dependents.get(owner_uid, ())):
            found = self.locate(uid)
            if found is not None:
                out.append(found)
        return out

    def objects(self, rt: ResourceType, namespace: str | None = None) -> Iterator[JsonObj]:
        """Iterate stored objects of ``rt`` (one namespace or all), unsorted, read-only."""
        bucket = self._bucket(rt)
        if namespace is not None and rt.namespaced:
            yield from tuple(bucket.get(namespace, {}).values())
            return
        for by_name in tuple(bucket.values()):
            yield from tuple(by_name.values())

    def count_in_namespace(self, namespace: str) -> int:
        """How many namespaced objects (all resources) live in ``namespace``."""
        return sum(len(bucket.get(namespace, {})) for bucket in self._objects.values())

    def _index(self, key: StorageKey, obj: JsonObj) -> None:
        meta = obj["metadata"]
        self._uids[meta["uid"]] = (key, meta.get("namespace", ""), meta["name"])
        for ref in meta.get("ownerReferences") or []:
            self._dependents.setdefault(ref.get("uid", ""), set()).add(meta["uid"])

    def _forget_indexes(self, obj: JsonObj) -> None:
        meta = obj["metadata"]
        self._uids.pop(meta["uid"], None)
        for ref in meta.get("ownerReferences") or []:
            deps = self._dependents.get(ref.get("uid", ""))
            if deps is not None:
                deps.discard(meta["uid"])
                if not deps:
                    del self._dependents[ref.get("uid", "")]

    def _commit(self, rt: ResourceType, kind: str, new: JsonObj, prev: JsonObj | None) -> None:
        key = rt.storage_key
        meta = new["metadata"]
        ns = meta.get("namespace", "") if rt.namespaced else ""
        bucket = self._objects.setdefault(key, {})
        if prev is not None:
            self._forget_indexes(prev)
        if kind == "DELETED":
            by_name = bucket.get(ns, {})
            by_name.pop(meta["name"], None)
            if not by_name:
                bucket.pop(ns, None)
        else:
            bucket.setdefault(ns, {})[meta["name"]] = new
            self._index(key, new)
        change = Change(self._rv, kind, new, prev)
        self.hub.publish(key, change)
        primary = self._primary.get(key, rt)
        for listener in tuple(self._listeners):
            listener(primary, change)

    def _next_rv(self) -> int:
        self._rv += 1
        return self._rv

    # --- decoding -------------------------------------------------------------------------

    def _decode(self, rt: ResourceType, body: Any) -> JsonObj:
        if not isinstance(body, dict):
            raise errors.bad_request(
                f"Object '{rt.kind}' is invalid: the request body must be a JSON object"
            )
        kind = body.get("kind")
        api_version = body.get("apiVersion")
        if kind not in (None, "") and kind != rt.kind:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected "
                f"API version ({rt.api_version})"
                if api_version not in (None, "", rt.api_version)
                else f'{kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                f"the object provided is unrecognized (must be of type {rt.kind})"
            )
        if api_version not in (None, "") and api_version != rt.api_version:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected "
                f"API version ({rt.api_version})"
            )
        meta = body.get("metadata")
        if meta is None:
            body["metadata"] = {}
        elif not isinstance(meta, dict):
            raise errors.bad_request(
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                "metadata must be an object"
            )
        problem = rt.behaviour.decode_error(body)
        if problem:
            raise errors.bad_request(problem)
        obj = rt.behaviour.to_storage(body)
        primary = self._primary.get(rt.storage_key, rt)
        obj["kind"] = primary.kind
        obj["apiVersion"] = primary.api_version
        return obj

    def view(self, rt: ResourceType, obj: JsonObj) -> JsonObj:
        """Return ``obj`` (storage form) as served by ``rt`` (may share structure)."""
        out = rt.behaviour.from_storage(obj)
        if out.get("apiVersion") != rt.api_version or out.get("kind") != rt.kind:
            out = {**out, "apiVersion": rt.api_version, "kind": rt.kind}
        return out

    def _causes(self, rt: ResourceType, obj: JsonObj, old: JsonObj | None) -> list[Cause]:
        meta = obj["metadata"]
        causes = v.metadata_causes(meta, namespaced=rt.namespaced)
        causes += rt.behaviour.validate(obj, old)
        if old is not None and old["metadata"].get("deletionTimestamp"):
            before = set(old["metadata"].get("finalizers") or [])
            added = [f for f in meta.get("finalizers") or [] if f not in before]
            if added:
                quoted = ", ".join(f'"{f}"' for f in added)
                causes.append(
                    v.forbidden(
                        "metadata.finalizers",
                        "no new finalizers can be added if the object is being deleted, "
                        f"found new finalizers []string{{{quoted}}}",
                    )
                )
        return causes

    def _raise_invalid(self, rt: ResourceType, name: str, causes: list[Cause]) -> None:
        if causes:
            raise errors.invalid(rt.group, rt.kind, name, causes)

    # --- create ---------------------------------------------------------------------------

    def create(  # noqa: C901, PLR0912 - the real server's create checks, in its order
        self, rt: ResourceType, namespace: str, body: Any, *, dry_run: bool = False
    ) -> JsonObj:
        """Create an object; return it (storage form, shared)."""
        obj = self._decode(rt, body)
        meta = obj["metadata"]
        if rt.namespaced:
            body_ns = meta.get("namespace") or ""
            if body_ns and body_ns != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        for guard in self._create_guards:
            guard(rt, namespace)
        name = meta.get("name") or ""
        if not name:
            prefix = meta.get("generateName") or ""
            if not prefix:
                raise errors.invalid(
                    rt.group,
                    rt.kind,
                    "",
                    [v.required("metadata.name", "name or generateName is required")],
                )
            name = self._generate_name(rt, namespace, prefix)
            meta["name"] = name
        name_problems = rt.behaviour.name_errors(name)
        if name_problems:
            raise errors.invalid(
                rt.group,
                rt.kind,
                name,
                [v.invalid("metadata.name", name, m) for m in name_problems],
            )
        if meta.get("resourceVersion"):
            raise errors.internal_error(
                "resourceVersion should not be set on objects to be created"
            )
        if rt.namespaced:
            self._check_namespace(rt, namespace, name)
        if self.raw_get(rt, namespace, name) is not None:
            raise errors.already_exists(rt.group, rt.plural, name)
        for key in (*_SYSTEM_META, "selfLink", "managedFields"):
            meta.pop(key, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = self.now()
        if rt.has_generation:
            meta["generation"] = 1
        rt.behaviour.prepare_create(obj)
        self._raise_invalid(rt, name, self._causes(rt, obj, None))
        obj["metadata"] = _ordered(obj["metadata"])
        if dry_run:
            return obj
        obj["metadata"]["resourceVersion"] = str(self._next_rv())
        obj["metadata"] = _ordered(obj["metadata"])
        self._commit(rt, "ADDED", obj, None)
        return obj

    def _generate_name(self, rt: ResourceType, namespace: str, prefix: str) -> str:
        base = prefix[: 63 - 5] if len(prefix) > 58 else prefix
        for _ in range(8):
            name = base + "".join(random.choice(_GENERATE_ALPHABET) for _ in range(5))
            if self.raw_get(rt, namespace, name) is None:
                return name
        raise errors.already_exists(rt.group, rt.plural, prefix)  # pragma: no cover

    def _check_namespace(self, rt: ResourceType, namespace: str, name: str) -> None:
        ns_type = self._types[("", "v1", "namespaces")]
        ns_obj = self.raw_get(ns_type, "", namespace)
        if ns_obj is None:
            raise errors.not_found("", "namespaces", namespace)
        if ns_obj["metadata"].get("deletionTimestamp"):
            raise errors.forbidden(
                rt.group,
                rt.plural,
                name,
                f"unable to create new content in namespace {namespace} because it is being "
                "terminated",
                causes=[
                    Cause(
                        "NamespaceTerminating",
                        f"namespace {namespace} is being terminated",
                        "metadata.namespace",
                    )
                ],
            )

    # --- read -----------------------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str, name: str) -> JsonObj:
        """Return the stored object or raise NotFound."""
        obj = self.raw_get(rt, namespace, name)
        if obj is None:
            raise errors.not_found(rt.group, rt.plural, name)
        return obj

    def list_page(  # noqa: PLR0913 - keyword-only list parameters of the Kubernetes API
        self,
        rt: ResourceType,
        namespace: str | None,
        *,
        label_selector: LabelSelector | None = None,
        field_selector: FieldSelector | None = None,
        limit: int = 0,
        continue_token: str | None = None,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
    ) -> ListPage:
        """List objects (sorted by namespace/name) with selectors and paging."""
        labels = label_selector or LabelSelector()
        fields = field_selector or FieldSelector()
        self.check_fields(rt, fields)
        if continue_token:
            return self._continue(rt, namespace, labels, fields, limit, continue_token)
        if resource_version_match == "Exact" and resource_version not in (None, "", "0"):
            source: Iterable[JsonObj] = self._state_at(rt, self._parse_rv(resource_version))
            list_rv = self._parse_rv(resource_version)
        else:
            source = self.objects(rt, namespace)
            list_rv = self._rv
        items = [obj for obj in source if self._matches(rt, obj, namespace, labels, fields)]
        items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        if limit <= 0 or len(items) <= limit:
            return ListPage(items, list_rv)
        snap_id = uuid.uuid4().hex
        self._snapshots[snap_id] = _Snapshot(items, list_rv, time.monotonic())
        while len(self._snapshots) > _SNAPSHOT_LIMIT:
            self._snapshots.popitem(last=False)
        return self._page(
            snap_id, self._snapshots[snap_id], 0, limit, exact_count=labels.empty and fields.empty
        )

    def _page(
        self, snap_id: str, snap: _Snapshot, offset: int, limit: int, *, exact_count: bool
    ) -> ListPage:
        chunk = snap.items[offset : offset + limit]
        end = offset + len(chunk)
        token = None
        remaining = None
        if end < len(snap.items):
            last = chunk[-1]["metadata"]
            token = _encode_continue(
                snap.rv, f"{last.get('namespace', '')}/{last['name']}", snap_id, end
            )
            remaining = len(snap.items) - end if exact_count else None
        return ListPage(chunk, snap.rv, token, remaining)

    def _continue(
        self,
        rt: ResourceType,
        namespace: str | None,
        labels: LabelSelector,
        fields: FieldSelector,
        limit: int,
        token: str,
    ) -> ListPage:
        data = _decode_continue(token)
        rv, start = data["rv"], data["start"]
        if rv == -1:
            ns_start, _, name_start = start.partition("/")
            items = [
                obj
                for obj in self.objects(rt, namespace)
                if self._matches(rt, obj, namespace, labels, fields)
                and (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
                > (ns_start, name_start)
            ]
            items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
            snap_id = uuid.uuid4().hex
            snap = _Snapshot(items, self._rv, time.monotonic())
            self._snapshots[snap_id] = snap
            return self._page(
                snap_id,
                snap,
                0,
                limit if limit > 0 else len(items) or 1,
                exact_count=labels.empty and fields.empty,
            )
        found = self._snapshots.get(str(data.get("s", "")))
        fresh = found is not None and time.monotonic() - found.created < _SNAPSHOT_TTL
        if found is None or not fresh or found.rv < self._compact_floor:
            self._snapshots.pop(str(data.get("s", "")), None)
            raise errors.expired(
                "The provided continue parameter is too old to display a consistent list "
                "result. You can start a new list without the continue parameter, or use the "
                "continue token in this response to retrieve the remainder of the results. "
                "Continuing with the provided token results in an inconsistent list - objects "
                "that were created, modified, or deleted between the time the first chunk was "
                "returned and now may show up in the list.",
                continue_token=_encode_continue(-1, start, "", 0),
            )
        offset = int(data.get("o", 0))
        page = self._page(
            str(data["s"]),
            found,
            offset,
            limit if limit > 0 else len(found.items),
            exact_count=labels.empty and fields.empty,
        )
        if page.continue_token is None:
            self._snapshots.pop(str(data["s"]), None)
        return page

    def _matches(
        self,
        rt: ResourceType,
        obj: JsonObj,
        namespace: str | None,
        labels: LabelSelector,
        fields: FieldSelector,
    ) -> bool:
        meta = obj["metadata"]
        if namespace is not None and rt.namespaced and meta.get("namespace") != namespace:
            return False
        if not labels.empty and not labels.matches(meta.get("labels")):
            return False
        return fields.empty or fields.matches(rt.selectable_fields(obj))

    def check_fields(self, rt: ResourceType, fields: FieldSelector) -> None:
        """Reject field selectors on labels the resource does not support (400)."""
        unknown = sorted(fields.fields - rt.supported_fields())
        if unknown:
            raise errors.bad_request(f"field label not supported: {unknown[0]}")

    @staticmethod
    def _parse_rv(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise errors.bad_request(f'Invalid value: "{text}": must be an integer') from None
        if value < 0:
            raise errors.bad_request(f'Invalid value: "{text}": must be non-negative')
        return value

    def _state_at(self, rt: ResourceType, rv: int) -> list[JsonObj]:
        state = {
            (o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in self.objects(rt)
        }
        if rv > self._rv:
            raise ApiError(
                errors.status_body(
                    code=504,
                    reason="Timeout",
                    message=f"Too large resource version: {rv}, current: {self._rv}",
                    details={
                        "causes": [
                            {
                                "reason": "ResourceVersionTooLarge",
                                "message": "Too large resource version",
                            }
                        ],
                        "retryAfterSeconds": 1,
                    },
                )
            )
        try:
            changes = self.hub.log(rt.storage_key).since(rv)
        except TooOld:
            raise errors.expired("The resourceVersion for the provided list is too old.") from None
        for change in reversed(changes):
            meta = change.obj["metadata"]
            key = (meta.get("namespace", ""), meta["name"])
            if change.type == "ADDED":
                state.pop(key, None)
            elif change.prev is not None:
                state[key] = change.prev
        return list(state.values())

    # --- watch ----------------------------------------------------------------------------

    def watch(
        self,
        rt: ResourceType,
        namespace: str | None,
        *,
        label_selector: LabelSelector | None = None,
        field_selector: FieldSelector | None = None,
        resource_version: str | None = None,
    ) -> Watcher:
        """Open a watcher: from ``resource_version`` (replay), or with the current state.

        Without a resourceVersion (or ``"0"``) the current objects arrive first as ADDED,
        as the real server does. Raises :class:`~nats_tower_operator.emulator.watch.TooOld`
        when the version is older than the retained window.
        """
        fields = field_selector or FieldSelector()
        self.check_fields(rt, fields)
        watcher = Watcher(
            key=rt.storage_key,
            namespace=namespace if rt.namespaced else None,
            label_selector=label_selector or LabelSelector(),
            field_selector=fields,
            fields_of=rt.selectable_fields,
        )
        if resource_version in (None, "", "0"):
            self.hub.subscribe(watcher, since=None, initial=self.objects(rt, namespace))
        else:
            self.hub.subscribe(watcher, since=self._parse_rv(resource_version))
        return watcher

    def stop_watch(self, watcher: Watcher) -> None:
        """Unregister a watcher."""
        self.hub.unsubscribe(watcher)

    def compact(self) -> int:
        """Forget all history (watch resumes and continue tokens before now answer 410)."""
        self.hub.compact(self._rv)
        self._compact_floor = self._rv
        self._snapshots.clear()
        return self._rv

    # --- update and patch -----------------------------------------------------------------

    def update(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> tuple[JsonObj, bool]:
        """Replace an object (PUT); return ``(object, created)``."""
        obj = self._decode(rt, body)
        cur = self.raw_get(rt, namespace, name)
        if cur is None:
            if rt.allow_create_on_update and subresource is None:
                obj["metadata"].pop("resourceVersion", None)
                obj["metadata"].setdefault("name", name)
                return self.create(rt, namespace, obj, dry_run=dry_run), True
            raise errors.not_found(rt.group, rt.plural, name)
        meta = obj["metadata"]
        body_name = meta.get("name") or ""
        if body_name and body_name != name:
            raise errors.bad_request(
                f"the name of the object ({body_name}) does not match the name on the URL ({name})"
            )
        if rt.namespaced and (meta.get("namespace") or namespace) != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the "
                "request"
            )
        self._check_preconditions(rt, cur, uid=meta.get("uid"), rv=meta.get("resourceVersion"))
        new = self._merge_update(rt, obj, cur, subresource)
        return self._write_update(rt, cur, new, dry_run=dry_run), False

    def _check_preconditions(self, rt: ResourceType, cur: JsonObj, *, uid: Any, rv: Any) -> None:
        cur_meta = cur["metadata"]
        if uid and uid != cur_meta["uid"]:
            raise errors.conflict(
                rt.group,
                rt.plural,
                cur_meta["name"],
                f"Precondition failed: UID in precondition: {uid}, UID in object meta: "
                f"{cur_meta['uid']}",
            )
        if rv and str(rv) != cur_meta["resourceVersion"]:
            raise errors.conflict(rt.group, rt.plural, cur_meta["name"])

    def _merge_update(
        self, rt: ResourceType, obj: JsonObj, cur: JsonObj, subresource: str | None
    ) -> JsonObj:
        if subresource == "status":
            new = dict(cur)
            if "status" in obj:
                new["status"] = obj["status"]
            else:
                new.pop("status", None)
            new["metadata"] = dict(cur["metadata"])
            return new
        meta = dict(obj["metadata"])
        cur_meta = cur["metadata"]
        for key in (*_SYSTEM_META, "name", "namespace"):
            if key in cur_meta:
                meta[key] = cur_meta[key]
            else:
                meta.pop(key, None)
        meta.pop("managedFields", None)
        meta.pop("selfLink", None)
        meta["resourceVersion"] = cur_meta["resourceVersion"]
        obj["metadata"] = meta
        if "status" in rt.subresources:
            if "status" in cur:
                obj["status"] = cur["status"]
            else:
                obj.pop("status", None)
        rt.behaviour.prepare_update(obj, cur)
        return obj

    def _write_update(
        self, rt: ResourceType, cur: JsonObj, new: JsonObj, *, dry_run: bool
    ) -> JsonObj:
        name = cur["metadata"]["name"]
        meta = new["metadata"]
        if rt.has_generation:
            skip_status = "status" in rt.subresources
            if _content(new, skip_status=skip_status) != _content(cur, skip_status=skip_status):
                meta["generation"] = int(cur["metadata"].get("generation", 0)) + 1
        meta["resourceVersion"] = cur["metadata"]["resourceVersion"]
        self._raise_invalid(rt, name, self._causes(rt, new, cur))
        new["metadata"] = _ordered(meta)
        if new == cur or dry_run:
            return cur if new == cur else new
        deleting = bool(meta.get("deletionTimestamp"))
        new["metadata"]["resourceVersion"] = str(self._next_rv())
        if deleting and not _pending_finalizers(new):
            self._commit(rt, "DELETED", new, cur)
        else:
            self._commit(rt, "MODIFIED", new, cur)
        return new

    def patch(  # noqa: C901, PLR0913 - keyword-only patch parameters; one branch per patch type
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        patch_type: str,
        patch: Any,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        force: bool = False,
    ) -> tuple[JsonObj, bool]:
        """Apply a PATCH of ``patch_type``; return ``(object, created)``.

        ``application/apply-patch+yaml`` (server-side apply) is approximated: it creates the
        object when absent and otherwise merges like a strategic merge patch, without
        managedFields bookkeeping.
        """
        if patch_type not in PATCH_TYPES:
            raise errors.unsupported_media_type(
                "the body of the request was in an unknown format - accepted media types "
                "include: " + ", ".join(PATCH_TYPES)
            )
        if patch_type == "application/strategic-merge-patch+json" and rt.patch_schema is None:
            raise errors.unsupported_media_type(
                "the body of the request was in an unknown format - accepted media types "
                "include: application/json-patch+json, application/merge-patch+json, "
                "application/apply-patch+yaml"
            )
        cur = self.raw_get(rt, namespace, name)
        if cur is None:
            if patch_type == "application/apply-patch+yaml" and subresource is None:
                body = clone(patch) if isinstance(patch, dict) else patch
                return self.create(rt, namespace, body, dry_run=dry_run), True
            raise errors.not_found(rt.group, rt.plural, name)
        served = self.view(rt, cur)
        try:
            if patch_type == "application/json-patch+json":
                patched = json_patch(served, patch)
            elif patch_type == "application/merge-patch+json":
                patched = json_merge_patch(served, patch)
            else:
                patched = strategic_merge_patch(served, patch, rt.patch_schema or {})
        except PatchError as exc:
            raise ApiError(
                errors.status_body(code=422, reason="Invalid", message=str(exc), details={})
            ) from None
        if not isinstance(patched, dict):
            raise errors.bad_request("the patched object must be a JSON object")
        pmeta = patched.get("metadata")
        if not isinstance(pmeta, dict):
            patched["metadata"] = pmeta = {}
        rv = pmeta.get("resourceVersion")
        if patch_type == "application/apply-patch+yaml" and not (
            isinstance(patch, dict) and (patch.get("metadata") or {}).get("resourceVersion")
        ):
            rv = None
        self._check_preconditions(rt, cur, uid=pmeta.get("uid"), rv=rv)
        pmeta["resourceVersion"] = cur["metadata"]["resourceVersion"]
        if pmeta.get("name", name) != name:
            raise errors.bad_request(
                f"the name of the object ({pmeta.get('name')}) does not match the name on "
                f"the URL ({name})"
            )
        obj = self._decode(rt, patched)
        new = self._merge_update(rt, obj, cur, subresource)
        return self._write_update(rt, cur, new, dry_run=dry_run), False

    # --- delete ---------------------------------------------------------------------------

    def delete(  # noqa: PLR0913 - keyword-only delete options of the Kubernetes API
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        *,
        uid: str | None = None,
        resource_version: str | None = None,
        propagation: str | None = None,
        dry_run: bool = False,
    ) -> tuple[JsonObj, bool]:
        """Delete an object; return ``(object, deleted_now)``.

        Objects with finalizers (and namespaces, which carry the ``kubernetes`` finalizer)
        get ``deletionTimestamp`` and stay until their finalizers are removed. Propagation
        ``Foreground`` adds the ``foregroundDeletion`` finalizer when dependents exist,
        ``Orphan`` the ``orphan`` finalizer; the garbage collector finishes both.
        """
        cur = self.get(rt, namespace, name)
        self._check_preconditions(rt, cur, uid=uid, rv=resource_version)
        if propagation not in (None, "", "Foreground", "Background", "Orphan"):
            raise errors.bad_request(
                f'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: '
                f'"{propagation}": supported values: "Foreground", "Background", "Orphan", "nil"'
            )
        meta = cur["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        has_dependents = bool(self._dependents.get(meta["uid"]))
        if (
            propagation == "Foreground"
            and has_dependents
            and "foregroundDeletion" not in finalizers
        ):
            finalizers.append("foregroundDeletion")
        if propagation == "Orphan" and has_dependents and "orphan" not in finalizers:
            finalizers.append("orphan")
        pending = bool(finalizers) or _pending_finalizers(cur)
        if meta.get("deletionTimestamp") and finalizers == list(meta.get("finalizers") or []):
            return cur, False
        if pending:
            new = dict(cur)
            new_meta = dict(meta)
            new_meta.setdefault("deletionTimestamp", self.now())
            new_meta.setdefault("deletionGracePeriodSeconds", 0)
            if finalizers:
                new_meta["finalizers"] = finalizers
            new["metadata"] = _ordered(new_meta)
            if rt.storage_key == ("", "namespaces"):
                new["status"] = {**(cur.get("status") or {}), "phase": "Terminating"}
            if dry_run:
                return new, False
            new_meta = new["metadata"]
            new_meta["resourceVersion"] = str(self._next_rv())
            self._commit(rt, "MODIFIED", new, cur)
            return new, False
        if dry_run:
            return cur, True
        return self._remove(rt, cur), True

    def _remove(self, rt: ResourceType, cur: JsonObj) -> JsonObj:
        final = dict(cur)
        final["metadata"] = {**cur["metadata"], "resourceVersion": str(self._next_rv())}
        self._commit(rt, "DELETED", final, cur)
        return final

    def finalize(self, rt: ResourceType, obj: JsonObj, *, remove: Iterable[str]) -> JsonObj | None:
        """Remove finalizers (``metadata`` or namespace ``spec``) on behalf of a controller."""
        drop = set(remove)
        cur = self.raw_get(rt, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        if cur is None:
            return None
        new = dict(cur)
        meta = dict(cur["metadata"])
        fins = [f for f in meta.get("finalizers") or [] if f not in drop]
        if fins:
            meta["finalizers"] = fins
        else:
            meta.pop("finalizers", None)
        new["metadata"] = meta
        if (
            isinstance(cur.get("spec"), dict)
            and "finalizers" in cur["spec"]
            and rt.storage_key == ("", "namespaces")
        ):
            new["spec"] = {
                **cur["spec"],
                "finalizers": [f for f in cur["spec"]["finalizers"] if f not in drop],
            }
        if new == cur:
            return cur
        meta["resourceVersion"] = str(self._next_rv())
        if meta.get("deletionTimestamp") and not _pending_finalizers(new):
            self._commit(rt, "DELETED", new, cur)
        else:
            self._commit(rt, "MODIFIED", new, cur)
        return new

    def replace_internal(self, rt: ResourceType, cur: JsonObj, new: JsonObj) -> JsonObj:
        """Commit a controller-made change (e.g. stripping ownerReferences), no validation."""
        if new == cur:
            return cur
        new["metadata"] = {**new["metadata"], "resourceVersion": str(self._next_rv())}
        self._commit(rt, "MODIFIED", new, cur)
        return new

    # --- convenience API for tests (deep copies, served form) ----------------------------

    def read(self, resource: str | ResourceType, name: str, namespace: str = "") -> JsonObj | None:
        """Return a copy of an object or None.

        ``resource`` is a plural, ``plural.group``, short name or kind: ``"pods"``,
        ``"leases.coordination.k8s.io"``, ``"accounts.jetstream.nats.io"``.
        """
        rt = self.resolve(resource)
        obj = self.raw_get(rt, namespace, name)
        return None if obj is None else clone(self.view(rt, obj))

    def read_all(
        self,
        resource: str | ResourceType,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[JsonObj]:
        """Return copies of the matching objects, sorted by namespace/name."""
        rt = self.resolve(resource)
        try:
            page = self.list_page(
                rt,
                namespace,
                label_selector=LabelSelector.parse(label_selector),
                field_selector=FieldSelector.parse(field_selector),
            )
        except SelectorError as exc:
            raise ValueError(str(exc)) from None
        return [clone(self.view(rt, o)) for o in page.items]

    def write(self, manifest: JsonObj, *, resource: str | None = None) -> JsonObj:
        """Create ``manifest`` or, when it exists, replace it unconditionally; return a copy."""
        rt = self._type_of_manifest(manifest, resource)
        meta = manifest.get("metadata") or {}
        namespace = meta.get("namespace") or ("default" if rt.namespaced else "")
        body = clone(manifest)
        if meta.get("name") and self.raw_get(rt, namespace, meta["name"]) is not None:
            body.setdefault("metadata", {}).pop("resourceVersion", None)
            obj, _ = self.update(rt, namespace, meta["name"], body)
        else:
            obj = self.create(rt, namespace, body)
        return clone(self.view(rt, obj))

    def remove(
        self,
        resource: str | ResourceType,
        name: str,
        namespace: str = "",
        *,
        propagation: str | None = None,
    ) -> bool:
        """Delete an object; return True when it is gone now (False: waits for finalizers)."""
        rt = self.resolve(resource)
        _, deleted = self.delete(rt, namespace, name, propagation=propagation)
        return deleted

    def _type_of_manifest(self, manifest: JsonObj, resource: str | None) -> ResourceType:
        if resource is not None:
            return self.resolve(resource)
        api_version = str(manifest.get("apiVersion", ""))
        group, _, version = api_version.rpartition("/")
        for rt in self._types.values():
            if rt.group == group and rt.version == version and rt.kind == manifest.get("kind"):
                return rt
        raise KeyError(f"no served resource for {api_version} {manifest.get('kind')}")


def _pending_finalizers(obj: JsonObj) -> bool:
    if obj["metadata"].get("finalizers"):
        return True
    spec = obj.get("spec")
    return (
        obj.get("kind") == "Namespace" and isinstance(spec, dict) and bool(spec.get("finalizers"))
    )


def _encode_continue(rv: int, start: str, snap: str, offset: int) -> str:
    payload: dict[str, Any] = {"v": "meta.k8s.io/v1", "rv": rv, "start": start + "\x00"}
    if snap:
        payload["s"] = snap
        payload["o"] = offset
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_continue(token: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        if data.get("v") != "meta.k8s.io/v1" or not isinstance(data.get("rv"), int):
            raise ValueError("unknown version")
        data["start"] = str(data.get("start", "")).rstrip("\x00")
    except (ValueError, TypeError) as exc:
        raise errors.bad_request(f"continue key is not valid: {exc}") from None
    if not isinstance(data, dict):
        raise errors.bad_request("continue key is not valid")
    return data
