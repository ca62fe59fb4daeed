"""Collection metadata (pure): the PocketBase collections we serve, their fields and secrets.

One table per collection, one column per field. ``public`` fields are what the API returns,
filters and sorts on; ``secret`` fields (nkey seeds, the system user's creds) exist only in the
database and in the service layer. The store, the filter compiler, the HTTP app and the OpenAPI
document all derive from these definitions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from nats_tower_operator.towerserver.filter import FieldType, QuerySchema

__all__ = [
    "ACCESS",
    "ACCOUNTS",
    "COLLECTIONS",
    "OPERATORS",
    "SIGNING_KEYS",
    "USERS",
    "Collection",
    "query_schema",
]

OPERATORS = "nats_auth_operators"
ACCOUNTS = "nats_auth_accounts"
USERS = "nats_auth_users"
SIGNING_KEYS = "nats_auth_signing_keys"
ACCESS = "nats_auth_k8s_access"

_BASE: dict[str, FieldType] = {"id": "text", "created": "date", "updated": "date"}


@dataclass(frozen=True)
class Collection:
    """One served collection."""

    name: str
    collection_id: str
    public: Mapping[str, FieldType]
    secret: tuple[str, ...] = ()
    relations: Mapping[str, str] = field(default_factory=dict)
    unique_error_fields: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        """Every stored column: public fields then secrets."""
        return (*self.public, *self.secret)

    @property
    def json_fields(self) -> tuple[str, ...]:
        """Fields stored as JSON text (lists)."""
        return tuple(name for name, kind in self.public.items() if kind == "json")


COLLECTIONS: dict[str, Collection] = {
    c.name: c
    for c in (
        Collection(
            name=OPERATORS,
            collection_id="pbc_nats_operators",
            public={
                **_BASE,
                "name": "text",
                "public_key": "text",
                "url": "text",
                "jwt": "text",
                "system_account": "text",
            },
            secret=("sign_seed", "system_user_creds"),
            relations={"system_account": ACCOUNTS},
            unique_error_fields=("public_key",),
        ),
        Collection(
            name=ACCOUNTS,
            collection_id="pbc_nats_accounts",
            public={
                **_BASE,
                "operator": "text",
                "name": "text",
                "public_key": "text",
                "jwt": "text",
                "user_jwt_ttl": "number",
            },
            secret=("sign_seed",),
            relations={"operator": OPERATORS},
            unique_error_fields=("name",),
        ),
        Collection(
            name=USERS,
            collection_id="pbc_nats_users",
            public={
                **_BASE,
                "account": "text",
                "name": "text",
                "description": "text",
                "signing_key": "text",
                "public_key": "text",
                "jwt": "text",
                "seed": "text",
                "creds": "text",
            },
            relations={"account": ACCOUNTS, "signing_key": SIGNING_KEYS},
            unique_error_fields=("name",),
        ),
        Collection(
            name=SIGNING_KEYS,
            collection_id="pbc_nats_signing_keys",
            public={
                **_BASE,
                "account": "text",
                "role": "text",
                "description": "text",
                "publish": "json",
                "subscribe": "json",
                "public_key": "text",
            },
            secret=("sign_seed",),
            relations={"account": ACCOUNTS},
            unique_error_fields=("role",),
        ),
        Collection(
            name=ACCESS,
            collection_id="pbc_nats_k8s_access",
            public={**_BASE, "account": "text", "cluster": "text", "namespace": "text"},
            relations={"account": ACCOUNTS},
            unique_error_fields=("namespace",),
        ),
    )
}


def _flat_schema(c: Collection) -> QuerySchema:
    return QuerySchema(table=c.name, fields=c.public)


def query_schema(name: str) -> QuerySchema:
    """The filter/sort schema of a collection, with one level of relation fields."""
    c = COLLECTIONS[name]
    return QuerySchema(
        table=c.name,
        fields=c.public,
        relations={rel: _flat_schema(COLLECTIONS[target]) for rel, target in c.relations.items()},
    )
