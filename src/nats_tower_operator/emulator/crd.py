"""CustomResourceDefinitions: the CRD resource itself and serving the resources it defines.

Creating a CRD (``apiextensions.k8s.io/v1``) validates it like the real server, marks it
``NamesAccepted`` and ``Established`` and serves every ``served`` version at
``/apis/{group}/{version}/{plural}`` (one storage bucket for all versions, no conversion:
the ``apiVersion`` is rewritten). Custom resources are pruned, defaulted and validated
against the version's ``openAPIV3Schema``; the ``status`` subresource and
``selectableFields`` are honoured; strategic merge patch is refused (415) as by the real
server. Deleting a CRD deletes its custom resources (``customresourcecleanup`` finalizer)
and then stops serving them.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources as importlib_resources
from typing import Any

import yaml

from nats_tower_operator.emulator import errors
from nats_tower_operator.emulator import schema as crschema
from nats_tower_operator.emulator import validation as v
from nats_tower_operator.emulator.errors import ApiError, Cause
from nats_tower_operator.emulator.jsonutil import JsonObj, clone
from nats_tower_operator.emulator.resources import (
    META_PATCH_SCHEMA,
    Behaviour,
    Column,
    ResourceType,
)
from nats_tower_operator.emulator.store import Store
from nats_tower_operator.emulator.watch import Change

__all__ = [
    "CRD_CLEANUP_FINALIZER",
    "CrdController",
    "custom_resource_types",
    "load_crd_file",
    "load_nack_accounts_crd",
    "version_priority",
]

CRD_CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
_CRD_KEY = ("apiextensions.k8s.io", "customresourcedefinitions")


def load_nack_accounts_crd() -> JsonObj:
    """Return NACK's ``accounts.jetstream.nats.io`` CRD (v1beta2) shipped with the package."""
    text = (
        importlib_resources.files("nats_tower_operator.emulator")
        .joinpath("crds/nack-accounts.yaml")
        .read_text()
    )
    doc = yaml.safe_load(text)
    if not isinstance(doc, dict):  # pragma: no cover - the shipped file is a mapping
        raise ValueError("crds/nack-accounts.yaml does not hold a CRD")
    return doc


def load_crd_file(path: str) -> list[JsonObj]:
    """Return the CRD documents of a YAML file (other kinds are skipped)."""
    with open(path, encoding="utf-8") as fh:
        docs = [d for d in yaml.safe_load_all(fh) if isinstance(d, dict)]
    return [d for d in docs if d.get("kind") == "CustomResourceDefinition"]


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key of Kubernetes version names: GA > beta > alpha, higher numbers first."""
    import re

    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if m is None:
        return (3, 0, 0, version)
    major = int(m.group(1))
    stage = {"": 0, "beta": 1, "alpha": 2}[m.group(2) or ""]
    minor = int(m.group(3) or 0)
    return (stage, -major, -minor, version)


def _json_path(obj: Any, path: str) -> Any:
    """Evaluate the simple JSONPath subset used by printer columns/selectable fields."""
    node = obj
    for part in path.strip().lstrip(".").split("."):
        if not part:
            continue
        if isinstance(node, dict):
            node = node.get(part)
        else:
            return None
    return node


def _to_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        import json

        return json.dumps(value, separators=(",", ":"))
    return value


class CustomResourceBehaviour(Behaviour):
    """Rules of one custom resource version, taken from its CRD."""

    def __init__(self, *, version: JsonObj) -> None:
        self._schema: JsonObj | None = (version.get("schema") or {}).get("openAPIV3Schema")
        self._status = "status" in (version.get("subresources") or {})
        self._selectable = [
            str(f.get("jsonPath", ""))
            for f in version.get("selectableFields") or []
            if isinstance(f, dict)
        ]
        self.field_labels = frozenset(p.lstrip(".") for p in self._selectable)
        self._printer = [
            c for c in version.get("additionalPrinterColumns") or [] if isinstance(c, dict)
        ]

    def to_storage(self, obj: JsonObj) -> JsonObj:
        if self._schema is None:
            return obj
        out: JsonObj = crschema.apply_defaults(crschema.prune(obj, self._schema), self._schema)
        return out

    def prepare_create(self, obj: JsonObj) -> None:
        if self._status:
            obj.pop("status", None)

    def validate(self, obj: JsonObj, old: JsonObj | None) -> list[Cause]:
        return crschema.validate(obj, self._schema)

    def fields(self, obj: JsonObj) -> dict[str, str]:
        out = {}
        for path in self._selectable:
            value = _json_path(obj, path)
            out[path.lstrip(".")] = (
                ""
                if value is None
                else str(value).lower()
                if isinstance(value, bool)
                else str(value)
            )
        return out

    def columns(self) -> list[Column]:
        return [
            Column(
                str(c.get("name", "")),
                type=str(c.get("type", "string")),
                format=str(c.get("format", "")),
                description=str(c.get("description", "")),
                priority=int(c.get("priority", 0)),
            )
            for c in self._printer
        ]

    def cells(self, obj: JsonObj) -> list[Any]:
        return [_to_cell(_json_path(obj, str(c.get("jsonPath", "")))) for c in self._printer]


def custom_resource_types(crd: JsonObj) -> list[ResourceType]:
    """The served resource types of a CRD, non-storage versions first."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = str(spec.get("group", ""))
    types = []
    for version in spec.get("versions") or []:
        if not version.get("served", False):
            continue
        subresources = frozenset(k for k in (version.get("subresources") or {}) if k == "status")
        types.append(
            ResourceType(
                group,
                str(version["name"]),
                str(names.get("plural", "")),
                str(names.get("kind", "")),
                spec.get("scope") == "Namespaced",
                singular=str(names.get("singular") or str(names.get("kind", "")).lower()),
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                subresources=subresources,
                has_generation=True,
                return_deleted_object=True,
                patch_schema=None,
                behaviour=CustomResourceBehaviour(version=version),
                storage_version=bool(version.get("storage", False)),
                custom=True,
            )
        )
    types.sort(key=lambda t: t.storage_version)
    return types


