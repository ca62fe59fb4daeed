"""Pure functions over managed Secrets: render one, read what we stored on it, check it.

The Secret itself is the durable record of what the operator issued (Tower user id,
installation, account, role, generation, expiry, a hash of the content), so decisions
after a restart are made from stored state, never from memory.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from nats_tower_operator.reconcilers.labels import (
    ACCOUNT_ANNOTATION,
    ACCOUNT_NAME_KEY,
    CLUSTER_ANNOTATION,
    CONTENT_HASH_ANNOTATION,
    CREDENTIAL_TYPE_LABEL,
    CREDS_KEY,
    EXPIRES_AT_ANNOTATION,
    GENERATION_ANNOTATION,
    INSTALLATION_ANNOTATION,
    ISSUED_AT_ANNOTATION,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    MANAGED_SECRET_LABEL_VALUE,
    ORPHANED_SINCE_ANNOTATION,
    PREVIOUS_USER_ANNOTATION,
    ROLE_ANNOTATION,
    SECRET_ANNOTATIONS,
    SECRET_LABEL,
    SECRET_LABELS,
    URLS_KEY,
    USER_ID_ANNOTATION,
    USER_NAME_ANNOTATION,
    USER_PUBLIC_KEY_ANNOTATION,
)
from nats_tower_operator.tower import is_record_id

__all__ = [
    "Issued",
    "Ownership",
    "SecretState",
    "belongs_to",
    "content_hash",
    "creds_expiry",
    "format_time",
    "is_managed",
    "ownership",
    "parse_time",
    "read_secret",
    "render_secret",
    "summarize_secret",
    "user_name",
]

_JWT_BLOCK = re.compile(
    r"-----BEGIN NATS USER JWT-----\s*([A-Za-z0-9_\-.=]+)\s*-+END NATS USER JWT-+"
)


@dataclass(frozen=True, slots=True)
class Issued:
    """What Tower gave us for one Secret (``creds`` never appears in repr)."""

    user_id: str
    user_name: str
    user_public_key: str
    urls: tuple[str, ...]
    account_name: str
    installation: str
    role: str | None
    generation: int
    creds: str = ""

    def __repr__(self) -> str:
        return (
            f"Issued(user_id={self.user_id!r}, account={self.account_name!r}, "
            f"gen={self.generation})"
        )


@dataclass(frozen=True, slots=True)
class Ownership:
    """What the operator recorded on a Secret it created."""

    user_id: str
    user_name: str
    installation: str
    account: str
    role: str | None
    generation: int
    content_hash: str
    expires_at: float | None
    orphaned_since: float | None


@dataclass(frozen=True, slots=True)
class SecretState:
    """A Secret of the labelled name as the operator sees it (read by :func:`read_secret`).

    ``summary`` is the cache's copy (metadata and a digest, never credentials), the base
    for a replace or a patch.
    """

    managed: bool
    ownership: Ownership | None
    has_creds: bool
    intact: bool
    previous_user: str
    urls: str
    issued_at: float | None
    summary: Mapping[str, Any] = field(repr=False)

    @property
    def metadata(self) -> Mapping[str, Any]:
        """The Secret's metadata (name, uid, resourceVersion, labels, annotations)."""
        meta = self.summary.get("metadata")
        return meta if isinstance(meta, Mapping) else {}


def read_secret(summary: Mapping[str, Any]) -> SecretState:
    """What a Secret (a :func:`summarize_secret` copy) holds, for the reconciler's plan."""
    own = ownership(summary)
    keys = set(summary.get("keys") or ())
    annotations = (summary.get("metadata") or {}).get("annotations") or {}
    previous = annotations.get(PREVIOUS_USER_ANNOTATION, "")
    return SecretState(
        managed=is_managed(summary),
        ownership=own,
        has_creds=CREDS_KEY in keys,
        intact=own is not None
        and summary.get("digest") == own.content_hash
        and {CREDS_KEY, URLS_KEY, ACCOUNT_NAME_KEY} <= keys,
        previous_user=previous if isinstance(previous, str) else "",
        urls=str(summary.get("urls", "")),
        issued_at=parse_time(annotations.get(ISSUED_AT_ANNOTATION)),
        summary=summary,
    )


