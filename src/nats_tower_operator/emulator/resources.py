"""The built-in resource types and their per-type rules (defaults, validation, fields).

A :class:`ResourceType` describes one served ``group/version/plural``: its kind, scope,
verbs, short names, subresources and where its objects are stored (``storage_key``; both
``v1`` and ``events.k8s.io/v1`` Events share one bucket, converted on the way in and out).
Its :class:`Behaviour` holds the type's rules: defaulting on create/update, validation
(422 causes), decoding errors (400, e.g. a Secret ``data`` value that is not base64),
selectable fields and extra ``kubectl get`` columns.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from nats_tower_operator.emulator import validation as v
from nats_tower_operator.emulator.errors import Cause
from nats_tower_operator.emulator.jsonutil import JsonObj, clone
from nats_tower_operator.emulator.patch import ListStrategy, PatchSchema

__all__ = [
    "ALL_VERBS",
    "Behaviour",
    "Column",
    "ResourceType",
    "builtin_types",
]

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True, slots=True)
class Column:
    """A ``kubectl get`` table column (``columnDefinitions[]``)."""

    name: str
    type: str = "string"
    format: str = ""
    description: str = ""
    priority: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Return the column definition as served in a Table."""
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


class Behaviour:
    """Per-type rules; the defaults suit a plain object without special fields."""

    #: field selector labels supported besides ``metadata.name``/``metadata.namespace``
    field_labels: frozenset[str] = frozenset()

    def name_errors(self, name: str) -> list[str]:
        """Why ``name`` is not valid for this type (default: DNS-1123 subdomain)."""
        return v.dns1123_subdomain_errors(name)

    def decode_error(self, obj: JsonObj) -> str | None:
        """A decoding problem (answered as 400 BadRequest), or None."""
        return None

    def to_storage(self, obj: JsonObj) -> JsonObj:
        """Convert a request body of this version to the storage form (in place allowed)."""
        return obj

    def from_storage(self, obj: JsonObj) -> JsonObj:
        """Convert a stored object to this version's form (must not mutate ``obj``)."""
        return obj

    def prepare_create(self, obj: JsonObj) -> None:
        """Apply defaults to a new object (storage form), in place."""

    def prepare_update(self, new: JsonObj, old: JsonObj) -> None:
        """Carry over server-owned fields from ``old`` into ``new``, in place."""

    def validate(self, obj: JsonObj, old: JsonObj | None) -> list[Cause]:
        """Return the 422 causes for ``obj`` (``old`` is the current object on update)."""
        return []

    def fields(self, obj: JsonObj) -> dict[str, str]:
        """Selectable field values of ``obj`` beyond the metadata ones."""
        return {}

    def columns(self) -> list[Column]:
        """Extra table columns between Name and Age."""
        return []

    def cells(self, obj: JsonObj) -> list[Any]:
        """Cells for :meth:`columns`."""
        return []


@dataclass(frozen=True, slots=True, eq=False)
class ResourceType:
    """One served resource: ``group/version/plural`` and everything needed to serve it."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: frozenset[str] = frozenset()
    storage_group: str | None = None
    storage_plural: str | None = None
    has_generation: bool = False
    return_deleted_object: bool = False
    allow_create_on_update: bool = False
    patch_schema: PatchSchema | None = field(default_factory=dict)
    behaviour: Behaviour = field(default_factory=Behaviour)
    virtual: bool = False
    """Not stored (e.g. SelfSubjectAccessReview: create answers a computed object)."""
    storage_version: bool = True
    """This version is the storage version of its bucket."""
    custom: bool = False
    """Served from a CRD (list items then keep their kind/apiVersion, as on a real server)."""

    @property
    def api_version(self) -> str:
        """``group/version`` (or just ``version`` for the core group)."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def storage_key(self) -> tuple[str, str]:
        """The ``(group, plural)`` bucket holding this resource's objects."""
        return (
            self.group if self.storage_group is None else self.storage_group,
            self.storage_plural or self.plural,
        )

    @property
    def list_kind(self) -> str:
        """The kind of a list of this resource."""
        return f"{self.kind}List"

    def selectable_fields(self, obj: JsonObj) -> dict[str, str]:
        """All selectable field values of a stored object."""
        meta = obj.get("metadata", {})
        out = {"metadata.name": meta.get("name", "")}
        if self.namespaced:
            out["metadata.namespace"] = meta.get("namespace", "")
        out.update(self.behaviour.fields(obj))
        return out

    def supported_fields(self) -> frozenset[str]:
        """Field selector labels this resource accepts."""
        base = {"metadata.name", "metadata.namespace"}
        return frozenset(base | set(self.behaviour.field_labels))

    def __repr__(self) -> str:
        return f"ResourceType({self.api_version} {self.plural})"


