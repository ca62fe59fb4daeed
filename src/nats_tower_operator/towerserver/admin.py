"""Administering a NATS Tower over its records API with the X-Token, as an admin script would.

:class:`TowerAdmin` is what ``nats-tower-operator tower create-* | link | unlink | list |
nats-config`` and the test and sandbox set-up use. It works against any NATS Tower (the
stand-in or a real one) and names things the way people do: installations by public key,
accounts by name.

Real Tower never answers 401 to a wrong token (the token is part of the API rules): a list
is empty and a lookup 404s. So "not found" errors here say "or the API token is wrong"
unless a positive answer proved the token right.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import httpx

from nats_tower_operator.towerserver.collections import (
    ACCESS,
    ACCOUNT_OPTIONS,
    ACCOUNTS,
    OPERATORS,
    SIGNING_KEYS,
    USERS,
)
from nats_tower_operator.towerserver.natsconfig import NatsConfigInputs

__all__ = ["AdminError", "Record", "TowerAdmin", "split_subjects"]

Record = dict[str, Any]

_ID = re.compile(r"[a-z0-9]{15}")


class AdminError(Exception):
    """Tower refused or could not do what was asked (message safe to print)."""


def split_subjects(value: str) -> list[str]:
    """Split a comma or newline separated subject list, dropping blanks."""
    return [part.strip() for part in re.split(r"[,\n]", value) if part.strip()]


def _lit(value: str) -> str:
    """A PocketBase filter string literal (only ``'`` is escaped)."""
    if value.endswith("\\"):
        raise AdminError("a value ending in a backslash cannot be used in a Tower filter")
    return "'" + value.replace("'", "\\'") + "'"


class TowerAdmin:
    """An X-Token client for administration; use as an async context manager."""

    def __init__(self, url: str, token: str, *, timeout: float = 10.0) -> None:
        self._http = httpx.AsyncClient(
            base_url=url.rstrip("/"), headers={"X-Token": token}, timeout=timeout
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._http.aclose()

    # ------------------------------------------------------------------ records

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise AdminError(
                f"{method} {path}: no answer from Tower at {self._http.base_url} "
                f"({type(exc).__name__})"
            ) from None
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {}
            message = body.get("message", "") if isinstance(body, dict) else ""
            fields = body.get("data") if isinstance(body, dict) else None
            detail = f" {fields}" if fields else ""
            raise AdminError(f"{method} {path}: HTTP {response.status_code} {message}{detail}")
        return response

    async def list(
        self, collection: str, filter: str = "", *, fields: str | None = None
    ) -> list[Record]:
        """Every record of ``collection`` matching ``filter`` (all pages)."""
        items: list[Record] = []
        page = 1
        while True:
            params: dict[str, Any] = {"page": page, "perPage": 500, "skipTotal": 1}
            if filter:
                params["filter"] = filter
            if fields:
                params["fields"] = fields
            response = await self._send(
                "GET", f"/api/collections/{collection}/records", params=params
            )
            batch = response.json()["items"]
            items.extend(batch)
            if len(batch) < 500:
                return items
            page += 1

    async def get(self, collection: str, record_id: str) -> Record:
        """One record by id."""
        response = await self._send("GET", f"/api/collections/{collection}/records/{record_id}")
        result: Record = response.json()
        return result

    async def create(self, collection: str, data: Mapping[str, Any]) -> Record:
        """Create a record; the answer (with Tower's generated keys) is returned."""
        response = await self._send(
            "POST", f"/api/collections/{collection}/records", json=dict(data)
        )
        result: Record = response.json()
        return result

    async def update(self, collection: str, record_id: str, data: Mapping[str, Any]) -> Record:
        """PATCH a record."""
        response = await self._send(
            "PATCH", f"/api/collections/{collection}/records/{record_id}", json=dict(data)
        )
        result: Record = response.json()
        return result

    async def delete(self, collection: str, record_id: str) -> None:
        """Delete a record (a user: Tower revokes it)."""
        await self._send("DELETE", f"/api/collections/{collection}/records/{record_id}")

    # ------------------------------------------------------------------ by name

    async def installation(self, key: str) -> Record:
        """The installation with this public key (or record id)."""
        field = "id" if _ID.fullmatch(key) else "public_key"
        found = await self.list(OPERATORS, f"{field} = {_lit(key)}")
        if not found:
            raise AdminError(f"installation {key} not found (or the API token is wrong)")
        return found[0]

    async def account(self, installation: str, name: str) -> Record:
        """The account ``name`` of an installation (public key or record id)."""
        inst = await self.installation(installation)
        found = await self.list(ACCOUNTS, f"operator = {_lit(inst['id'])} && name = {_lit(name)}")
        if not found:
            raise AdminError(f"account {name!r} not found in installation {inst['public_key']}")
        return found[0]

    async def role(self, installation: str, account: str, role: str) -> Record:
        """The role (scoped signing key) ``role`` of an account."""
        acc = await self.account(installation, account)
        found = await self.list(SIGNING_KEYS, f"account = {_lit(acc['id'])} && role = {_lit(role)}")
        if not found:
            raise AdminError(f"role {role!r} not found in account {account!r}")
        return found[0]

    async def create_installation(self, nats_urls: str, description: str = "") -> Record:
        """Create an installation (Tower makes its keys, a SYS account and its user)."""
        return await self.create(OPERATORS, {"url": nats_urls, "description": description})

    async def create_account(
        self, installation: str, name: str, *, user_jwt_ttl: int = 0, description: str = ""
    ) -> Record:
        """Create an account; ``user_jwt_ttl`` > 0 uses the stand-in's expiring-users extension."""
        inst = await self.installation(installation)
        account = await self.create(
            ACCOUNTS, {"operator": inst["id"], "name": name, "description": description}
        )
        if user_jwt_ttl:
            await self.create(
                ACCOUNT_OPTIONS, {"account": account["id"], "user_jwt_ttl": user_jwt_ttl}
            )
        return account

    async def create_role(
        self,
        installation: str,
        account: str,
        role: str,
        *,
        publish: Sequence[str] = (),
        subscribe: Sequence[str] = (),
    ) -> Record:
        """Create a role (a scoped signing key) of an account."""
        acc = await self.account(installation, account)
        return await self.create(
            SIGNING_KEYS,
            {
                "account": acc["id"],
                "role": role,
                "publish": list(publish),
                "subscribe": list(subscribe),
            },
        )

    async def create_user(
        self, installation: str, account: str, name: str, *, role: str = "", description: str = ""
    ) -> Record:
        """Create a user (its creds are in the answer)."""
        acc = await self.account(installation, account)
        body: dict[str, Any] = {"account": acc["id"], "name": name, "description": description}
        if role:
            body["signing_key"] = (await self.role(installation, account, role))["id"]
        return await self.create(USERS, body)

    async def link(
        self, installation: str, account: str, *, cluster: str, namespace: str
    ) -> Record:
        """Allow a cluster's namespace to use an account (a k8s access record)."""
        acc = await self.account(installation, account)
        return await self.create(
            ACCESS, {"account": acc["id"], "cluster": cluster, "namespace": namespace}
        )

    async def unlink(
        self, installation: str, account: str, *, cluster: str, namespace: str
    ) -> bool:
        """Remove that link; whether it existed."""
        acc = await self.account(installation, account)
        found = await self.list(
            ACCESS,
            f"account = {_lit(acc['id'])} && cluster = {_lit(cluster)} "
            f"&& namespace = {_lit(namespace)}",
        )
        for record in found:
            await self.delete(ACCESS, record["id"])
        return bool(found)

    async def nats_config_inputs(self, installation: str) -> NatsConfigInputs:
        """Operator JWT, system account and every account JWT of an installation."""
        inst = await self.installation(installation)
        accounts = await self.list(
            ACCOUNTS, f"operator = {_lit(inst['id'])}", fields="name,public_key,jwt"
        )
        system = [a["public_key"] for a in accounts if a["name"] == "SYS"]
        if not system:
            raise AdminError(f"installation {inst['public_key']} has no SYS account")
        return NatsConfigInputs(
            operator_public_key=inst["public_key"],
            operator_jwt=inst["jwt"],
            system_account=system[0],
            account_jwts={a["public_key"]: a["jwt"] for a in accounts if a["jwt"]},
        )