def user_name(cluster_id: str, namespace: str, secret: str, generation: int) -> str:
    """The Tower user name for a Secret: unique per (cluster, namespace, secret).

    Namespace and Secret names cannot contain '/', so the name cannot collide across
    namespaces. Re-issues (role change, renewal) get a generation suffix so the old user
    can be revoked only after the new one is in place.
    """
    base = f"{cluster_id}/{namespace}/{secret}"
    return base if generation <= 1 else f"{base}#{generation}"


def belongs_to(name: str, cluster_id: str, namespace: str, secret: str) -> bool:
    """Whether a Tower user name is one this operator gives the Secret ``namespace/secret``.

    Only the operator names users under its cluster ID, so this is how a user id read from
    an annotation (which a tenant can write) is proven to be this Secret's own user.
    """
    base = f"{cluster_id}/{namespace}/{secret}"
    if name == base:
        return True
    head, sep, generation = name.rpartition("#")
    return head == base and sep == "#" and generation.isdigit() and int(generation) >= 2


def format_time(ts: float) -> str:
    """RFC 3339 UTC with seconds, as Kubernetes writes times."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> float | None:
    """Parse :func:`format_time` output (or any ISO 8601 time); None when absent or bad."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def content_hash(data: Mapping[str, str]) -> str:
    """A stable hash of a Secret's ``data`` (base64 values) for tamper detection."""
    digest = hashlib.sha256()
    for key in sorted(data):
        digest.update(key.encode() + b"\0" + str(data[key]).encode() + b"\0")
    return "sha256:" + digest.hexdigest()[:32]


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def creds_expiry(creds: str) -> float | None:
    """The ``exp`` of the user JWT inside a creds file; None if it never expires.

    Only reads the claims (no signature check: Tower and nats-server do that).
    """
    match = _JWT_BLOCK.search(creds)
    if not match:
        return None
    parts = match.group(1).split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) and exp > 0 else None


def render_secret(
    *,
    namespace: str,
    name: str,
    issued: Issued,
    cluster_id: str,
    now: float,
    base: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The full Secret body for ``issued``; ``base`` keeps metadata of an existing Secret."""
    data = {
        CREDS_KEY: _b64(issued.creds),
        URLS_KEY: _b64(",".join(issued.urls)),
        ACCOUNT_NAME_KEY: _b64(issued.account_name),
    }
    meta: dict[str, Any] = dict(base.get("metadata", {})) if base else {}
    labels = dict(meta.get("labels") or {})
    labels.update(
        {
            SECRET_LABEL: MANAGED_SECRET_LABEL_VALUE,
            CREDENTIAL_TYPE_LABEL: "user",
            MANAGED_BY_LABEL: MANAGED_BY,
        }
    )
    annotations = {
        k: v
        for k, v in dict(meta.get("annotations") or {}).items()
        if k not in {ORPHANED_SINCE_ANNOTATION, ROLE_ANNOTATION, EXPIRES_AT_ANNOTATION}
    }
    annotations.update(
        {
            USER_ID_ANNOTATION: issued.user_id,
            USER_NAME_ANNOTATION: issued.user_name,
            USER_PUBLIC_KEY_ANNOTATION: issued.user_public_key,
            INSTALLATION_ANNOTATION: issued.installation,
            ACCOUNT_ANNOTATION: issued.account_name,
            CLUSTER_ANNOTATION: cluster_id,
            GENERATION_ANNOTATION: str(issued.generation),
            ISSUED_AT_ANNOTATION: format_time(now),
            CONTENT_HASH_ANNOTATION: content_hash(data),
        }
    )
    if issued.role:
        annotations[ROLE_ANNOTATION] = issued.role
    expiry = creds_expiry(issued.creds)
    if expiry is not None:
        annotations[EXPIRES_AT_ANNOTATION] = format_time(expiry)
    meta.update({"name": name, "namespace": namespace, "labels": labels})
    meta["annotations"] = annotations
    for volatile in ("managedFields", "creationTimestamp", "uid", "generation", "selfLink"):
        meta.pop(volatile, None)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta,
        "type": (base or {}).get("type", "Opaque"),
        "data": data,
    }


def is_managed(secret: Mapping[str, Any]) -> bool:
    """True when the Secret carries the operator's label (created by us or by upstream)."""
    labels = (secret.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(SECRET_LABEL) == MANAGED_SECRET_LABEL_VALUE)


def ownership(secret: Mapping[str, Any]) -> Ownership | None:
    """What we recorded on the Secret, or None if it is not one we issued."""
    if not is_managed(secret):
        return None
    ann = (secret.get("metadata") or {}).get("annotations") or {}
    user_id = ann.get(USER_ID_ANNOTATION, "")
    if not is_record_id(user_id):
        return None
    try:
        generation = max(1, int(ann.get(GENERATION_ANNOTATION, "1")))
    except ValueError:
        generation = 1
    return Ownership(
        user_id=user_id,
        user_name=ann.get(USER_NAME_ANNOTATION, ""),
        installation=ann.get(INSTALLATION_ANNOTATION, ""),
        account=ann.get(ACCOUNT_ANNOTATION, ""),
        role=ann.get(ROLE_ANNOTATION) or None,
        generation=generation,
        content_hash=ann.get(CONTENT_HASH_ANNOTATION, ""),
        expires_at=parse_time(ann.get(EXPIRES_AT_ANNOTATION)),
        orphaned_since=parse_time(ann.get(ORPHANED_SINCE_ANNOTATION)),
    )


_REPEATED = frozenset(
    {
        SECRET_LABEL,
        CREDENTIAL_TYPE_LABEL,
        MANAGED_BY_LABEL,
        INSTALLATION_ANNOTATION,
        ACCOUNT_ANNOTATION,
        CLUSTER_ANNOTATION,
        ROLE_ANNOTATION,
        GENERATION_ANNOTATION,
    }
)


#: The metadata a Secret summary keeps besides our labels and annotations.
_IDENTITY = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
)
#: The longest value of one of our annotations kept in the cache (ours are all shorter).
MAX_ANNOTATION_VALUE = 1024
#: The longest URLS / ACCOUNT_NAME value kept in the cache.
MAX_KEPT_VALUE = 4096