class CrdBehaviour(Behaviour):
    """The CustomResourceDefinition resource: validation, defaults, status, finalizer."""

    def __init__(self, now: Callable[[], str]) -> None:
        self._now = now

    def prepare_create(self, obj: JsonObj) -> None:
        spec = obj.setdefault("spec", {})
        names = spec.setdefault("names", {})
        if isinstance(names, dict) and names.get("kind"):
            names.setdefault("singular", str(names["kind"]).lower())
            names.setdefault("listKind", f"{names['kind']}List")
        spec.setdefault("conversion", {"strategy": "None"})
        meta = obj["metadata"]
        fins = list(meta.get("finalizers") or [])
        if CRD_CLEANUP_FINALIZER not in fins:
            fins.append(CRD_CLEANUP_FINALIZER)
        meta["finalizers"] = fins
        now = self._now()
        obj["status"] = {
            "acceptedNames": clone(names),
            "conditions": [
                {
                    "type": "NamesAccepted",
                    "status": "True",
                    "lastTransitionTime": now,
                    "reason": "NoConflicts",
                    "message": "no conflicts found",
                },
                {
                    "type": "Established",
                    "status": "True",
                    "lastTransitionTime": now,
                    "reason": "InitialNamesAccepted",
                    "message": "the initial names have been accepted",
                },
            ],
            "storedVersions": [
                str(ver.get("name"))
                for ver in spec.get("versions") or []
                if isinstance(ver, dict) and ver.get("storage")
            ],
        }

    def prepare_update(self, new: JsonObj, old: JsonObj) -> None:
        spec = new.setdefault("spec", {})
        names = spec.setdefault("names", {})
        if isinstance(names, dict) and names.get("kind"):
            names.setdefault("singular", str(names["kind"]).lower())
            names.setdefault("listKind", f"{names['kind']}List")
        spec.setdefault("conversion", {"strategy": "None"})
        status = dict(new.get("status") or {})
        status["acceptedNames"] = clone(names)
        stored = list(status.get("storedVersions") or [])
        for ver in spec.get("versions") or []:
            if isinstance(ver, dict) and ver.get("storage") and ver.get("name") not in stored:
                stored.append(str(ver.get("name")))
        status["storedVersions"] = stored
        new["status"] = status

    def validate(self, obj: JsonObj, old: JsonObj | None) -> list[Cause]:  # noqa: C901, PLR0912 - one branch per rule of the real server's CRD validation
        causes: list[Cause] = []
        spec = obj.get("spec") or {}
        names = spec.get("names") or {}
        group = str(spec.get("group", ""))
        plural = str(names.get("plural", ""))
        name = obj["metadata"].get("name", "")
        if not group:
            causes.append(v.required("spec.group"))
        elif "." not in group:
            causes.append(
                v.invalid("spec.group", group, "should be a domain with at least one dot")
            )
        if not plural:
            causes.append(v.required("spec.names.plural"))
        else:
            causes += [
                v.invalid("spec.names.plural", plural, m) for m in v.dns1123_label_errors(plural)
            ]
        if not names.get("kind"):
            causes.append(v.required("spec.names.kind"))
        if name != f"{plural}.{group}":
            causes.append(
                v.invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group')
            )
        scope = spec.get("scope")
        if scope not in ("Cluster", "Namespaced"):
            causes.append(
                Cause(
                    "FieldValueNotSupported",
                    f'Unsupported value: "{scope or ""}": supported values: '
                    '"Cluster", "Namespaced"',
                    "spec.scope",
                )
            )
        versions = spec.get("versions") or []
        if not versions:
            causes.append(
                v.required(
                    "spec.versions", "must have exactly one version marked as storage version"
                )
            )
        elif sum(1 for ver in versions if isinstance(ver, dict) and ver.get("storage")) != 1:
            causes.append(
                v.invalid(
                    "spec.versions",
                    "[...]",
                    "must have exactly one version marked as storage version",
                )
            )
        for idx, ver in enumerate(versions):
            if not isinstance(ver, dict) or not ver.get("name"):
                causes.append(v.required(f"spec.versions[{idx}].name"))
                continue
            if not (ver.get("schema") or {}).get("openAPIV3Schema"):
                causes.append(
                    v.required(
                        f"spec.versions[{idx}].schema.openAPIV3Schema", "schemas are required"
                    )
                )
        if old is not None and (old.get("spec") or {}).get("scope") != scope:
            causes.append(v.invalid("spec.scope", scope, "field is immutable"))
        return causes

    def columns(self) -> list[Column]:
        return [Column("Created At", type="date")]

    def cells(self, obj: JsonObj) -> list[Any]:
        return [obj["metadata"].get("creationTimestamp", "")]