# --- helpers ------------------------------------------------------------------------------

_CONFIG_KEY_RE = re.compile(r"^[-._a-zA-Z0-9]+$")
_SECRET_LIMIT = 1024 * 1024


def _config_key_causes(path: str, key: str) -> list[Cause]:
    causes: list[Cause] = []
    if len(key) > 253:
        causes.append(v.invalid(f"{path}[{key}]", key, "must be no more than 253 characters"))
    if not _CONFIG_KEY_RE.match(key) or key in (".", ".."):
        causes.append(
            v.invalid(
                f"{path}[{key}]",
                key,
                "a valid config key must consist of alphanumeric characters, '-', '_' or "
                "'.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for "
                "validation is '[-._a-zA-Z0-9]+')",
            )
        )
    return causes


def _base64_error(value: Any) -> str | None:
    """Decode like Go's encoding/json for []byte; return Go's error text or None."""
    if not isinstance(value, str):
        return "json: cannot unmarshal non-string into Go value of type []byte"
    text = value.replace("\r", "").replace("\n", "")
    for idx, ch in enumerate(text):
        if not (ch.isascii() and (ch.isalnum() or ch in "+/=")):
            return f"illegal base64 data at input byte {idx}"
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return f"illegal base64 data at input byte {max(len(text) - 1, 0)}"
    return None


def _immutable_causes(new: JsonObj, old: JsonObj, fields: tuple[str, ...]) -> list[Cause]:
    causes: list[Cause] = []
    if old.get("immutable") is True:
        for name in fields:
            if new.get(name) != old.get(name):
                causes.append(v.forbidden(name, "field is immutable when `immutable` is set"))
        if new.get("immutable") is not True:
            causes.append(v.forbidden("immutable", "field is immutable when `immutable` is set"))
    return causes


_TIME = "%Y-%m-%dT%H:%M:%SZ"
_MICRO_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"
TimePaths = tuple[tuple[tuple[str, ...], bool], ...]
"""Timestamp fields as (path, is MicroTime)."""


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _time_fields(obj: JsonObj, paths: TimePaths) -> list[tuple[JsonObj, str, bool]]:
    found = []
    for path, micro in paths:
        node: Any = obj
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and node.get(path[-1]) is not None:
            found.append((node, path[-1], micro))
    return found


def _time_error(obj: JsonObj, paths: TimePaths, kind: str, group_version: str) -> str | None:
    """The decoding error for an unparsable timestamp (Go's time parsing), or None."""
    for node, key, micro in _time_fields(obj, paths):
        if _parse_time(node[key]) is None:
            layout = "2006-01-02T15:04:05.000000Z07:00" if micro else "2006-01-02T15:04:05Z07:00"
            return (
                f'{kind} in version "{group_version}" cannot be handled as a {kind}: '
                f'parsing time "{node[key]}" as "{layout}": cannot parse "{node[key]}"'
            )
    return None


def _normalize_times(obj: JsonObj, paths: TimePaths) -> None:
    """Rewrite timestamps as the server serializes metav1.Time / metav1.MicroTime."""
    for node, key, micro in _time_fields(obj, paths):
        moment = _parse_time(node[key])
        if moment is not None:
            node[key] = moment.astimezone(UTC).strftime(_MICRO_TIME if micro else _TIME)


# --- namespaces ---------------------------------------------------------------------------


