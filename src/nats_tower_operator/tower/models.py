"""Typed, immutable views of Tower records, parsed strictly from PocketBase JSON.

Each ``from_record`` checks the fields the operator relies on and raises
:class:`~nats_tower_operator.tower.errors.TowerBadResponse` naming the collection and
field (never a value) when one is missing or of the wrong type. Secret fields
(``creds``, ``jwt``) are kept out of ``repr``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from .errors import TowerBadResponse

__all__ = [
    "ACCESS",
    "ACCOUNTS",
    "INSTALLATIONS",
    "ROLES",
    "USERS",
    "Account",
    "Installation",
    "K8sAccess",
    "Role",
    "User",
    "UserSummary",
    "is_record_id",
    "jwt_claims",
    "split_urls",
]

INSTALLATIONS = "nats_auth_operators"
ACCOUNTS = "nats_auth_accounts"
USERS = "nats_auth_users"
ROLES = "nats_auth_signing_keys"
ACCESS = "nats_auth_k8s_access"

#: PocketBase record ids: 15 characters of ``[a-z0-9]``.
_RECORD_ID = re.compile(r"[a-z0-9]{15}")


def is_record_id(value: object) -> bool:
    """Whether ``value`` is a well-formed PocketBase record id (safe to put in a URL path)."""
    return isinstance(value, str) and _RECORD_ID.fullmatch(value) is not None


def jwt_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, read without checking the signature (Tower and nats-server do).

    An unreadable token gives ``{}``.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def _bad(collection: str, name: str, problem: str) -> TowerBadResponse:
    return TowerBadResponse(f"{collection} record: field {name!r} {problem}")


def _record(collection: str, record: object) -> Mapping[str, Any]:
    if not isinstance(record, Mapping):
        raise TowerBadResponse(f"{collection} record is not a JSON object")
    return record


def _str(collection: str, record: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    """A string field; non-empty when ``required``, ``""`` when optional and absent."""
    value = record.get(name)
    if value is None:
        if required:
            raise _bad(collection, name, "is missing")
        return ""
    if not isinstance(value, str):
        raise _bad(collection, name, f"must be a string, got {type(value).__name__}")
    if required and not value:
        raise _bad(collection, name, "is empty")
    return value


def _id(collection: str, record: Mapping[str, Any], name: str) -> str:
    """A required record id or relation."""
    value = _str(collection, record, name)
    if not is_record_id(value):
        raise _bad(collection, name, "is not a record id")
    return value


def _relation(collection: str, record: Mapping[str, Any], name: str) -> str | None:
    """An optional single relation: PocketBase sends ``""`` (or nothing) when unset."""
    value = _str(collection, record, name, required=False)
    if value and not is_record_id(value):
        raise _bad(collection, name, "is not a record id")
    return value or None


def _str_list(collection: str, record: Mapping[str, Any], name: str) -> tuple[str, ...]:
    """A JSON list of strings; ``null`` or absent means empty."""
    value = record.get(name)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(collection, name, "must be a list of strings")
    return tuple(value)


def split_urls(text: str) -> tuple[str, ...]:
    """Split a comma separated URL list, trimming blanks and dropping empty entries."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


@dataclass(frozen=True, slots=True)
class Installation:
    """A Tower operator record: one NATS installation, identified by its public key."""

    id: str
    public_key: str
    urls: tuple[str, ...]
    description: str = ""

    #: The fields to request (``fields=``) so server-side secrets are never fetched.
    FIELDS: ClassVar[str] = "id,public_key,url,description"

    @classmethod
    def from_record(cls, record: object) -> Self:
        """Parse a ``nats_auth_operators`` record."""
        r = _record(INSTALLATIONS, record)
        return cls(
            id=_id(INSTALLATIONS, r, "id"),
            public_key=_str(INSTALLATIONS, r, "public_key"),
            urls=split_urls(_str(INSTALLATIONS, r, "url", required=False)),
            description=_str(INSTALLATIONS, r, "description", required=False),
        )


