"""Use cases of the Tower-compatible server, each one store transaction.

The service validates input, issues keys and JWTs (through :mod:`.jwt`), and keeps every
account JWT consistent with its roles and revocations in the same transaction that changed
them. After a commit it tells its listeners (see :class:`AccountListener`) which accounts
changed, so that nats-server can be updated. Records leave the service only in their public
form: nkey seeds of operators, accounts and roles never do.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from nats_tower_operator.towerserver import jwt
from nats_tower_operator.towerserver.errors import BadRequest, NotFound, ValidationFailed
from nats_tower_operator.towerserver.filter import (
    FilterError,
    SortError,
    compile_filter,
    compile_sort,
)
from nats_tower_operator.towerserver.model import (
    ACCESS,
    ACCOUNTS,
    COLLECTIONS,
    OPERATORS,
    SIGNING_KEYS,
    USERS,
    query_schema,
)
from nats_tower_operator.towerserver.store import (
    ForeignKeyViolation,
    Row,
    Store,
    Tx,
    UniqueViolation,
    new_record_id,
)
from nats_tower_operator.towerserver.validation import Form

__all__ = [
    "AccountListener",
    "ConfigInputs",
    "ListQuery",
    "Page",
    "PushTarget",
    "Record",
    "TowerService",
]

log = logging.getLogger(__name__)

Record = dict[str, Any]

SYSTEM_ACCOUNT_NAME = "SYS"
MAX_USER_TTL = 10 * 365 * 24 * 3600
DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 500
CREATE_FAILED = "Failed to create record."
UPDATE_FAILED = "Failed to update record."
DELETE_REFERENCED = (
    "Failed to delete record. Make sure that the record is not part of a required "
    "relation reference."
)
NOT_UNIQUE = ("validation_not_unique", "Value must be unique.")
MISSING_REL = (
    "validation_missing_rel_records",
    "Failed to find all relation records with the provided ids.",
)


@dataclass(frozen=True)
class ListQuery:
    """The list parameters PocketBase understands."""

    filter: str = ""
    sort: str = ""
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE
    skip_total: bool = False


@dataclass(frozen=True)
class Page:
    """One page of public records, in PocketBase's list shape."""

    page: int
    per_page: int
    total_items: int
    total_pages: int
    items: list[Record]

    def as_json(self) -> dict[str, Any]:
        """PocketBase's JSON list body."""
        return {
            "page": self.page,
            "perPage": self.per_page,
            "totalItems": self.total_items,
            "totalPages": self.total_pages,
            "items": self.items,
        }


@dataclass(frozen=True, repr=False)
class PushTarget:
    """What is needed to push one account JWT to an installation's nats-server."""

    operator_id: str
    urls: tuple[str, ...]
    system_user_creds: str
    account_public_key: str
    account_jwt: str

    def __repr__(self) -> str:
        return f"PushTarget(account_public_key={self.account_public_key!r}, urls={self.urls!r})"


@dataclass(frozen=True, repr=False)
class ConfigInputs:
    """The JWTs a nats-server of one installation needs in its configuration."""

    operator_id: str
    operator_public_key: str
    operator_jwt: str
    system_account: str
    account_jwts: dict[str, str]

    def __repr__(self) -> str:
        return f"ConfigInputs(operator_public_key={self.operator_public_key!r})"


class AccountListener(Protocol):
    """Told after a commit which account JWTs changed (for pushes to nats-server)."""

    async def accounts_changed(self, account_ids: Sequence[str]) -> None:
        """The given accounts have new JWTs in the store."""

    async def account_removed(self, target: PushTarget) -> None:
        """An account was deleted; ``target`` carries its final, disabled JWT."""


@dataclass
class _Outcome:
    record: Record | None = None
    changed_accounts: tuple[str, ...] = ()
    removed: tuple[PushTarget, ...] = ()


def _public(table: str, row: Row) -> Record:
    collection = COLLECTIONS[table]
    out: Record = {"collectionId": collection.collection_id, "collectionName": table}
    for name in collection.public:
        out[name] = row.get(name)
    return out


def _split_urls(url: str) -> tuple[str, ...]:
    return tuple(u.strip() for u in url.split(",") if u.strip())