class NamespaceBehaviour(Behaviour):
    """Namespaces: DNS labels, ``kubernetes`` spec finalizer, automatic name label."""

    field_labels = frozenset({"status.phase"})

    def name_errors(self, name: str) -> list[str]:
        return v.dns1123_label_errors(name)

    def prepare_create(self, obj: JsonObj) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("finalizers", ["kubernetes"])
        obj["status"] = {"phase": "Active"}
        self._name_label(obj)

    def prepare_update(self, new: JsonObj, old: JsonObj) -> None:
        self._name_label(new)
        new["spec"] = clone(old.get("spec", {}))

    @staticmethod
    def _name_label(obj: JsonObj) -> None:
        meta = obj["metadata"]
        labels = dict(meta.get("labels") or {})
        labels["kubernetes.io/metadata.name"] = meta["name"]
        meta["labels"] = labels

    def fields(self, obj: JsonObj) -> dict[str, str]:
        return {"status.phase": obj.get("status", {}).get("phase", "")}

    def columns(self) -> list[Column]:
        return [Column("Status", description="The status of the namespace")]

    def cells(self, obj: JsonObj) -> list[Any]:
        return [obj.get("status", {}).get("phase", "")]


# --- pods ---------------------------------------------------------------------------------

POD_PATCH_SCHEMA: PatchSchema = {
    "metadata.finalizers": ListStrategy(),
    "metadata.ownerReferences": ListStrategy("uid"),
    "spec.containers": ListStrategy("name"),
    "spec.initContainers": ListStrategy("name"),
    "spec.ephemeralContainers": ListStrategy("name"),
    "spec.containers.ports": ListStrategy("containerPort"),
    "spec.initContainers.ports": ListStrategy("containerPort"),
    "spec.containers.env": ListStrategy("name"),
    "spec.initContainers.env": ListStrategy("name"),
    "spec.containers.volumeMounts": ListStrategy("mountPath"),
    "spec.initContainers.volumeMounts": ListStrategy("mountPath"),
    "spec.containers.volumeDevices": ListStrategy("devicePath"),
    "spec.volumes": ListStrategy("name"),
    "spec.imagePullSecrets": ListStrategy("name"),
    "spec.hostAliases": ListStrategy("ip"),
    "spec.resourceClaims": ListStrategy("name"),
    "spec.schedulingGates": ListStrategy("name"),
    "status.conditions": ListStrategy("type"),
    "status.podIPs": ListStrategy("ip"),
}

META_PATCH_SCHEMA: PatchSchema = {
    "metadata.finalizers": ListStrategy(),
    "metadata.ownerReferences": ListStrategy("uid"),
}

DEPLOYMENT_PATCH_SCHEMA: PatchSchema = {
    **META_PATCH_SCHEMA,
    **{
        f"spec.template.{key}": strategy
        for key, strategy in POD_PATCH_SCHEMA.items()
        if key.startswith("spec.")
    },
    "status.conditions": ListStrategy("type"),
}

SERVICE_PATCH_SCHEMA: PatchSchema = {**META_PATCH_SCHEMA, "spec.ports": ListStrategy("port")}

_POD_MUTABLE_NOTE = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
    "(allow it to be set to 1 if it was previously negative)"
)


def _image_pull_policy(image: str) -> str:
    last = image.rsplit("/", 1)[-1]
    if "@" in last:
        return "IfNotPresent"
    if ":" not in last or last.endswith(":latest"):
        return "Always"
    return "IfNotPresent"