def _kept(values: object, known: frozenset[str]) -> dict[str, str]:
    """The ``known`` labels/annotations of a Secret, each at most MAX_ANNOTATION_VALUE long.

    Anything else on the Secret (other labels, other nats-tower.com/ keys, big values) is
    never cached: a write reads the live Secret for it. Our keys and many values
    (installation, account, cluster) repeat across thousands of Secrets: interned.
    """
    if not isinstance(values, Mapping):
        return {}
    kept: dict[str, str] = {}
    for key in known:
        value = values.get(key)
        if isinstance(value, str) and len(value) <= MAX_ANNOTATION_VALUE:
            kept[sys.intern(key)] = sys.intern(value) if key in _REPEATED else value
    return kept


def summarize_secret(secret: Mapping[str, Any]) -> dict[str, Any]:
    """A small copy of a Secret for the informer cache: metadata plus a content digest.

    The cache never holds credentials nor anything big: identity, our labels and
    annotations (bounded), a digest of the data, the data's key names and our two short
    values. At most a few KiB per Secret whatever the Secret holds.
    """
    data = secret.get("data") or {}
    raw = secret.get("metadata")
    raw = raw if isinstance(raw, Mapping) else {}
    meta: dict[str, Any] = {k: raw[k] for k in _IDENTITY if k in raw}
    meta["labels"] = _kept(raw.get("labels"), SECRET_LABELS)
    meta["annotations"] = _kept(raw.get("annotations"), SECRET_ANNOTATIONS)
    if not isinstance(data, dict):
        data = {}
    return {
        "metadata": meta,
        "type": secret.get("type", "Opaque"),
        "digest": content_hash(data),
        "keys": tuple(sorted(sys.intern(str(k)) for k, v in data.items() if v)[:32]),
        "urls": _decode(data.get(URLS_KEY), MAX_KEPT_VALUE),
        "account_name": _decode(data.get(ACCOUNT_NAME_KEY), MAX_KEPT_VALUE),
    }


def _decode(value: object, limit: int) -> str:
    if not isinstance(value, str) or len(value) > limit * 4 // 3 + 4:
        return ""
    try:
        return base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return ""
