"""The three PATCH formats of the Kubernetes API, as pure functions over JSON values.

* :func:`json_merge_patch` — RFC 7386 (``application/merge-patch+json``).
* :func:`json_patch` — RFC 6902 (``application/json-patch+json``).
* :func:`strategic_merge_patch` — ``application/strategic-merge-patch+json`` for the fields
  we use: lists are merged by key where the built-in type says so (``metadata.finalizers``
  as a set, ``ownerReferences`` by ``uid``, ``containers`` by ``name`` ...), other lists are
  replaced, and the directives ``$patch: replace|delete``, ``$retainKeys``,
  ``$setElementOrder/<field>`` and ``$deleteFromPrimitiveList/<field>`` are honoured.

No function mutates its inputs; every result is a fresh value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nats_tower_operator.emulator.jsonutil import clone

__all__ = [
    "ListStrategy",
    "PatchError",
    "PatchSchema",
    "json_merge_patch",
    "json_patch",
    "strategic_merge_patch",
]


class PatchError(ValueError):
    """A patch document is malformed or cannot be applied to the object."""


def json_merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 JSON merge patch and return the new value."""
    if not isinstance(patch, dict):
        return clone(patch)
    result: dict[str, Any] = clone(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = json_merge_patch(result.get(key), value)
    return result


# --- RFC 6902 -----------------------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}: must start with '/'")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(container: list[Any], token: str, *, for_add: bool) -> int:
    if token == "-" and for_add:
        return len(container)
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise PatchError(f"invalid array index {token!r}")
    idx = int(token)
    limit = len(container) if for_add else len(container) - 1
    if idx > limit:
        raise PatchError(f"array index {idx} out of bounds")
    return idx


def _parent(doc: Any, tokens: list[str], path: str) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f"doc is missing path: {path!r}")
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, for_add=False)]
        else:
            raise PatchError(f"doc is missing path: {path!r}")
    return node


def _get(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return doc
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"doc is missing key: {path!r}")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, for_add=False)]
    raise PatchError(f"doc is missing path: {path!r}")


def _add(doc: Any, path: str, value: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, for_add=True), value)
    else:
        raise PatchError(f"add operation does not apply: doc is missing path: {path!r}")
    return doc


def _remove(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"remove operation does not apply: doc is missing key: {path!r}")
        del parent[last]
    elif isinstance(parent, list):
        del parent[_index(parent, last, for_add=False)]
    else:
        raise PatchError(f"remove operation does not apply: doc is missing path: {path!r}")
    return doc


def json_patch(target: Any, operations: Any) -> Any:  # noqa: C901, PLR0912 - one branch per RFC 6902 operation
    """Apply an RFC 6902 JSON patch (a list of operations) and return the new value."""
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc = clone(target)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"invalid JSON patch operation: {op!r}")
        kind, path = op["op"], op["path"]
        if not isinstance(path, str):
            raise PatchError("operation path must be a string")
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"{kind} operation requires a value")
        if kind == "add":
            doc = _add(doc, path, clone(op["value"]))
        elif kind == "remove":
            doc = _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)
            if _pointer(path):
                doc = _remove(doc, path)
            doc = _add(doc, path, clone(op["value"]))
        elif kind in ("move", "copy"):
            source = op.get("from")
            if not isinstance(source, str):
                raise PatchError(f"{kind} operation requires 'from'")
            value = clone(_get(doc, source))
            if kind == "move":
                doc = _remove(doc, source)
            doc = _add(doc, path, value)
        elif kind == "test":
            if _get(doc, path) != op["value"]:
                raise PatchError(f"testing value {path} failed")
        else:
            raise PatchError(f"unexpected operation {kind!r}")
    return doc


# --- strategic merge patch ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListStrategy:
    """How a list field merges: by ``merge_key`` (maps) or as a set (``merge_key=None``)."""

    merge_key: str | None = None


PatchSchema = Mapping[str, ListStrategy]
"""List strategies by dotted field path, list items not adding a segment
(``"spec.containers"``, ``"spec.containers.ports"``); lists not named are replaced."""

_SET_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"


