"""Credentials issued over the stand-in's REST API work on a real nats-server in operator
mode, and every account change Tower makes reaches that server."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import nats.errors
import pytest

from nats_tower_operator.towerserver.jwt import decode_jwt

from .conftest import (
    ACCOUNTS,
    ROLES,
    USERS,
    Installation,
    Record,
    can_connect,
    nats_connect,
    records,
    wait_until,
)

#: A deleted user must be refused well before the push queue's first retry would run.
REVOCATION_DEADLINE = 2.0


async def _create(client: httpx.AsyncClient, collection: str, **body: Any) -> Record:
    response = await client.post(records(collection), json=body)
    assert response.status_code == 200, response.text
    result: Record = response.json()
    return result


async def _account(installation: Installation, name: str, **options: Any) -> Record:
    """A new account, once nats-server confirmed its JWT (before that it admits nobody)."""
    account = await installation.tower.admin.create_account(
        installation.public_key, name, **options
    )
    await installation.tower.wait_pushed(10)
    return account


async def test_users_exchange_messages_within_their_account_only(
    installation: Installation, client: httpx.AsyncClient
) -> None:
    orders = await _account(installation, "orders")
    other = await _account(installation, "other")
    alice = await _create(client, USERS, account=orders["id"], name="alice")
    bob = await _create(client, USERS, account=orders["id"], name="bob")
    mallory = await _create(client, USERS, account=other["id"], name="mallory")

    nc_alice = await nats_connect(installation.url, alice["creds"])
    nc_bob = await nats_connect(installation.url, bob["creds"])
    nc_mallory = await nats_connect(installation.url, mallory["creds"])
    try:
        sub_alice = await nc_alice.subscribe("events.>")
        sub_mallory = await nc_mallory.subscribe("events.>")
        await nc_alice.flush()
        await nc_mallory.flush()
        await nc_bob.publish("events.created", b"hello")
        await nc_bob.flush()
        assert (await sub_alice.next_msg(timeout=5)).data == b"hello"
        # Mallory's subscription was registered before Bob published: had the accounts
        # shared a subject space, the message would be there already.
        await nc_mallory.flush()
        with pytest.raises(nats.errors.TimeoutError):
            await sub_mallory.next_msg(timeout=0.3)
    finally:
        for nc in (nc_alice, nc_bob, nc_mallory):
            await nc.close()


async def test_role_users_may_publish_on_the_role_subjects_only(
    installation: Installation, client: httpx.AsyncClient
) -> None:
    account = await _account(installation, "shop")
    # The role is created after nats-server loaded the account: only the pushed account
    # JWT can make nats-server trust the new scoped signing key.
    role = await _create(
        client,
        ROLES,
        account=account["id"],
        role="orders-writer",
        publish=["orders.>"],
        subscribe=["_INBOX.>", "orders.>"],
    )
    writer = await _create(client, USERS, account=account["id"], name="w", signing_key=role["id"])
    await installation.tower.wait_pushed(10)

    errors: list[Exception] = []
    nc = await nats_connect(installation.url, writer["creds"], errors)
    try:
        sub = await nc.subscribe("orders.>")
        await nc.publish("orders.new", b"ok")
        assert (await sub.next_msg(timeout=5)).subject == "orders.new"
        await nc.publish("payments.x", b"no")
        await nc.flush()
        await wait_until(
            lambda: any("payments.x" in str(e) for e in errors),
            message="a permissions violation for payments.x",
        )
        assert any("permissions violation" in str(e).lower() for e in errors), errors
    finally:
        await nc.close()


async def test_deleted_user_is_refused_within_two_seconds_and_others_stay(
    installation: Installation, client: httpx.AsyncClient
) -> None:
    account = await _account(installation, "acct")
    gone = await _create(client, USERS, account=account["id"], name="gone")
    stays = await _create(client, USERS, account=account["id"], name="stays")
    assert await can_connect(installation.url, gone["creds"])

    response = await client.delete(records(USERS, gone["id"]))
    assert response.status_code == 204

    async def refused() -> bool:
        return not await can_connect(installation.url, gone["creds"])

    await wait_until(refused, timeout=REVOCATION_DEADLINE, message="revoked creds refused")
    assert await can_connect(installation.url, stays["creds"])


async def test_an_open_connection_of_a_deleted_user_is_closed(
    installation: Installation, client: httpx.AsyncClient
) -> None:
    account = await _account(installation, "live")
    user = await _create(client, USERS, account=account["id"], name="connected")
    nc = await nats_connect(installation.url, user["creds"])
    try:
        assert (await client.delete(records(USERS, user["id"]))).status_code == 204
        await wait_until(lambda: nc.is_closed, message="the revoked connection closed")
    finally:
        await nc.close()


async def test_account_jwt_with_many_revocations_still_pushes(
    installation: Installation, client: httpx.AsyncClient
) -> None:
    account = await _account(installation, "churn")
    users = await asyncio.gather(
        *(_create(client, USERS, account=account["id"], name=f"u{i}") for i in range(120))
    )
    deleted = await asyncio.gather(*(client.delete(records(USERS, u["id"])) for u in users))
    assert {r.status_code for r in deleted} == {204}
    stored = await client.get(records(ACCOUNTS, account["id"]))
    assert len(decode_jwt(stored.json()["jwt"])["nats"]["revocations"]) == 120

    await installation.tower.wait_pushed(10)
    fresh = await _create(client, USERS, account=account["id"], name="fresh")
    assert await can_connect(installation.url, fresh["creds"])
    for user in (users[0], users[-1]):
        assert not await can_connect(installation.url, user["creds"])


async def test_users_of_a_deleted_account_are_refused(
    installation: Installation, client: httpx.AsyncClient
) -> None:
    account = await _account(installation, "doomed")
    user = await _create(client, USERS, account=account["id"], name="u")
    assert await can_connect(installation.url, user["creds"])
    assert (await client.delete(records(ACCOUNTS, account["id"]))).status_code == 204

    async def refused() -> bool:
        return not await can_connect(installation.url, user["creds"])

    await wait_until(refused, message="users of the deleted account refused")


async def test_expiring_user_from_user_jwt_ttl_connects(
    installation: Installation, client: httpx.AsyncClient
) -> None:
    account = await _account(installation, "short", user_jwt_ttl=3600)
    user = await _create(client, USERS, account=account["id"], name="u")
    claims = decode_jwt(user["jwt"])
    assert claims["exp"] == claims["iat"] + 3600
    assert await can_connect(installation.url, user["creds"])
