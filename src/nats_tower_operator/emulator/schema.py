"""Structural OpenAPI v3 schemas of custom resources: pruning and validation, pure functions.

What the real apiextensions server does for the schema keywords operators meet:
unknown fields are pruned (unless ``x-kubernetes-preserve-unknown-fields: true`` or
``additionalProperties``), then ``type``, ``nullable``, ``required``, ``enum``, string/number
/array bounds, ``pattern`` and ``x-kubernetes-int-or-string`` are checked, producing causes
with the server's field paths and messages. ``apiVersion``, ``kind`` and ``metadata`` at the
root are never pruned.
"""

from __future__ import annotations

import re
from typing import Any

from nats_tower_operator.emulator.errors import Cause
from nats_tower_operator.emulator.jsonutil import JsonObj

__all__ = ["apply_defaults", "prune", "validate"]

_ROOT_KEEP = ("apiVersion", "kind", "metadata")


def _json_type(value: Any) -> str:  # noqa: PLR0911 - one return per JSON type
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def prune(obj: Any, schema: JsonObj | None, *, root: bool = True) -> Any:  # noqa: C901 - one branch per schema construct
    """Return ``obj`` without the fields ``schema`` does not know."""
    if schema is None:
        return obj
    if isinstance(obj, dict):
        if schema.get("x-kubernetes-embedded-resource") or root:
            keep = {k: obj[k] for k in _ROOT_KEEP if k in obj}
        else:
            keep = {}
        props = schema.get("properties")
        additional = schema.get("additionalProperties")
        preserve = schema.get("x-kubernetes-preserve-unknown-fields") is True
        out: dict[str, Any] = {}
        for key, value in obj.items():
            if key in keep:
                out[key] = value
            elif isinstance(props, dict) and key in props:
                out[key] = prune(value, props[key], root=False)
            elif isinstance(additional, dict):
                out[key] = prune(value, additional, root=False)
            elif additional is True or preserve:
                out[key] = value
        return out
    if isinstance(obj, list):
        items = schema.get("items")
        if isinstance(items, dict):
            return [prune(v, items, root=False) for v in obj]
    return obj


def _render(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (dict, list)):
        return "{...}" if isinstance(value, dict) else "[...]"
    return str(value)


def validate(obj: Any, schema: JsonObj | None) -> list[Cause]:
    """Validate a whole custom resource against its version's ``openAPIV3Schema``."""
    if schema is None:
        return []
    causes: list[Cause] = []
    _check(obj, schema, "", causes, root=True)
    return causes


def _check(  # noqa: C901, PLR0912, PLR0915 - one branch per OpenAPI v3 keyword
    value: Any, schema: JsonObj, path: str, causes: list[Cause], *, root: bool = False
) -> None:
    where = path or "<root>"

    def add(reason: str, message: str) -> None:
        causes.append(Cause(reason, message, where))

    def invalid(shown: Any, message: str) -> None:
        add("FieldValueInvalid", f"Invalid value: {shown}: {where} in body {message}")

    if value is None:
        if not schema.get("nullable") and not root:
            kind = schema.get("type", "object")
            add(
                "FieldValueTypeInvalid",
                f'Invalid value: "null": {where} in body must be of type {kind}: "null"',
            )
        return
    expected = schema.get("type")
    actual = _json_type(value)
    if schema.get("x-kubernetes-int-or-string"):
        if actual not in ("integer", "string"):
            add(
                "FieldValueTypeInvalid",
                f"Invalid value: {_render(value)}: {where} in body must be of type "
                f'integer-or-string: "{actual}"',
            )
            return
    elif expected and not (actual == expected or (expected == "number" and actual == "integer")):
        add(
            "FieldValueTypeInvalid",
            f'Invalid value: "{actual}": {where} in body must be of type {expected}: "{actual}"',
        )
        return
    enum = schema.get("enum")
    if isinstance(enum, list) and value not in enum:
        supported = ", ".join(_render(e) for e in enum)
        add(
            "FieldValueNotSupported",
            f"Unsupported value: {_render(value)}: supported values: {supported}",
        )
    if isinstance(value, str):
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            add("FieldValueTooLong", f"Too long: may not be more than {schema['maxLength']} bytes")
        if "minLength" in schema and len(value) < schema["minLength"]:
            invalid(_render(value), f"should be at least {schema['minLength']} chars long")
        pattern = schema.get("pattern")
        if isinstance(pattern, str) and re.search(pattern, value) is None:
            invalid(_render(value), f"should match '{pattern}'")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            invalid(value, f"should be greater than or equal to {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            invalid(value, f"should be less than or equal to {schema['maximum']}")
    if isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            add(
                "FieldValueTooMany",
                f"Too many: {len(value)}: must have at most {schema['maxItems']} items",
            )
        if "minItems" in schema and len(value) < schema["minItems"]:
            invalid(len(value), f"should have at least {schema['minItems']} items")
        items = schema.get("items")
        if isinstance(items, dict):
            for idx, item in enumerate(value):
                _check(item, items, f"{path}[{idx}]", causes)
    if isinstance(value, dict):
        for req in schema.get("required") or []:
            if req not in value:
                causes.append(
                    Cause("FieldValueRequired", "Required value", f"{path}.{req}" if path else req)
                )
        props = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        for key, item in value.items():
            if root and key in _ROOT_KEEP:
                continue
            child = f"{path}.{key}" if path else key
            if key in props:
                _check(item, props[key], child, causes)
            elif isinstance(additional, dict):
                _check(item, additional, child, causes)


def apply_defaults(obj: Any, schema: JsonObj | None) -> Any:  # noqa: C901 - one branch per schema construct
    """Return ``obj`` with the schema's ``default`` values filled in for absent fields."""
    if schema is None:
        return obj
    if isinstance(obj, dict):
        props = schema.get("properties")
        out = dict(obj)
        if isinstance(props, dict):
            for key, sub in props.items():
                if not isinstance(sub, dict):
                    continue
                if key not in out and "default" in sub:
                    out[key] = sub["default"]
                if key in out:
                    out[key] = apply_defaults(out[key], sub)
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            for key in list(out):
                if not isinstance(props, dict) or key not in props:
                    out[key] = apply_defaults(out[key], additional)
        return out
    if isinstance(obj, list):
        items = schema.get("items")
        if isinstance(items, dict):
            return [apply_defaults(v, items) for v in obj]
    return obj
