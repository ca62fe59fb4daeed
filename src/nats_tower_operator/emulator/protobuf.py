"""Decoding of Kubernetes protobuf request bodies for the few types kubectl sends that way.

Recent kubectl versions encode some request bodies with their typed clients as
``application/vnd.kubernetes.protobuf`` (``kubectl create namespace|secret|configmap|
serviceaccount``, ``kubectl auth can-i``). This module decodes the ``k8s\\x00`` envelope
(``runtime.Unknown``) and those messages into the JSON form the rest of the emulator uses.
Other kinds raise :class:`ProtobufError` and are answered ``415 UnsupportedMediaType``
(``kubectl create deployment|role ...`` among them: apply manifests instead). Responses are
always JSON, which every client accepts.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from nats_tower_operator.emulator.jsonutil import JsonObj

__all__ = ["MEDIA_TYPE", "ProtobufError", "decode"]

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
_MAGIC = b"k8s\x00"


class ProtobufError(ValueError):
    """The body is not a protobuf message this emulator can decode."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtobufError("varint too long")


def _fields(data: bytes) -> list[tuple[int, int, Any]]:
    """Split a message into (field number, wire type, raw value)."""
    out: list[tuple[int, int, Any]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            value = data[pos : pos + length]
            if len(value) != length:
                raise ProtobufError("truncated field")
            pos += length
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        out.append((number, wire, value))
    return out


Decoder = Callable[[Any], Any]


def _string(raw: Any) -> str:
    return bytes(raw).decode()


def _int(raw: Any) -> int:
    value = int(raw)
    return value - (1 << 64) if value >= 1 << 63 else value


def _bool(raw: Any) -> bool:
    return bool(raw)


def _b64(raw: Any) -> str:
    return base64.b64encode(bytes(raw)).decode()


def _time(raw: Any) -> str:
    fields = {n: v for n, _, v in _fields(bytes(raw))}
    seconds = _int(fields.get(1, 0))
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _message(schema: dict[int, tuple[str, str, Decoder]]) -> Decoder:
    """Build a decoder; schema: field -> (json name, "one"|"list"|"map", value decoder)."""

    def decode_message(raw: Any) -> JsonObj:
        out: JsonObj = {}
        for number, _, value in _fields(bytes(raw)):
            spec = schema.get(number)
            if spec is None:
                continue
            name, shape, decoder = spec
            if shape == "one":
                decoded = decoder(value)
                if decoded not in ("", 0, False, None, {}):
                    out[name] = decoded
            elif shape == "list":
                out.setdefault(name, []).append(decoder(value))
            else:
                entry = {n: v for n, _, v in _fields(bytes(value))}
                out.setdefault(name, {})[_string(entry.get(1, b""))] = decoder(entry.get(2, b""))
        return out

    return decode_message


_owner_reference = _message(
    {
        1: ("kind", "one", _string),
        3: ("name", "one", _string),
        4: ("uid", "one", _string),
        5: ("apiVersion", "one", _string),
        6: ("controller", "one", _bool),
        7: ("blockOwnerDeletion", "one", _bool),
    }
)
_object_meta = _message(
    {
        1: ("name", "one", _string),
        2: ("generateName", "one", _string),
        3: ("namespace", "one", _string),
        5: ("uid", "one", _string),
        6: ("resourceVersion", "one", _string),
        7: ("generation", "one", _int),
        8: ("creationTimestamp", "one", _time),
        11: ("labels", "map", _string),
        12: ("annotations", "map", _string),
        13: ("ownerReferences", "list", _owner_reference),
        14: ("finalizers", "list", _string),
    }
)
_object_reference = _message(
    {
        1: ("kind", "one", _string),
        2: ("namespace", "one", _string),
        3: ("name", "one", _string),
        4: ("uid", "one", _string),
        5: ("apiVersion", "one", _string),
        6: ("resourceVersion", "one", _string),
        7: ("fieldPath", "one", _string),
    }
)
_local_reference = _message({1: ("name", "one", _string)})
_resource_attributes = _message(
    {
        1: ("namespace", "one", _string),
        2: ("verb", "one", _string),
        3: ("group", "one", _string),
        4: ("version", "one", _string),
        5: ("resource", "one", _string),
        6: ("subresource", "one", _string),
        7: ("name", "one", _string),
    }
)
_non_resource_attributes = _message({1: ("path", "one", _string), 2: ("verb", "one", _string)})

_KINDS: dict[tuple[str, str], Decoder] = {
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): _message(
        {
            1: ("metadata", "one", _object_meta),
            2: (
                "spec",
                "one",
                _message(
                    {
                        1: ("resourceAttributes", "one", _resource_attributes),
                        2: ("nonResourceAttributes", "one", _non_resource_attributes),
                    }
                ),
            ),
        }
    ),
    ("v1", "Namespace"): _message(
        {
            1: ("metadata", "one", _object_meta),
            2: ("spec", "one", _message({1: ("finalizers", "list", _string)})),
        }
    ),
    ("v1", "Secret"): _message(
        {
            1: ("metadata", "one", _object_meta),
            2: ("data", "map", _b64),
            3: ("type", "one", _string),
            4: ("stringData", "map", _string),
            5: ("immutable", "one", _bool),
        }
    ),
    ("v1", "ConfigMap"): _message(
        {
            1: ("metadata", "one", _object_meta),
            2: ("data", "map", _string),
            3: ("binaryData", "map", _b64),
            4: ("immutable", "one", _bool),
        }
    ),
    ("v1", "ServiceAccount"): _message(
        {
            1: ("metadata", "one", _object_meta),
            2: ("secrets", "list", _object_reference),
            3: ("imagePullSecrets", "list", _local_reference),
            4: ("automountServiceAccountToken", "one", _bool),
        }
    ),
}


def decode(body: bytes) -> JsonObj:
    """Decode a ``k8s\\x00``-prefixed protobuf body into a JSON object."""
    if not body.startswith(_MAGIC):
        raise ProtobufError("missing the k8s protobuf envelope")
    envelope = {n: v for n, _, v in _fields(body[len(_MAGIC) :])}
    type_meta = {n: v for n, _, v in _fields(bytes(envelope.get(1, b"")))}
    api_version = _string(type_meta.get(1, b""))
    kind = _string(type_meta.get(2, b""))
    decoder = _KINDS.get((api_version, kind))
    if decoder is None:
        raise ProtobufError(f"protobuf encoding of {api_version} {kind} is not supported")
    obj: JsonObj = {"apiVersion": api_version, "kind": kind}
    obj.update(decoder(envelope.get(2, b"")))
    return obj