class PodBehaviour(Behaviour):
    """Pods: container checks, a few defaults, spec immutability, Pending phase."""

    field_labels = frozenset(
        {
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        }
    )

    def prepare_create(self, obj: JsonObj) -> None:
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict):
            spec.setdefault("restartPolicy", "Always")
            spec.setdefault("terminationGracePeriodSeconds", 30)
            spec.setdefault("dnsPolicy", "ClusterFirst")
            spec.setdefault("schedulerName", "default-scheduler")
            spec.setdefault("securityContext", {})
            sa = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
            spec["serviceAccountName"] = sa
            spec["serviceAccount"] = sa
            for key in ("containers", "initContainers"):
                for c in spec.get(key) or []:
                    if isinstance(c, dict):
                        c.setdefault("terminationMessagePath", "/dev/termination-log")
                        c.setdefault("terminationMessagePolicy", "File")
                        c.setdefault("resources", {})
                        if isinstance(c.get("image"), str):
                            c.setdefault("imagePullPolicy", _image_pull_policy(c["image"]))
                        for port in c.get("ports") or []:
                            if isinstance(port, dict):
                                port.setdefault("protocol", "TCP")
        obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}

    def validate(self, obj: JsonObj, old: JsonObj | None) -> list[Cause]:
        causes: list[Cause] = []
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [v.required("spec")]
        containers = spec.get("containers")
        if not containers:
            causes.append(v.required("spec.containers"))
        names: set[str] = set()
        for key in ("initContainers", "containers"):
            for idx, c in enumerate(spec.get(key) or []):
                path = f"spec.{key}[{idx}]"
                if not isinstance(c, dict):
                    causes.append(v.invalid(path, c, "must be an object"))
                    continue
                name = c.get("name", "")
                if not name:
                    causes.append(v.required(f"{path}.name"))
                else:
                    causes += [
                        v.invalid(f"{path}.name", name, m) for m in v.dns1123_label_errors(name)
                    ]
                    if name in names:
                        causes.append(
                            Cause(
                                "FieldValueDuplicate", f'Duplicate value: "{name}"', f"{path}.name"
                            )
                        )
                    names.add(name)
                if not c.get("image"):
                    causes.append(v.required(f"{path}.image"))
        if old is not None:
            causes += self._update_causes(obj, old)
        return causes

    @staticmethod
    def _update_causes(obj: JsonObj, old: JsonObj) -> list[Cause]:
        def masked(spec: Any) -> Any:
            spec = clone(spec) if isinstance(spec, dict) else {}
            for key in ("containers", "initContainers"):
                for c in spec.get(key) or []:
                    if isinstance(c, dict):
                        c.pop("image", None)
            spec.pop("activeDeadlineSeconds", None)
            spec.pop("tolerations", None)
            spec.pop("terminationGracePeriodSeconds", None)
            return spec

        if masked(obj.get("spec")) != masked(old.get("spec")):
            return [v.forbidden("spec", _POD_MUTABLE_NOTE)]
        return []

    def fields(self, obj: JsonObj) -> dict[str, str]:
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        return {
            "spec.nodeName": str(spec.get("nodeName", "")),
            "spec.restartPolicy": str(spec.get("restartPolicy", "")),
            "spec.schedulerName": str(spec.get("schedulerName", "")),
            "spec.serviceAccountName": str(spec.get("serviceAccountName", "")),
            "spec.hostNetwork": "true" if spec.get("hostNetwork") else "false",
            "status.phase": str(status.get("phase", "")),
            "status.podIP": str(status.get("podIP", "")),
            "status.nominatedNodeName": str(status.get("nominatedNodeName", "")),
        }

    def columns(self) -> list[Column]:
        return [
            Column("Ready", description="The aggregate readiness state of this pod."),
            Column("Status", description="The aggregate status of the containers in this pod."),
            Column("Restarts", description="The number of times the containers were restarted."),
        ]

    def cells(self, obj: JsonObj) -> list[Any]:
        containers = (obj.get("spec") or {}).get("containers") or []
        statuses = (obj.get("status") or {}).get("containerStatuses") or []
        ready = sum(1 for s in statuses if isinstance(s, dict) and s.get("ready"))
        restarts = sum(int(s.get("restartCount", 0)) for s in statuses if isinstance(s, dict))
        phase = (obj.get("status") or {}).get("phase", "")
        if obj.get("metadata", {}).get("deletionTimestamp"):
            phase = "Terminating"
        return [f"{ready}/{len(containers)}", phase, str(restarts)]


# --- secrets and config maps -------------------------------------------------------------

_SECRET_REQUIRED_KEYS = {
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
}