def strategic_merge_patch(original: Any, patch: Any, schema: PatchSchema) -> Any:
    """Apply a strategic merge patch to ``original`` using ``schema`` for list fields."""
    if not isinstance(patch, dict):
        raise PatchError("a strategic merge patch must be a JSON object")
    base = original if isinstance(original, dict) else {}
    result = _merge_map(base, patch, "", schema)
    return {} if result is None else result


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _strip(value: Any) -> Any:
    """Remove directives from a value that is inserted as a whole."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not k.startswith("$") and v is not None}
    if isinstance(value, list):
        return [_strip(v) for v in value if not (isinstance(v, dict) and "$patch" in v)]
    return value


def _merge_map(  # noqa: C901, PLR0912 - one branch per strategic-merge directive
    original: Mapping[str, Any], patch: Mapping[str, Any], path: str, schema: PatchSchema
) -> dict[str, Any] | None:
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    if directive == "replace":
        return _strip({k: v for k, v in patch.items() if k != "$patch"})  # type: ignore[no-any-return]
    if directive is not None:
        raise PatchError(f"unknown patch directive {directive!r}")
    result: dict[str, Any] = clone(dict(original))
    orders: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key.startswith(_SET_ORDER):
            if not isinstance(value, list):
                raise PatchError(f"{key} must be a list")
            orders[key[len(_SET_ORDER) :]] = value
            continue
        if key.startswith(_DELETE_PRIMITIVE):
            field = key[len(_DELETE_PRIMITIVE) :]
            if not isinstance(value, list):
                raise PatchError(f"{key} must be a list")
            current = result.get(field)
            if isinstance(current, list):
                result[field] = [v for v in current if v not in value]
            continue
        if key == "$retainKeys":
            continue
        if key.startswith("$"):
            raise PatchError(f"unknown patch directive {key!r}")
        if value is None:
            result.pop(key, None)
            continue
        current = result.get(key)
        child = _join(path, key)
        if isinstance(value, dict):
            merged = _merge_map(current if isinstance(current, dict) else {}, value, child, schema)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _merge_list(
                current if isinstance(current, list) else [], value, child, schema
            )
        else:
            result[key] = value
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        keep = set(retain)
        result = {k: v for k, v in result.items() if k in keep or k not in original}
    for field, order in orders.items():
        items = result.get(field)
        if isinstance(items, list):
            result[field] = _apply_order(items, order, schema.get(_join(path, field)))
    return result


def _merge_list(original: list[Any], patch: list[Any], path: str, schema: PatchSchema) -> list[Any]:  # noqa: C901, PLR0912 - one branch per list merge strategy
    strategy = schema.get(path)
    if strategy is None:
        return _strip(patch)  # type: ignore[no-any-return]
    if any(isinstance(v, dict) and v.get("$patch") == "replace" for v in patch):
        return _strip([v for v in patch if not (isinstance(v, dict) and "$patch" in v)])  # type: ignore[no-any-return]
    key = strategy.merge_key
    if key is None:
        result = clone(original)
        for item in patch:
            if item not in result:
                result.append(clone(item))
        return result
    result = clone(original)
    for item in patch:
        if not isinstance(item, dict):
            raise PatchError(f"{path}: list items must be objects with merge key {key!r}")
        if key not in item:
            raise PatchError(f"{path}: map in list does not contain the merge key {key!r}")
        positions = [
            i for i, cur in enumerate(result) if isinstance(cur, dict) and cur.get(key) == item[key]
        ]
        if item.get("$patch") == "delete":
            result = [cur for i, cur in enumerate(result) if i not in positions]
            continue
        if positions:
            merged = _merge_map(result[positions[0]], item, path, schema)
            if merged is None:
                result.pop(positions[0])
            else:
                result[positions[0]] = merged
        else:
            merged = _merge_map({}, item, path, schema)
            if merged is not None:
                result.append(merged)
    return result


def _apply_order(items: list[Any], order: list[Any], strategy: ListStrategy | None) -> list[Any]:
    key = strategy.merge_key if strategy else None

    def ident(value: Any) -> Any:
        if key is not None and isinstance(value, dict):
            return ("k", repr(value.get(key)))
        return ("v", repr(value))

    rank = {ident(v): i for i, v in enumerate(order)}
    ordered = sorted((v for v in items if ident(v) in rank), key=lambda v: rank[ident(v)])
    rest = [v for v in items if ident(v) not in rank]
    return ordered + rest
