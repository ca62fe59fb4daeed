"""Restarting the stand-in on the same data directory: records persist and the hooks keep
working; a rotated API token re-applies the rules without losing any column or record; a
SIGKILLed PocketBase loses no record it answered 200 for."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import Any

import httpx

from nats_tower_operator.towerserver.collections import ACCOUNT_OPTIONS
from nats_tower_operator.towerserver.jwt import verify_jwt
from nats_tower_operator.towerserver.standin import TowerStandIn

from .conftest import (
    ACCESS,
    ACCOUNTS,
    LIMITS,
    OPERATORS,
    PLACEHOLDER_URL,
    ROLES,
    TOKEN,
    USERS,
    Record,
    records,
)

COLLECTIONS = (OPERATORS, LIMITS, ACCOUNTS, ROLES, USERS, ACCESS, ACCOUNT_OPTIONS)
NEW_TOKEN = "rotated-token-9876543210"


def _client(tower: TowerStandIn, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=tower.url, headers={"X-Token": token}, timeout=10)


async def _snapshot(client: httpx.AsyncClient) -> dict[str, list[Record]]:
    """Every record of every collection, as the API shows them."""
    result = {}
    for collection in COLLECTIONS:
        response = await client.get(records(collection), params={"perPage": 1000, "sort": "id"})
        assert response.status_code == 200, response.text
        result[collection] = response.json()["items"]
    return result


async def _populate(tower: TowerStandIn) -> dict[str, Any]:
    """An installation with two accounts, a role, users, a link and a revoked user."""
    admin = tower.admin
    inst = await admin.create_installation(PLACEHOLDER_URL, "persisted")
    key = inst["public_key"]
    account = await admin.create_account(key, "app")
    await admin.create_account(key, "short", user_jwt_ttl=900)
    await admin.create_role(key, "app", "writer", publish=["orders.>"], subscribe=["_INBOX.>"])
    await admin.create_user(key, "app", "plain")
    await admin.create_user(key, "app", "scoped", role="writer")
    await admin.link(key, "app", cluster="c1", namespace="ns")
    gone = await admin.create_user(key, "app", "gone")
    await admin.delete(USERS, gone["id"])
    return {"installation": inst, "account": account, "gone": gone}


async def test_records_survive_a_restart_and_the_hooks_keep_working(tmp_path: Path) -> None:
    data_dir = tmp_path / "tower"
    async with TowerStandIn.running(data_dir=data_dir, token=TOKEN) as tower:
        made = await _populate(tower)
        async with _client(tower, TOKEN) as client:
            before = await _snapshot(client)
    assert sorted(u["name"] for u in before[USERS]) == ["plain", "scoped", "sys"]

    async with TowerStandIn.running(data_dir=data_dir, token=TOKEN) as tower:
        async with _client(tower, TOKEN) as client:
            assert await _snapshot(client) == before
        key = made["installation"]["public_key"]
        account = made["account"]
        new = await tower.admin.create_user(key, "app", "after-restart")
        assert verify_jwt(new["jwt"])["iss"] == account["sign_public_key"]
        expiring = verify_jwt((await tower.admin.create_user(key, "short", "u"))["jwt"])
        assert expiring["exp"] == expiring["iat"] + 900
        await tower.admin.delete(USERS, new["id"])
        stored = await tower.admin.get(ACCOUNTS, account["id"])
        revoked = verify_jwt(stored["jwt"])["nats"]["revocations"]
        assert set(revoked) == {made["gone"]["public_key"], new["public_key"]}


async def test_a_rotated_token_locks_out_the_old_one_and_keeps_every_record(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "tower"
    async with TowerStandIn.running(data_dir=data_dir, token=TOKEN) as tower:
        made = await _populate(tower)
        async with _client(tower, TOKEN) as client:
            before = await _snapshot(client)

    account_id = made["account"]["id"]
    async with TowerStandIn.running(data_dir=data_dir, token=NEW_TOKEN) as tower:
        async with _client(tower, TOKEN) as old:
            assert all(items == [] for items in (await _snapshot(old)).values())
            assert (await old.get(records(ACCOUNTS, account_id))).status_code == 404
            assert (await old.delete(records(ACCOUNTS, account_id))).status_code == 404
            created = await old.post(records(USERS), json={"account": account_id, "name": "x"})
            assert created.status_code == 400
        async with _client(tower, NEW_TOKEN) as new:
            assert await _snapshot(new) == before
            assert (await new.get(records(ACCOUNTS, account_id))).status_code == 200

        # The collections were updated in place (same ids), with the new token in every rule.
        async with httpx.AsyncClient(base_url=tower.url, timeout=10) as http:
            login = await http.post(
                "/api/collections/_superusers/auth-with-password",
                json={"identity": tower.superuser.email, "password": tower.superuser.password},
            )
            auth = {"Authorization": login.json()["token"]}
            listed = await http.get("/api/collections", params={"perPage": 200}, headers=auth)
        by_name = {c["name"]: c for c in listed.json()["items"]}
        for name in COLLECTIONS:
            collection = by_name[name]
            assert collection["id"].startswith("nt_"), collection["id"]
            rules = [
                collection[f"{op}Rule"] for op in ("list", "view", "create", "update", "delete")
            ]
            assert all(f"x_token = '{NEW_TOKEN}'" in rule for rule in rules), name
            assert not any(TOKEN in rule for rule in rules), name


async def test_pocketbase_sigkilled_mid_burst_keeps_every_acknowledged_user(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "tower"
    acknowledged: list[str] = []
    first_acks = asyncio.Event()
    async with TowerStandIn.running(data_dir=data_dir, token=TOKEN) as tower:
        key = (await tower.admin.create_installation(PLACEHOLDER_URL))["public_key"]
        account = await tower.admin.create_account(key, "app")

        async def create(client: httpx.AsyncClient, i: int) -> None:
            with contextlib.suppress(httpx.HTTPError):
                response = await client.post(
                    records(USERS), json={"account": account["id"], "name": f"u{i}"}
                )
                if response.status_code == 200:
                    acknowledged.append(response.json()["id"])
                    if len(acknowledged) >= 20:
                        first_acks.set()

        limits = httpx.Limits(max_connections=8)
        async with httpx.AsyncClient(
            base_url=tower.url, headers={"X-Token": TOKEN}, timeout=10, limits=limits
        ) as client:
            tasks = [asyncio.create_task(create(client, i)) for i in range(400)]
            await asyncio.wait_for(first_acks.wait(), timeout=30)
            pid = tower.pocketbase.pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            await asyncio.gather(*tasks)
    assert 20 <= len(acknowledged) < 400, "the kill should land mid-burst"

    async with TowerStandIn.running(data_dir=data_dir, token=TOKEN) as tower:
        users = await tower.admin.list(USERS, f"account = '{account['id']}'")
        assert set(acknowledged) <= {u["id"] for u in users}
        for user in users:
            assert user["public_key"] and user["seed"].startswith("SU")
            assert user["jwt"] in user["creds"] and user["seed"] in user["creds"]
        # The restarted PocketBase still enforces uniqueness.
        async with _client(tower, TOKEN) as client:
            duplicate = await client.post(
                records(USERS), json={"account": account["id"], "name": users[0]["name"]}
            )
            assert duplicate.status_code == 400


async def test_rotate_token_while_running_switches_access_at_once(tmp_path: Path) -> None:
    async with TowerStandIn.running(data_dir=tmp_path / "tower", token=TOKEN) as tower:
        made = await _populate(tower)
        async with _client(tower, TOKEN) as client:
            before = await _snapshot(client)
        await tower.rotate_token(NEW_TOKEN)
        async with _client(tower, TOKEN) as old, _client(tower, NEW_TOKEN) as new:
            assert all(items == [] for items in (await _snapshot(old)).values())
            assert await _snapshot(new) == before
        # The stand-in's own admin client follows the rotation.
        account = await tower.admin.account(made["installation"]["public_key"], "app")
        assert account["id"] == made["account"]["id"]