class SecretBehaviour(Behaviour):
    """Secrets: base64 ``data``, ``stringData`` merged into ``data``, type rules."""

    field_labels = frozenset({"type"})

    def decode_error(self, obj: JsonObj) -> str | None:
        data = obj.get("data")
        if data is not None and not isinstance(data, dict):
            return "json: cannot unmarshal non-object into Go struct field Secret.data"
        for value in (data or {}).values():
            problem = _base64_error(value)
            if problem:
                return f'Secret in version "v1" cannot be handled as a Secret: {problem}'
        string_data = obj.get("stringData")
        if string_data is not None and (
            not isinstance(string_data, dict)
            or not all(isinstance(x, str) for x in string_data.values())
        ):
            return (
                'Secret in version "v1" cannot be handled as a Secret: json: cannot unmarshal '
                "non-string into Go struct field Secret.stringData of type string"
            )
        return None

    def to_storage(self, obj: JsonObj) -> JsonObj:
        string_data = obj.pop("stringData", None)
        if string_data:
            data = dict(obj.get("data") or {})
            for key, value in string_data.items():
                data[key] = base64.b64encode(value.encode()).decode()
            obj["data"] = data
        current = obj.get("data")
        if isinstance(current, dict):
            obj["data"] = {k: val.replace("\r", "").replace("\n", "") for k, val in current.items()}
        return obj

    def prepare_create(self, obj: JsonObj) -> None:
        obj.setdefault("type", "Opaque")

    def prepare_update(self, new: JsonObj, old: JsonObj) -> None:
        new.setdefault("type", old.get("type", "Opaque"))

    def validate(self, obj: JsonObj, old: JsonObj | None) -> list[Cause]:
        causes: list[Cause] = []
        data = obj.get("data") or {}
        size = 0
        for key, value in data.items():
            causes += _config_key_causes("data", key)
            size += len(value) * 3 // 4
        if size > _SECRET_LIMIT:
            causes.append(v.too_long("data", _SECRET_LIMIT))
        for key in _SECRET_REQUIRED_KEYS.get(obj.get("type", ""), ()):
            if key not in data:
                causes.append(v.required(f"data[{key}]"))
        if old is not None:
            if obj.get("type") != old.get("type"):
                causes.append(v.invalid("type", obj.get("type"), "field is immutable"))
            causes += _immutable_causes(obj, old, ("data",))
        return causes

    def fields(self, obj: JsonObj) -> dict[str, str]:
        return {"type": str(obj.get("type", ""))}

    def columns(self) -> list[Column]:
        return [
            Column("Type", description="The type of the secret"),
            Column("Data", type="string", description="The number of entries in the secret"),
        ]

    def cells(self, obj: JsonObj) -> list[Any]:
        return [obj.get("type", ""), len(obj.get("data") or {})]


class ConfigMapBehaviour(Behaviour):
    """ConfigMaps: string ``data``, base64 ``binaryData``, key rules, ``immutable``."""

    def decode_error(self, obj: JsonObj) -> str | None:
        data = obj.get("data") or {}
        if not isinstance(data, dict) or not all(isinstance(x, str) for x in data.values()):
            return (
                'ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot '
                "unmarshal non-string into Go struct field ConfigMap.data of type string"
            )
        for value in (obj.get("binaryData") or {}).values():
            problem = _base64_error(value)
            if problem:
                return f'ConfigMap in version "v1" cannot be handled as a ConfigMap: {problem}'
        return None

    def validate(self, obj: JsonObj, old: JsonObj | None) -> list[Cause]:
        causes: list[Cause] = []
        data = obj.get("data") or {}
        binary = obj.get("binaryData") or {}
        for key in data:
            causes += _config_key_causes("data", key)
        for key in binary:
            causes += _config_key_causes("binaryData", key)
            if key in data:
                causes.append(
                    v.invalid(f"data[{key}]", key, "duplicate of key present in binaryData")
                )
        if old is not None:
            causes += _immutable_causes(obj, old, ("data", "binaryData"))
        return causes

    def columns(self) -> list[Column]:
        return [Column("Data", description="Number of entries")]

    def cells(self, obj: JsonObj) -> list[Any]:
        return [len(obj.get("data") or {}) + len(obj.get("binaryData") or {})]


# --- events -------------------------------------------------------------------------------

_EVENT_TYPES = ("Normal", "Warning")
_CORE_TO_V1 = (
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
)
_SHARED_EVENT_FIELDS = (
    "eventTime",
    "series",
    "reportingInstance",
    "action",
    "reason",
    "related",
    "type",
)
_EVENT_FIELD_LABELS = frozenset(
    {
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    }
)


