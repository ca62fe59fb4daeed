"""Validation rules shared by all resources: names and ``metadata``, as pure functions.

Each function returns a list of :class:`~nats_tower_operator.emulator.errors.Cause` (empty
when valid) using the real server's field paths and message texts, so a 422 from the
emulator reads like one from kube-apiserver.
"""

from __future__ import annotations

import re
from typing import Any

from nats_tower_operator.emulator.errors import Cause
from nats_tower_operator.emulator.jsonutil import JsonObj
from nats_tower_operator.emulator.selectors import label_key_errors, label_value_errors

__all__ = [
    "dns1123_label_errors",
    "dns1123_subdomain_errors",
    "invalid",
    "metadata_causes",
    "path_segment_errors",
    "required",
]

_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_ANNOTATIONS_LIMIT = 256 * 1024


def _quote(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)


def invalid(field: str, value: Any, message: str) -> Cause:
    """A ``FieldValueInvalid`` cause."""
    return Cause("FieldValueInvalid", f"Invalid value: {_quote(value)}: {message}", field)


def required(field: str, message: str = "") -> Cause:
    """A ``FieldValueRequired`` cause."""
    text = "Required value" + (f": {message}" if message else "")
    return Cause("FieldValueRequired", text, field)


def forbidden(field: str, message: str) -> Cause:
    """A ``FieldValueForbidden`` cause."""
    return Cause("FieldValueForbidden", f"Forbidden: {message}", field)


def too_long(field: str, limit: int, *, unit: str = "bytes") -> Cause:
    """A ``FieldValueTooLong`` cause."""
    return Cause("FieldValueTooLong", f"Too long: must have at most {limit} {unit}", field)


def dns1123_subdomain_errors(name: str) -> list[str]:
    """Why ``name`` is not a lowercase RFC 1123 subdomain (most object names)."""
    errors: list[str] = []
    if len(name) > 253:
        errors.append("must be no more than 253 characters")
    if not _SUBDOMAIN_RE.match(name):
        errors.append(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
            "characters, '-' or '.', and must start and end with an alphanumeric character "
            "(e.g. 'example.com', regex used for validation is "
            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        )
    return errors


def dns1123_label_errors(name: str) -> list[str]:
    """Why ``name`` is not a lowercase RFC 1123 label (namespace and container names)."""
    errors: list[str] = []
    if len(name) > 63:
        errors.append("must be no more than 63 characters")
    if not _LABEL_RE.match(name):
        errors.append(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
            "or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  "
            "or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        )
    return errors


def path_segment_errors(name: str) -> list[str]:
    """Why ``name`` cannot be used as a URL path segment."""
    if name in (".", ".."):
        return [f"may not be '{name}'"]
    for bad in ("/", "%"):
        if bad in name:
            return [f"may not contain '{bad}'"]
    return []


def _qualified_name_causes(field: str, key: str) -> list[Cause]:
    return [invalid(field, key, msg) for msg in label_key_errors(key)]


def metadata_causes(meta: JsonObj, *, namespaced: bool) -> list[Cause]:  # noqa: C901, PLR0912 - one branch per metadata rule of the real server
    """Validate labels, annotations, finalizers and ownerReferences of ``meta``."""
    causes: list[Cause] = []
    labels = meta.get("labels") or {}
    if not isinstance(labels, dict):
        causes.append(invalid("metadata.labels", labels, "must be a map"))
        labels = {}
    for key, value in labels.items():
        causes += _qualified_name_causes("metadata.labels", key)
        if not isinstance(value, str):
            causes.append(invalid(f"metadata.labels[{key}]", value, "must be a string"))
            continue
        causes += [invalid("metadata.labels", value, msg) for msg in label_value_errors(value)]
    annotations = meta.get("annotations") or {}
    if not isinstance(annotations, dict):
        causes.append(invalid("metadata.annotations", annotations, "must be a map"))
        annotations = {}
    total = 0
    for key, value in annotations.items():
        causes += _qualified_name_causes("metadata.annotations", key.lower())
        if not isinstance(value, str):
            causes.append(invalid(f"metadata.annotations[{key}]", value, "must be a string"))
            continue
        total += len(key) + len(value)
    if total > _ANNOTATIONS_LIMIT:
        causes.append(too_long("metadata.annotations", _ANNOTATIONS_LIMIT))
    finalizers = meta.get("finalizers") or []
    for idx, fin in enumerate(finalizers):
        if not isinstance(fin, str):
            causes.append(invalid(f"metadata.finalizers[{idx}]", fin, "must be a string"))
            continue
        causes += _qualified_name_causes("metadata.finalizers", fin)
    controllers = 0
    for idx, ref in enumerate(meta.get("ownerReferences") or []):
        path = f"metadata.ownerReferences[{idx}]"
        if not isinstance(ref, dict):
            causes.append(invalid(path, ref, "must be an object"))
            continue
        api_version = ref.get("apiVersion", "")
        if not api_version:
            causes.append(invalid(f"{path}.apiVersion", api_version, "version must not be empty"))
        if not ref.get("kind"):
            causes.append(invalid(f"{path}.kind", ref.get("kind", ""), "kind must not be empty"))
        if not ref.get("name"):
            causes.append(invalid(f"{path}.name", ref.get("name", ""), "name must not be empty"))
        if not ref.get("uid"):
            causes.append(invalid(f"{path}.uid", ref.get("uid", ""), "uid must not be empty"))
        if ref.get("controller") is True:
            controllers += 1
    if controllers > 1:
        causes.append(
            invalid(
                "metadata.ownerReferences",
                meta.get("ownerReferences"),
                "Only one reference can have Controller set to true",
            )
        )
    return causes