class CrdController:
    """Serves custom resources while their CRD exists; cleans them up when it is deleted."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.crd_type = ResourceType(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            False,
            singular="customresourcedefinition",
            short_names=("crd", "crds"),
            subresources=frozenset({"status"}),
            has_generation=True,
            return_deleted_object=True,
            patch_schema=META_PATCH_SCHEMA,
            behaviour=CrdBehaviour(store.now),
        )
        self._served: dict[str, list[ResourceType]] = {}
        store.register_type(self.crd_type)
        store.add_listener(self._on_change)
        store.add_create_guard(self._guard)

    def register(self, manifest: JsonObj) -> JsonObj:
        """Create (or replace) a CRD from a manifest; return the stored CRD (a copy)."""
        name = (manifest.get("metadata") or {}).get("name", "")
        body = clone(manifest)
        if name and self._store.raw_get(self.crd_type, "", name) is not None:
            body.setdefault("metadata", {}).pop("resourceVersion", None)
            obj, _ = self._store.update(self.crd_type, "", name, body)
        else:
            obj = self._store.create(self.crd_type, "", body)
        return clone(obj)

    def _crd_of(self, key: tuple[str, str]) -> JsonObj | None:
        return self._store.raw_get(self.crd_type, "", f"{key[1]}.{key[0]}")

    def _guard(self, rt: ResourceType, namespace: str) -> None:
        if rt.group in ("", "apiextensions.k8s.io") or rt.plural == "":
            return
        crd = self._crd_of(rt.storage_key)
        if crd is not None and crd["metadata"].get("deletionTimestamp"):
            raise errors.method_not_allowed(
                "create not allowed while custom resource definition is terminating"
            )

    def _on_change(self, rt: ResourceType, change: Change) -> None:
        if rt.storage_key == _CRD_KEY:
            name = change.obj["metadata"]["name"]
            if change.type == "DELETED":
                self._unserve(name)
            elif change.obj["metadata"].get("deletionTimestamp"):
                self._cleanup(change.obj)
            else:
                self._serve(change.obj)
            return
        if change.type == "DELETED" and rt.group and rt.storage_key != _CRD_KEY:
            crd = self._crd_of(rt.storage_key)
            if crd is not None and crd["metadata"].get("deletionTimestamp"):
                self._finish(crd)

    def _serve(self, crd: JsonObj) -> None:
        name = crd["metadata"]["name"]
        new_types = custom_resource_types(crd)
        wanted = {(t.group, t.version, t.plural) for t in new_types}
        for old in self._served.get(name, []):
            if (old.group, old.version, old.plural) not in wanted:
                self._store.unregister_type(old)
        for rt in new_types:
            self._store.register_type(rt)
        self._served[name] = new_types

    def _unserve(self, name: str) -> None:
        for rt in self._served.pop(name, []):
            self._store.unregister_type(rt)

    def _cleanup(self, crd: JsonObj) -> None:
        types = self._served.get(crd["metadata"]["name"], [])
        if types:
            primary = self._store.primary_type(types[0].storage_key)
            for obj in list(self._store.objects(primary)):
                meta = obj["metadata"]
                try:
                    self._store.delete(primary, meta.get("namespace", ""), meta["name"])
                except ApiError as exc:
                    if exc.code != 404:
                        raise
        current = self._store.raw_get(self.crd_type, "", crd["metadata"]["name"])
        if current is not None:
            self._finish(current)

    def _finish(self, crd: JsonObj) -> None:
        types = self._served.get(crd["metadata"]["name"], [])
        if types and any(True for _ in self._store.objects(types[0])):
            return
        self._store.finalize(self.crd_type, crd, remove=[CRD_CLEANUP_FINALIZER])