def _event_fields(obj: JsonObj) -> dict[str, str]:
    inv = obj.get("involvedObject") or {}
    out = {
        f"involvedObject.{k}": str(inv.get(k, ""))
        for k in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
    }
    out["reason"] = str(obj.get("reason", ""))
    out["reportingComponent"] = str(obj.get("reportingComponent", ""))
    out["source"] = str((obj.get("source") or {}).get("component", ""))
    out["type"] = str(obj.get("type", ""))
    for key in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath"):
        out[f"regarding.{key}"] = out[f"involvedObject.{key}"]
    out["reportingController"] = out["reportingComponent"]
    return out


def _qualified_name_field_causes(path: str, value: str) -> list[Cause]:
    from nats_tower_operator.emulator.selectors import label_key_errors

    return [v.invalid(path, value, m) for m in label_key_errors(value)]


def _legacy_event_causes(obj: JsonObj, *, core: bool) -> list[Cause]:  # noqa: C901, PLR0912 - one branch per rule of the real server's Event validation
    """kube-apiserver's ``legacyValidateEvent``."""
    causes: list[Cause] = []
    ns = obj.get("metadata", {}).get("namespace", "")
    inv_ns = (obj.get("involvedObject") or {}).get("namespace", "")
    controller_field = "reportingComponent" if core else "reportingController"
    if not obj.get("eventTime"):
        if not inv_ns:
            if ns not in ("", "default"):
                causes.append(
                    v.invalid("involvedObject.namespace", inv_ns, "does not match event.namespace")
                )
        elif ns != inv_ns:
            causes.append(
                v.invalid("involvedObject.namespace", inv_ns, "does not match event.namespace")
            )
    else:
        if not inv_ns and ns not in ("default", "kube-system"):
            causes.append(
                v.invalid("involvedObject.namespace", inv_ns, "does not match event.namespace")
            )
        controller = obj.get("reportingComponent", "")
        if not controller:
            causes.append(v.required(controller_field))
        else:
            causes += _qualified_name_field_causes(controller_field, controller)
        if not obj.get("reportingInstance"):
            causes.append(v.required("reportingInstance"))
        if not obj.get("action"):
            causes.append(v.required("action"))
        if not obj.get("reason"):
            causes.append(v.required("reason"))
    for limit_field, limit in (("reportingInstance", 128), ("action", 128), ("reason", 128)):
        if len(str(obj.get(limit_field, ""))) > limit:
            causes.append(v.too_long(limit_field, limit, unit="characters"))
    if len(str(obj.get("message", ""))) > 1024 and obj.get("eventTime"):
        causes.append(v.too_long("message", 1024, unit="characters"))
    return causes


_CORE_EVENT_TIMES: TimePaths = (
    (("eventTime",), True),
    (("series", "lastObservedTime"), True),
    (("firstTimestamp",), False),
    (("lastTimestamp",), False),
)
_V1_EVENT_TIMES: TimePaths = (
    (("eventTime",), True),
    (("series", "lastObservedTime"), True),
    (("deprecatedFirstTimestamp",), False),
    (("deprecatedLastTimestamp",), False),
)


class CoreEventBehaviour(Behaviour):
    """``v1`` Events (the storage form), validated like the real legacy event API."""

    field_labels = _EVENT_FIELD_LABELS

    def decode_error(self, obj: JsonObj) -> str | None:
        return _time_error(obj, _CORE_EVENT_TIMES, "Event", "v1")

    def to_storage(self, obj: JsonObj) -> JsonObj:
        _normalize_times(obj, _CORE_EVENT_TIMES)
        return obj

    def validate(self, obj: JsonObj, old: JsonObj | None) -> list[Cause]:
        return _legacy_event_causes(obj, core=True)

    def fields(self, obj: JsonObj) -> dict[str, str]:
        return _event_fields(obj)

    def columns(self) -> list[Column]:
        return [
            Column("Type"),
            Column("Reason"),
            Column("Object"),
            Column("Message"),
        ]

    def cells(self, obj: JsonObj) -> list[Any]:
        inv = obj.get("involvedObject") or {}
        return [
            obj.get("type", ""),
            obj.get("reason", ""),
            f"{str(inv.get('kind', '')).lower()}/{inv.get('name', '')}",
            obj.get("message", ""),
        ]