@dataclass(frozen=True, slots=True)
class Account:
    """A Tower account of one installation."""

    id: str
    installation_id: str
    name: str
    public_key: str

    FIELDS: ClassVar[str] = "id,operator,name,public_key"

    @classmethod
    def from_record(cls, record: object) -> Self:
        """Parse a ``nats_auth_accounts`` record."""
        r = _record(ACCOUNTS, record)
        return cls(
            id=_id(ACCOUNTS, r, "id"),
            installation_id=_id(ACCOUNTS, r, "operator"),
            name=_str(ACCOUNTS, r, "name"),
            public_key=_str(ACCOUNTS, r, "public_key"),
        )


@dataclass(frozen=True, slots=True)
class Role:
    """A scoped signing key of an account with its publish/subscribe permissions."""

    id: str
    account_id: str
    role: str
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    public_key: str

    FIELDS: ClassVar[str] = "id,account,role,publish,subscribe,public_key"

    @classmethod
    def from_record(cls, record: object) -> Self:
        """Parse a ``nats_auth_signing_keys`` record."""
        r = _record(ROLES, record)
        return cls(
            id=_id(ROLES, r, "id"),
            account_id=_id(ROLES, r, "account"),
            role=_str(ROLES, r, "role"),
            publish=_str_list(ROLES, r, "publish"),
            subscribe=_str_list(ROLES, r, "subscribe"),
            public_key=_str(ROLES, r, "public_key"),
        )


@dataclass(frozen=True, slots=True)
class User:
    """A Tower user with its credentials (``creds`` and ``jwt`` are hidden from repr)."""

    id: str
    account_id: str
    name: str
    description: str
    public_key: str
    signing_key_id: str | None
    creds: str = field(repr=False)
    jwt: str = field(repr=False)

    FIELDS: ClassVar[str] = "id,account,name,description,signing_key,public_key,creds,jwt"

    @classmethod
    def from_record(cls, record: object) -> Self:
        """Parse a ``nats_auth_users`` record (``creds`` and ``jwt`` are required)."""
        r = _record(USERS, record)
        return cls(
            id=_id(USERS, r, "id"),
            account_id=_id(USERS, r, "account"),
            name=_str(USERS, r, "name"),
            description=_str(USERS, r, "description", required=False),
            public_key=_str(USERS, r, "public_key"),
            signing_key_id=_relation(USERS, r, "signing_key"),
            creds=_str(USERS, r, "creds"),
            jwt=_str(USERS, r, "jwt"),
        )


@dataclass(frozen=True, slots=True)
class UserSummary:
    """A Tower user without its secrets: who it is and when its JWT was issued.

    Tower's user records have no ``created`` field; the JWT's ``iat`` says when the user
    was made (Tower never re-issues a stored user's JWT).
    """

    id: str
    account_id: str
    name: str
    issued_at: float | None

    FIELDS: ClassVar[str] = "id,account,name,jwt"

    @classmethod
    def from_record(cls, record: object) -> Self:
        """Parse a ``nats_auth_users`` record listed with :attr:`FIELDS`."""
        r = _record(USERS, record)
        iat = jwt_claims(_str(USERS, r, "jwt", required=False)).get("iat")
        return cls(
            id=_id(USERS, r, "id"),
            account_id=_id(USERS, r, "account"),
            name=_str(USERS, r, "name"),
            issued_at=(
                float(iat)
                if isinstance(iat, int | float) and not isinstance(iat, bool) and iat > 0
                else None
            ),
        )


@dataclass(frozen=True, slots=True)
class K8sAccess:
    """A link allowing one namespace of one cluster to use an account."""

    id: str
    account_id: str
    cluster: str
    namespace: str

    FIELDS: ClassVar[str] = "id,account,cluster,namespace"

    @classmethod
    def from_record(cls, record: object) -> Self:
        """Parse a ``nats_auth_k8s_access`` record."""
        r = _record(ACCESS, record)
        return cls(
            id=_id(ACCESS, r, "id"),
            account_id=_id(ACCESS, r, "account"),
            cluster=_str(ACCESS, r, "cluster"),
            namespace=_str(ACCESS, r, "namespace"),
        )