class TowerService:
    """The server's use cases over one :class:`Store`."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock
        self._listeners: list[AccountListener] = []

    @property
    def store(self) -> Store:
        """The underlying store."""
        return self._store

    def add_listener(self, listener: AccountListener) -> None:
        """Register a listener told about account JWT changes after each commit."""
        self._listeners.append(listener)

    def _now(self) -> int:
        return int(self._clock())

    async def _write(self, fn: Callable[[Tx], _Outcome]) -> Record | None:
        outcome = await self._store.write(fn)
        for listener in self._listeners:
            if outcome.changed_accounts:
                await listener.accounts_changed(outcome.changed_accounts)
            for target in outcome.removed:
                await listener.account_removed(target)
        return outcome.record

    async def _write_record(self, fn: Callable[[Tx], _Outcome]) -> Record:
        record = await self._write(fn)
        assert record is not None
        return record

    # --- generic REST entry points ------------------------------------------------------

    @staticmethod
    def check_collection(name: str) -> str:
        """``name`` if it is a served collection, else :class:`NotFound`."""
        if name not in COLLECTIONS:
            raise NotFound()
        return name

    async def get(self, collection: str, record_id: str) -> Record:
        """One public record, or :class:`NotFound`."""
        table = self.check_collection(collection)
        row = await self._store.read(lambda tx: tx.get(table, record_id))
        if row is None:
            raise NotFound()
        return _public(table, row)

    async def list_records(self, collection: str, query: ListQuery) -> Page:
        """One page of public records matching a PocketBase filter."""
        table = self.check_collection(collection)
        schema = query_schema(table)
        try:
            where = compile_filter(query.filter, schema)
        except FilterError:
            raise BadRequest("Invalid filter parameters.") from None
        try:
            order = compile_sort(query.sort, schema)
        except SortError:
            raise BadRequest("Invalid sort parameters.") from None
        page = max(1, query.page)
        per_page = query.per_page if query.per_page > 0 else DEFAULT_PER_PAGE
        per_page = min(per_page, MAX_PER_PAGE)
        offset = min((page - 1) * per_page, 2**62)
        result = await self._store.read(
            lambda tx: tx.list_page(
                table,
                where=where,
                order=order,
                limit=per_page,
                offset=offset,
                count=not query.skip_total,
            )
        )
        items = [_public(table, row) for row in result.rows]
        if result.total is None:
            total_items, total_pages = -1, -1
        else:
            total_items = result.total
            total_pages = math.ceil(total_items / per_page)
        return Page(page, per_page, total_items, total_pages, items)

    async def create(self, collection: str, body: Mapping[str, Any]) -> Record:
        """Create a record from a REST body."""
        table = self.check_collection(collection)
        form = Form(body, partial=False)
        if table == OPERATORS:
            name = form.text("name", required=True) or ""
            url = form.text("url", max_len=4096) or ""
            form.check(CREATE_FAILED)
            return await self.create_installation(name=name, url=url)
        if table == ACCOUNTS:
            operator = form.text("operator", required=True) or ""
            name = form.text("name", required=True) or ""
            ttl = form.integer("user_jwt_ttl", minimum=0, maximum=MAX_USER_TTL) or 0
            form.check(CREATE_FAILED)
            return await self.create_account(operator_id=operator, name=name, user_jwt_ttl=ttl)
        if table == SIGNING_KEYS:
            account = form.text("account", required=True) or ""
            role = form.text("role", required=True) or ""
            description = form.text("description", max_len=4096) or ""
            publish = form.subjects("publish") or []
            subscribe = form.subjects("subscribe") or []
            form.check(CREATE_FAILED)
            return await self.create_role(
                account_id=account,
                role=role,
                publish=publish,
                subscribe=subscribe,
                description=description,
            )
        if table == USERS:
            account = form.text("account", required=True) or ""
            name = form.text("name", required=True) or ""
            description = form.text("description", max_len=4096) or ""
            signing_key = form.text("signing_key") or ""
            form.check(CREATE_FAILED)
            return await self.create_user(
                account_id=account,
                name=name,
                description=description,
                signing_key_id=signing_key,
            )
        account = form.text("account", required=True) or ""
        cluster = form.text("cluster", required=True) or ""
        namespace = form.text("namespace", required=True) or ""
        form.check(CREATE_FAILED)
        return await self.link_k8s(account_id=account, cluster=cluster, namespace=namespace)

    async def update(self, collection: str, record_id: str, body: Mapping[str, Any]) -> Record:
        """Apply a PATCH body (only the simple fields of each collection are writable)."""
        table = self.check_collection(collection)
        form = Form(body, partial=True)
        changes: dict[str, Any] = {}
        if table == OPERATORS:
            changes = {"name": form.text("name", required=True), "url": form.text("url")}
        elif table == ACCOUNTS:
            changes = {
                "name": form.text("name", required=True),
                "user_jwt_ttl": form.integer("user_jwt_ttl", minimum=0, maximum=MAX_USER_TTL),
            }
        elif table == SIGNING_KEYS:
            changes = {
                "role": form.text("role", required=True),
                "description": form.text("description", max_len=4096),
                "publish": form.subjects("publish"),
                "subscribe": form.subjects("subscribe"),
            }
        elif table == USERS:
            changes = {
                "name": form.text("name", required=True),
                "description": form.text("description", max_len=4096),
                "signing_key": form.text("signing_key"),
            }
        else:
            changes = {
                "account": form.text("account", required=True),
                "cluster": form.text("cluster", required=True),
                "namespace": form.text("namespace", required=True),
            }
        form.check(UPDATE_FAILED)
        present = {k: v for k, v in changes.items() if v is not None}
        return await self._write_record(lambda tx: self._update_tx(tx, table, record_id, present))

    async def delete(self, collection: str, record_id: str) -> None:
        """Delete a record (and what only it owns); :class:`NotFound` if absent."""
        table = self.check_collection(collection)
        await self._write(lambda tx: self._delete_tx(tx, table, record_id))

    # --- installations and accounts --------------------------------------------------------

    async def create_installation(self, *, name: str, url: str = "") -> Record:
        """Create an operator (installation) with its system account and push user."""

        def tx_fn(tx: Tx) -> _Outcome:
            iat = self._now()
            operator = jwt.generate_nkey("operator")
            system = jwt.generate_nkey("account")
            push_user = jwt.generate_nkey("user")
            operator_id, system_id = new_record_id(), new_record_id()
            push_jwt = jwt.user_jwt(
                user_public_key=push_user.public_key, name="tower-push", iat=iat, account=system
            )
            row = tx.insert(
                OPERATORS,
                {
                    "id": operator_id,
                    "name": name,
                    "public_key": operator.public_key,
                    "url": url,
                    "jwt": jwt.operator_jwt(
                        operator=operator, name=name, system_account=system.public_key, iat=iat
                    ),
                    "system_account": system_id,
                    "sign_seed": operator.seed,
                    "system_user_creds": jwt.format_user_creds(push_jwt, push_user.seed),
                },
            )
            tx.insert(
                ACCOUNTS,
                {
                    "id": system_id,
                    "operator": operator_id,
                    "name": SYSTEM_ACCOUNT_NAME,
                    "public_key": system.public_key,
                    "jwt": jwt.account_jwt(
                        operator=operator,
                        account_public_key=system.public_key,
                        name=SYSTEM_ACCOUNT_NAME,
                        iat=iat,
                    ),
                    "sign_seed": system.seed,
                },
            )
            return _Outcome(record=_public(OPERATORS, row), changed_accounts=(system_id,))

        return await self._write_record(tx_fn)

    async def create_account(self, *, operator_id: str, name: str, user_jwt_ttl: int = 0) -> Record:
        """Create an account of an installation; ``user_jwt_ttl`` > 0 makes user JWTs expire."""

        def tx_fn(tx: Tx) -> _Outcome:
            operator = tx.get(OPERATORS, operator_id) or tx.find_one(
                OPERATORS, public_key=operator_id
            )
            if operator is None:
                raise ValidationFailed(CREATE_FAILED, {"operator": _err(MISSING_REL)})
            key = jwt.generate_nkey("account")
            try:
                row = tx.insert(
                    ACCOUNTS,
                    {
                        "operator": operator["id"],
                        "name": name,
                        "public_key": key.public_key,
                        "jwt": jwt.account_jwt(
                            operator=jwt.nkey_from_seed(operator["sign_seed"]),
                            account_public_key=key.public_key,
                            name=name,
                            iat=self._now(),
                        ),
                        "user_jwt_ttl": user_jwt_ttl,
                        "sign_seed": key.seed,
                    },
                )
            except UniqueViolation as exc:
                raise _not_unique(ACCOUNTS, CREATE_FAILED, exc) from None
            return _Outcome(record=_public(ACCOUNTS, row), changed_accounts=(str(row["id"]),))

        return await self._write_record(tx_fn)

    def _resign_account(self, tx: Tx, account: Row, *, disabled: bool = False) -> str:
        """Rebuild an account JWT from its roles and revocations; store and return it."""
        operator = tx.get(OPERATORS, account["operator"])
        assert operator is not None
        scopes = [
            jwt.RoleScope(
                public_key=key["public_key"],
                role=key["role"],
                publish=key["publish"],
                subscribe=key["subscribe"],
            )
            for key in tx.find(SIGNING_KEYS, account=account["id"])
        ]
        token = jwt.account_jwt(
            operator=jwt.nkey_from_seed(operator["sign_seed"]),
            account_public_key=account["public_key"],
            name=account["name"],
            iat=self._now(),
            scopes=scopes,
            revocations=tx.revocations(account["id"]),
            disabled=disabled,
        )
        if not disabled:
            tx.update(ACCOUNTS, account["id"], {"jwt": token})
        return token

    # --- roles ---------------------------------------------------------------------------

    async def create_role(
        self,
        *,
        account_id: str,
        role: str,
        publish: Sequence[str] = (),
        subscribe: Sequence[str] = (),
        description: str = "",
    ) -> Record:
        """Create a role: a scoped signing key added to the account JWT (re-signed, pushed)."""

        def tx_fn(tx: Tx) -> _Outcome:
            account = _account_or_fail(tx, account_id, CREATE_FAILED)
            key = jwt.generate_nkey("account")
            try:
                row = tx.insert(
                    SIGNING_KEYS,
                    {
                        "account": account_id,
                        "role": role,
                        "description": description,
                        "publish": list(publish),
                        "subscribe": list(subscribe),
                        "public_key": key.public_key,
                        "sign_seed": key.seed,
                    },
                )
            except UniqueViolation as exc:
                raise _not_unique(SIGNING_KEYS, CREATE_FAILED, exc) from None
            self._resign_account(tx, account)
            return _Outcome(record=_public(SIGNING_KEYS, row), changed_accounts=(account_id,))

        return await self._write_record(tx_fn)

    # --- users ---------------------------------------------------------------------------

    def _issue_user(
        self, tx: Tx, *, account: Row, name: str, role: Row | None, key: jwt.NKey
    ) -> dict[str, str]:
        iat = self._now()
        ttl = int(account.get("user_jwt_ttl") or 0)
        token = jwt.user_jwt(
            user_public_key=key.public_key,
            name=name,
            iat=iat,
            account=jwt.nkey_from_seed(account["sign_seed"]),
            role_key=jwt.nkey_from_seed(role["sign_seed"]) if role is not None else None,
            expires=iat + ttl if ttl > 0 else None,
        )
        return {
            "public_key": key.public_key,
            "jwt": token,
            "seed": key.seed,
            "creds": jwt.format_user_creds(token, key.seed),
        }

    async def create_user(
        self, *, account_id: str, name: str, description: str = "", signing_key_id: str = ""
    ) -> Record:
        """Create a user with fresh keys and creds, signed by the role's key if one is given."""

        def tx_fn(tx: Tx) -> _Outcome:
            account = _account_or_fail(tx, account_id, CREATE_FAILED)
            role = _role_or_fail(tx, signing_key_id, account_id, CREATE_FAILED)
            issued = self._issue_user(
                tx, account=account, name=name, role=role, key=jwt.generate_nkey("user")
            )
            try:
                row = tx.insert(
                    USERS,
                    {
                        "account": account_id,
                        "name": name,
                        "description": description,
                        "signing_key": signing_key_id,
                        **issued,
                    },
                )
            except UniqueViolation as exc:
                raise _not_unique(USERS, CREATE_FAILED, exc) from None
            return _Outcome(record=_public(USERS, row))

        return await self._write_record(tx_fn)

    # --- k8s access ------------------------------------------------------------------------

    async def link_k8s(self, *, account_id: str, cluster: str, namespace: str) -> Record:
        """Allow a Kubernetes (cluster, namespace) to get credentials of an account."""

        def tx_fn(tx: Tx) -> _Outcome:
            _account_or_fail(tx, account_id, CREATE_FAILED)
            try:
                row = tx.insert(
                    ACCESS, {"account": account_id, "cluster": cluster, "namespace": namespace}
                )
            except UniqueViolation as exc:
                raise _not_unique(ACCESS, CREATE_FAILED, exc) from None
            return _Outcome(record=_public(ACCESS, row))

        return await self._write_record(tx_fn)

    async def unlink_k8s(self, *, account_id: str, cluster: str, namespace: str) -> bool:
        """Remove a Kubernetes access link; whether it existed."""

        def tx_fn(tx: Tx) -> _Outcome:
            count = tx.delete_where(
                ACCESS, account=account_id, cluster=cluster, namespace=namespace
            )
            return _Outcome(record={"deleted": count})

        record = await self._write(tx_fn)
        return bool(record and record["deleted"])

    # --- updates and deletes ---------------------------------------------------------------

    def _update_tx(self, tx: Tx, table: str, record_id: str, changes: dict[str, Any]) -> _Outcome:
        row = tx.get(table, record_id)
        if row is None:
            raise NotFound()
        changes = {k: v for k, v in changes.items() if row.get(k) != v}
        if table == OPERATORS and "name" in changes:
            system = tx.get(ACCOUNTS, row["system_account"])
            changes["jwt"] = jwt.operator_jwt(
                operator=jwt.nkey_from_seed(row["sign_seed"]),
                name=changes["name"],
                system_account=system["public_key"] if system else "",
                iat=self._now(),
            )
        elif table == USERS:
            changes = self._user_changes(tx, row, changes)
        elif table == ACCESS and "account" in changes:
            _account_or_fail(tx, changes["account"], UPDATE_FAILED)
        if changes:
            try:
                updated = tx.update(table, record_id, changes)
            except UniqueViolation as exc:
                raise _not_unique(table, UPDATE_FAILED, exc) from None
            assert updated is not None
            row = updated
        # Which account JWT must be re-signed (and pushed) because of this change.
        resign: str | None = None
        if table == ACCOUNTS and "name" in changes:
            resign = record_id
        elif table == SIGNING_KEYS and changes:
            resign = row["account"]
        elif table == USERS and "public_key" in changes and "signing_key" in changes:
            resign = row["account"]  # the old key was revoked
        changed_accounts: tuple[str, ...] = ()
        if resign is not None:
            account = tx.get(ACCOUNTS, resign)
            assert account is not None
            self._resign_account(tx, account)
            changed_accounts = (resign,)
        if table == OPERATORS and "url" in changes:
            # A new nats-server address: make sure it gets every account's latest JWT.
            changed_accounts = tuple(a["id"] for a in tx.find(ACCOUNTS, operator=record_id))
        final = tx.get(table, record_id)
        assert final is not None
        return _Outcome(record=_public(table, final), changed_accounts=changed_accounts)

    def _user_changes(self, tx: Tx, row: Row, changes: dict[str, Any]) -> dict[str, Any]:
        """Re-issue a user's JWT when its name or role changes.

        A role change gets a new key pair and revokes the old one, so a JWT signed by the
        previous role cannot be used any more.
        """
        if "name" not in changes and "signing_key" not in changes:
            return changes
        account = tx.get(ACCOUNTS, row["account"])
        assert account is not None
        role_id = str(changes.get("signing_key", row["signing_key"]))
        role = _role_or_fail(tx, role_id, account["id"], UPDATE_FAILED)
        if "signing_key" in changes:
            tx.add_revocation(account["id"], row["public_key"], self._now())
            key = jwt.generate_nkey("user")
        else:
            key = jwt.nkey_from_seed(row["seed"])
        name = str(changes.get("name", row["name"]))
        return {**changes, **self._issue_user(tx, account=account, name=name, role=role, key=key)}

    def _delete_tx(self, tx: Tx, table: str, record_id: str) -> _Outcome:
        row = tx.get(table, record_id)
        if row is None:
            raise NotFound()
        if table == USERS:
            tx.delete(USERS, record_id)
            tx.add_revocation(row["account"], row["public_key"], self._now())
            account = tx.get(ACCOUNTS, row["account"])
            assert account is not None
            self._resign_account(tx, account)
            return _Outcome(changed_accounts=(account["id"],))
        if table == SIGNING_KEYS:
            if tx.find_one(USERS, signing_key=record_id) is not None:
                raise BadRequest(DELETE_REFERENCED)
            tx.delete(SIGNING_KEYS, record_id)
            account = tx.get(ACCOUNTS, row["account"])
            assert account is not None
            self._resign_account(tx, account)
            return _Outcome(changed_accounts=(account["id"],))
        if table == ACCOUNTS:
            return _Outcome(removed=(self._delete_account(tx, row),))
        if table == OPERATORS:
            for account in tx.find(ACCOUNTS, operator=record_id):
                self._delete_account(tx, account, allow_system=True)
            tx.delete(OPERATORS, record_id)
            return _Outcome()
        tx.delete(table, record_id)
        return _Outcome()

    def _delete_account(self, tx: Tx, account: Row, *, allow_system: bool = False) -> PushTarget:
        operator = tx.get(OPERATORS, account["operator"])
        assert operator is not None
        if operator["system_account"] == account["id"] and not allow_system:
            raise BadRequest("The system account of an installation cannot be deleted.")
        final_jwt = self._resign_account(tx, account, disabled=True)
        for table in (USERS, SIGNING_KEYS, ACCESS, "nats_auth_revocations"):
            tx.delete_where(table, account=account["id"])
        try:
            tx.delete(ACCOUNTS, account["id"])
        except ForeignKeyViolation:
            raise BadRequest(DELETE_REFERENCED) from None
        return PushTarget(
            operator_id=operator["id"],
            urls=_split_urls(operator["url"]),
            system_user_creds=operator["system_user_creds"],
            account_public_key=account["public_key"],
            account_jwt=final_jwt,
        )

    # --- nats-server sync inputs -----------------------------------------------------------

    async def push_target(self, account_id: str) -> PushTarget | None:
        """The current JWT of an account and where to push it (None if the account is gone)."""

        def tx_fn(tx: Tx) -> PushTarget | None:
            account = tx.get(ACCOUNTS, account_id)
            if account is None:
                return None
            operator = tx.get(OPERATORS, account["operator"])
            if operator is None:
                return None
            return PushTarget(
                operator_id=operator["id"],
                urls=_split_urls(operator["url"]),
                system_user_creds=operator["system_user_creds"],
                account_public_key=account["public_key"],
                account_jwt=account["jwt"],
            )

        return await self._store.read(tx_fn)

    async def config_inputs(self, operator_id: str) -> ConfigInputs:
        """The operator JWT, system account and every account JWT of an installation."""

        def tx_fn(tx: Tx) -> ConfigInputs:
            operator = tx.get(OPERATORS, operator_id) or tx.find_one(
                OPERATORS, public_key=operator_id
            )
            if operator is None:
                raise NotFound()
            accounts = tx.find(ACCOUNTS, operator=operator["id"])
            system = next(a for a in accounts if a["id"] == operator["system_account"])
            return ConfigInputs(
                operator_id=operator["id"],
                operator_public_key=operator["public_key"],
                operator_jwt=operator["jwt"],
                system_account=system["public_key"],
                account_jwts={a["public_key"]: a["jwt"] for a in accounts},
            )

        return await self._store.read(tx_fn)

    async def operator_ids(self) -> list[str]:
        """Ids of every installation."""
        return await self._store.read(lambda tx: [str(o["id"]) for o in tx.find(OPERATORS)])

    async def all_account_ids(self) -> list[str]:
        """Ids of every account of every installation that has a nats-server URL."""

        def tx_fn(tx: Tx) -> list[str]:
            ids: list[str] = []
            for operator in tx.find(OPERATORS):
                if operator["url"]:
                    ids.extend(a["id"] for a in tx.find(ACCOUNTS, operator=operator["id"]))
            return ids

        return await self._store.read(tx_fn)

    # --- API tokens --------------------------------------------------------------------------

    async def create_api_token(self, *, name: str = "") -> str:
        """Store and return a new API token (``nt_`` prefix)."""
        token = "nt_" + new_record_id() + new_record_id() + new_record_id()
        await self._store.write(
            lambda tx: tx.insert("nats_auth_api_tokens", {"name": name, "token": token})
        )
        return token

    async def api_token_exists(self, token: str) -> bool:
        """Whether ``token`` is a stored API token."""
        if not token.startswith("nt_"):
            return False
        return await self._store.read(lambda tx: tx.api_token_exists(token))


def _err(pair: tuple[str, str]) -> dict[str, str]:
    return {"code": pair[0], "message": pair[1]}


def _not_unique(table: str, message: str, exc: UniqueViolation) -> ValidationFailed:
    fields = COLLECTIONS[table].unique_error_fields or exc.columns
    return ValidationFailed(message, {name: _err(NOT_UNIQUE) for name in fields})


def _account_or_fail(tx: Tx, account_id: str, message: str) -> Row:
    account = tx.get(ACCOUNTS, account_id)
    if account is None:
        raise ValidationFailed(message, {"account": _err(MISSING_REL)})
    return account


def _role_or_fail(tx: Tx, role_id: str, account_id: str, message: str) -> Row | None:
    if not role_id:
        return None
    role = tx.get(SIGNING_KEYS, role_id)
    if role is None or role["account"] != account_id:
        raise ValidationFailed(message, {"signing_key": _err(MISSING_REL)})
    return role