class EventsV1Behaviour(CoreEventBehaviour):
    """``events.k8s.io/v1`` Events: converted to/from the core form, strict validation."""

    field_labels = (
        _EVENT_FIELD_LABELS
        | frozenset(
            f"regarding.{k}"
            for k in (
                "kind",
                "namespace",
                "name",
                "uid",
                "apiVersion",
                "resourceVersion",
                "fieldPath",
            )
        )
        | {"reportingController"}
    )

    def to_storage(self, obj: JsonObj) -> JsonObj:
        out: JsonObj = {
            "kind": "Event",
            "apiVersion": "v1",
            "metadata": obj.get("metadata", {}),
        }
        for core, new in _CORE_TO_V1:
            if new in obj:
                out[core] = obj[new]
        for name in _SHARED_EVENT_FIELDS:
            if name in obj:
                out[name] = obj[name]
        out.setdefault("involvedObject", {})
        _normalize_times(out, _CORE_EVENT_TIMES)
        return out

    def decode_error(self, obj: JsonObj) -> str | None:
        return _time_error(obj, _V1_EVENT_TIMES, "Event", "events.k8s.io/v1")

    def from_storage(self, obj: JsonObj) -> JsonObj:
        out: JsonObj = {
            "kind": "Event",
            "apiVersion": "events.k8s.io/v1",
            "metadata": obj.get("metadata", {}),
        }
        for name in _SHARED_EVENT_FIELDS:
            if obj.get(name) is not None:
                out[name] = obj[name]
        for core, new in _CORE_TO_V1:
            value = obj.get(core)
            if value not in (None, "", {}, 0):
                out[new] = value
        return out

    def validate(self, obj: JsonObj, old: JsonObj | None) -> list[Cause]:
        causes = _legacy_event_causes(obj, core=False)
        if not obj.get("eventTime"):
            causes.append(v.required("eventTime"))
        if obj.get("type") not in _EVENT_TYPES:
            causes.append(v.invalid("type", "", f"has invalid value: {obj.get('type', '')}"))
        if obj.get("firstTimestamp"):
            causes.append(v.invalid("deprecatedFirstTimestamp", "", "needs to be unset"))
        if obj.get("lastTimestamp"):
            causes.append(v.invalid("deprecatedLastTimestamp", "", "needs to be unset"))
        if obj.get("count"):
            causes.append(v.invalid("deprecatedCount", "", "needs to be unset"))
        if obj.get("source"):
            causes.append(v.invalid("deprecatedSource", "", "needs to be unset"))
        # keep only one report of each missing field
        seen: set[tuple[str, str]] = set()
        unique: list[Cause] = []
        for cause in causes:
            if (cause.field, cause.reason) not in seen:
                seen.add((cause.field, cause.reason))
                unique.append(cause)
        return unique


# --- leases and service accounts ---------------------------------------------------------


_LEASE_TIMES: TimePaths = ((("spec", "acquireTime"), True), (("spec", "renewTime"), True))


class LeaseBehaviour(Behaviour):
    """coordination.k8s.io Leases: positive durations, non-negative transitions."""

    def decode_error(self, obj: JsonObj) -> str | None:
        return _time_error(obj, _LEASE_TIMES, "Lease", "coordination.k8s.io/v1")

    def to_storage(self, obj: JsonObj) -> JsonObj:
        _normalize_times(obj, _LEASE_TIMES)
        return obj

    def validate(self, obj: JsonObj, old: JsonObj | None) -> list[Cause]:
        causes: list[Cause] = []
        spec = obj.get("spec") or {}
        duration = spec.get("leaseDurationSeconds")
        if duration is not None and (not isinstance(duration, int) or duration <= 0):
            causes.append(
                v.invalid("spec.leaseDurationSeconds", duration, "must be greater than 0")
            )
        transitions = spec.get("leaseTransitions")
        if transitions is not None and (not isinstance(transitions, int) or transitions < 0):
            causes.append(
                v.invalid(
                    "spec.leaseTransitions", transitions, "must be greater than or equal to 0"
                )
            )
        return causes

    def columns(self) -> list[Column]:
        return [Column("Holder", description="holderIdentity")]

    def cells(self, obj: JsonObj) -> list[Any]:
        return [(obj.get("spec") or {}).get("holderIdentity", "")]


