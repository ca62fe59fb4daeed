"""Typed, immutable views of Tower records, parsed strictly from PocketBase JSON.

Each ``from_record`` checks the fields the operator relies on and raises
:class:`~nats_tower_operator.tower.errors.TowerBadResponse` naming the collection and
field (never a value) when one is missing or of the wrong type. Secret fields
(``creds``, ``jwt``) are kept out of ``repr``.
"""

from __future__ import annotations

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
    "split_urls",
]

INSTALLATIONS = "nats_auth_operators"
ACCOUNTS = "nats_auth_accounts"
USERS = "nats_auth_users"
ROLES = "nats_auth_signing_keys"
ACCESS = "nats_auth_k8s_access"


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


def _relation(collection: str, record: Mapping[str, Any], name: str) -> str | None:
    """An optional single relation: PocketBase sends ``""`` (or nothing) when unset."""
    value = _str(collection, record, name, required=False)
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
    name: str = ""

    #: The fields to request (``fields=``) so server-side secrets are never fetched.
    FIELDS: ClassVar[str] = "id,public_key,url,name"

    @classmethod
    def from_record(cls, record: object) -> Self:
        """Parse a ``nats_auth_operators`` record."""
        r = _record(INSTALLATIONS, record)
        return cls(
            id=_str(INSTALLATIONS, r, "id"),
            public_key=_str(INSTALLATIONS, r, "public_key"),
            urls=split_urls(_str(INSTALLATIONS, r, "url", required=False)),
            name=_str(INSTALLATIONS, r, "name", required=False),
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
            id=_str(ACCOUNTS, r, "id"),
            installation_id=_str(ACCOUNTS, r, "operator"),
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
            id=_str(ROLES, r, "id"),
            account_id=_str(ROLES, r, "account"),
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
    created: str = ""

    FIELDS: ClassVar[str] = "id,account,name,description,signing_key,public_key,creds,jwt,created"

    @classmethod
    def from_record(cls, record: object) -> Self:
        """Parse a ``nats_auth_users`` record (``creds`` and ``jwt`` are required)."""
        r = _record(USERS, record)
        return cls(
            id=_str(USERS, r, "id"),
            account_id=_str(USERS, r, "account"),
            name=_str(USERS, r, "name"),
            description=_str(USERS, r, "description", required=False),
            public_key=_str(USERS, r, "public_key"),
            signing_key_id=_relation(USERS, r, "signing_key"),
            creds=_str(USERS, r, "creds"),
            jwt=_str(USERS, r, "jwt"),
            created=_str(USERS, r, "created", required=False),
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
            id=_str(ACCESS, r, "id"),
            account_id=_str(ACCESS, r, "account"),
            cluster=_str(ACCESS, r, "cluster"),
            namespace=_str(ACCESS, r, "namespace"),
        )
