"""Credentials issued over REST work on a real nats-server in operator mode."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import nats
import nats.errors
import pytest
from nats.aio.client import Client

from .conftest import Installation

USERS = "/api/collections/nats_auth_users/records"
ROLES = "/api/collections/nats_auth_signing_keys/records"


async def _create_user(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post(USERS, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def _write_creds(tmp_path: Path, user: dict[str, Any]) -> str:
    path = tmp_path / f"{user['name']}.creds"
    path.write_text(user["creds"])
    return str(path)


async def _connect(url: str, creds: str, errors: list[Exception] | None = None) -> Client:
    async def on_error(exc: Exception) -> None:
        if errors is not None:
            errors.append(exc)

    return await nats.connect(
        url,
        user_credentials=creds,
        error_cb=on_error,
        allow_reconnect=False,
        max_reconnect_attempts=1,
        reconnect_time_wait=0.1,
        connect_timeout=2,
    )


async def test_user_publishes_and_receives_within_its_account_only(
    installation: Installation, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    tower = installation.tower
    orders = await tower.create_account(installation.operator["id"], "orders")
    other = await tower.create_account(installation.operator["id"], "other")
    alice = await _create_user(client, account=orders["id"], name="alice", description="d")
    bob = await _create_user(client, account=orders["id"], name="bob")
    mallory = await _create_user(client, account=other["id"], name="mallory")
    assert alice["creds"].startswith("-----BEGIN NATS USER JWT-----\n")
    assert alice["public_key"].startswith("U") and alice["seed"].startswith("SU")

    url = installation.nats.client_url
    nc_alice = await _connect(url, _write_creds(tmp_path, alice))
    nc_bob = await _connect(url, _write_creds(tmp_path, bob))
    nc_mallory = await _connect(url, _write_creds(tmp_path, mallory))
    try:
        sub_alice = await nc_alice.subscribe("events.>")
        sub_mallory = await nc_mallory.subscribe("events.>")
        await nc_alice.flush()
        await nc_mallory.flush()
        await nc_bob.publish("events.created", b"hello")
        await nc_bob.flush()
        msg = await sub_alice.next_msg(timeout=2)
        assert msg.data == b"hello"
        with pytest.raises(nats.errors.TimeoutError):
            await sub_mallory.next_msg(timeout=0.3)
    finally:
        for nc in (nc_alice, nc_bob, nc_mallory):
            await nc.close()


async def test_role_permissions_and_role_created_after_account(
    installation: Installation, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    account = await installation.tower.create_account(installation.operator["id"], "shop")
    # The role is created over REST after the account JWT was loaded by nats-server: only the
    # pushed account JWT can make nats-server trust the new scoped signing key.
    response = await client.post(
        ROLES,
        json={
            "account": account["id"],
            "role": "orders-writer",
            "publish": ["orders.>"],
            "subscribe": ["_INBOX.>", "orders.>"],
        },
    )
    assert response.status_code == 200, response.text
    role = response.json()
    assert role["publish"] == ["orders.>"]
    assert "sign_seed" not in role
    writer = await _create_user(client, account=account["id"], name="w", signing_key=role["id"])
    assert writer["signing_key"] == role["id"]

    errors: list[Exception] = []
    nc = await _connect(installation.nats.client_url, _write_creds(tmp_path, writer), errors)
    try:
        sub = await nc.subscribe("orders.>")
        await nc.publish("orders.new", b"ok")
        msg = await sub.next_msg(timeout=2)
        assert msg.subject == "orders.new"
        await nc.publish("payments.x", b"no")
        await nc.flush()
        for _ in range(50):
            if errors:
                break
            await asyncio.sleep(0.02)
        assert any("permissions violation" in str(e).lower() for e in errors), errors
        assert any("payments.x" in str(e) for e in errors)
    finally:
        await nc.close()


async def test_deleted_user_is_refused_at_once(
    installation: Installation, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    account = await installation.tower.create_account(installation.operator["id"], "acct")
    user = await _create_user(client, account=account["id"], name="gone")
    keeper = await _create_user(client, account=account["id"], name="stays")
    creds = _write_creds(tmp_path, user)
    url = installation.nats.client_url
    nc = await _connect(url, creds)
    await nc.close()

    response = await client.delete(f"{USERS}/{user['id']}")
    assert response.status_code == 204
    assert (await client.get(f"{USERS}/{user['id']}")).status_code == 404

    deadline = time.monotonic() + 2
    refused = False
    while time.monotonic() < deadline:
        try:
            nc = await _connect(url, creds)
        except (nats.errors.Error, OSError):
            refused = True
            break
        await nc.close()
        await asyncio.sleep(0.1)
    assert refused, "revoked creds were still accepted 2 s after the delete"
    # The revocation is for that user only.
    nc_keeper = await _connect(url, _write_creds(tmp_path, keeper))
    await nc_keeper.close()


async def test_account_user_jwt_ttl_sets_expiry(
    installation: Installation, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    from nats_tower_operator.towerserver.jwt import decode_jwt

    account = await installation.tower.create_account(
        installation.operator["id"], "short", user_jwt_ttl=3600
    )
    user = await _create_user(client, account=account["id"], name="u")
    claims = decode_jwt(user["jwt"])
    assert claims["exp"] == claims["iat"] + 3600
    nc = await _connect(installation.nats.client_url, _write_creds(tmp_path, user))
    await nc.close()


async def test_moving_a_user_to_a_role_revokes_its_old_creds(
    installation: Installation, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    account = await installation.tower.create_account(installation.operator["id"], "mv")
    role = await installation.tower.create_role(account["id"], "ro", subscribe=["ro.>"])
    user = await _create_user(client, account=account["id"], name="mover")
    old_creds = _write_creds(tmp_path, user)
    response = await client.patch(f"{USERS}/{user['id']}", json={"signing_key": role["id"]})
    assert response.status_code == 200, response.text
    moved = response.json()
    assert moved["public_key"] != user["public_key"] and moved["signing_key"] == role["id"]
    url = installation.nats.client_url
    with pytest.raises(nats.errors.Error):
        await _connect(url, old_creds)
    nc = await _connect(url, _write_creds(tmp_path, {**moved, "name": "moved"}))
    await nc.close()