# --- registry -----------------------------------------------------------------------------


def builtin_types() -> list[ResourceType]:
    """The resource types served before any CRD is registered."""
    ns_verbs = ("create", "delete", "get", "list", "patch", "update", "watch")
    types: list[ResourceType] = [
        ResourceType(
            "",
            "v1",
            "namespaces",
            "Namespace",
            False,
            singular="namespace",
            short_names=("ns",),
            verbs=ns_verbs,
            subresources=frozenset({"status", "finalize"}),
            return_deleted_object=True,
            patch_schema=META_PATCH_SCHEMA,
            behaviour=NamespaceBehaviour(),
        ),
        ResourceType(
            "",
            "v1",
            "pods",
            "Pod",
            True,
            singular="pod",
            short_names=("po",),
            categories=("all",),
            subresources=frozenset({"status"}),
            has_generation=True,
            return_deleted_object=True,
            patch_schema=POD_PATCH_SCHEMA,
            behaviour=PodBehaviour(),
        ),
        ResourceType(
            "",
            "v1",
            "secrets",
            "Secret",
            True,
            singular="secret",
            patch_schema=META_PATCH_SCHEMA,
            behaviour=SecretBehaviour(),
        ),
        ResourceType(
            "",
            "v1",
            "configmaps",
            "ConfigMap",
            True,
            singular="configmap",
            short_names=("cm",),
            patch_schema=META_PATCH_SCHEMA,
            behaviour=ConfigMapBehaviour(),
        ),
        ResourceType(
            "",
            "v1",
            "serviceaccounts",
            "ServiceAccount",
            True,
            singular="serviceaccount",
            short_names=("sa",),
            patch_schema={**META_PATCH_SCHEMA, "secrets": ListStrategy("name")},
        ),
        ResourceType(
            "",
            "v1",
            "events",
            "Event",
            True,
            singular="event",
            short_names=("ev",),
            allow_create_on_update=True,
            patch_schema=META_PATCH_SCHEMA,
            behaviour=CoreEventBehaviour(),
        ),
        ResourceType(
            "events.k8s.io",
            "v1",
            "events",
            "Event",
            True,
            singular="event",
            short_names=("ev",),
            storage_group="",
            allow_create_on_update=True,
            patch_schema=META_PATCH_SCHEMA,
            behaviour=EventsV1Behaviour(),
            storage_version=False,
        ),
        ResourceType(
            "coordination.k8s.io",
            "v1",
            "leases",
            "Lease",
            True,
            singular="lease",
            patch_schema=META_PATCH_SCHEMA,
            behaviour=LeaseBehaviour(),
        ),
        # Stored without type-specific validation and without controllers, so that
        # deployment manifests (kustomize output) apply cleanly.
        ResourceType(
            "",
            "v1",
            "services",
            "Service",
            True,
            singular="service",
            short_names=("svc",),
            categories=("all",),
            subresources=frozenset({"status"}),
            patch_schema=SERVICE_PATCH_SCHEMA,
        ),
        ResourceType(
            "apps",
            "v1",
            "deployments",
            "Deployment",
            True,
            singular="deployment",
            short_names=("deploy",),
            categories=("all",),
            subresources=frozenset({"status"}),
            has_generation=True,
            patch_schema=DEPLOYMENT_PATCH_SCHEMA,
        ),
        *(
            ResourceType(
                "rbac.authorization.k8s.io",
                "v1",
                plural,
                kind,
                namespaced,
                singular=kind.lower(),
                patch_schema=META_PATCH_SCHEMA,
            )
            for plural, kind, namespaced in (
                ("roles", "Role", True),
                ("rolebindings", "RoleBinding", True),
                ("clusterroles", "ClusterRole", False),
                ("clusterrolebindings", "ClusterRoleBinding", False),
            )
        ),
        ResourceType(
            "authorization.k8s.io",
            "v1",
            "selfsubjectaccessreviews",
            "SelfSubjectAccessReview",
            False,
            singular="selfsubjectaccessreview",
            verbs=("create",),
            virtual=True,
        ),
    ]
    return types
