"""Durability: a SIGKILLed server process loses no record it answered 200 for."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from nats_tower_operator.towerserver.filter import quote

from .conftest import TOKEN

OPS = "/api/collections/nats_auth_operators/records"
ACCOUNTS = "/api/collections/nats_auth_accounts/records"
USERS = "/api/collections/nats_auth_users/records"
ROLES = "/api/collections/nats_auth_signing_keys/records"
ACCESS = "/api/collections/nats_auth_k8s_access/records"


class ServerProcess:
    """``tower serve`` in a child process."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.process: asyncio.subprocess.Process | None = None
        self.url = ""

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "nats_tower_operator.towerserver.cli",
            "tower",
            "serve",
            "--db",
            str(self.db),
            "--token",
            TOKEN,
            "--port",
            "0",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout=20)
        assert line.startswith(b"tower server listening on "), line
        self.url = line.decode().rsplit(" ", 1)[1].strip()

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)

    async def wait(self) -> None:
        assert self.process is not None
        await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "tower.db")
    await proc.start()
    yield proc
    await proc.stop()


def _client(url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, headers={"X-Token": TOKEN}, timeout=10)


async def _all(client: httpx.AsyncClient, path: str) -> list[dict[str, Any]]:
    response = await client.get(path, params={"perPage": 500})
    assert response.status_code == 200
    body = response.json()
    assert body["totalItems"] <= 500
    items: list[dict[str, Any]] = body["items"]
    return items


async def _post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(path, json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def test_records_survive_sigkill_and_restart(server: ServerProcess) -> None:
    async with _client(server.url) as client:
        operator = await _post(client, OPS, {"name": "main", "url": ""})
        account = await _post(client, ACCOUNTS, {"operator": operator["id"], "name": "app"})
        role = await _post(
            client, ROLES, {"account": account["id"], "role": "w", "publish": ["a.>"]}
        )
        await _post(client, USERS, {"account": account["id"], "name": "u1"})
        await _post(
            client, USERS, {"account": account["id"], "name": "u2", "signing_key": role["id"]}
        )
        await _post(client, ACCESS, {"account": account["id"], "cluster": "c", "namespace": "n"})
        gone = await _post(client, USERS, {"account": account["id"], "name": "gone"})
        assert (await client.delete(f"{USERS}/{gone['id']}")).status_code == 204
        before = {path: await _all(client, path) for path in (OPS, ACCOUNTS, USERS, ROLES, ACCESS)}
    server.kill()
    await server.wait()
    await server.start()
    async with _client(server.url) as client:
        after = {path: await _all(client, path) for path in before}
    assert after == before
    assert [u["name"] for u in after[USERS]] == ["u1", "u2"]


async def test_sigkill_during_burst_keeps_every_acknowledged_create(server: ServerProcess) -> None:
    async with _client(server.url) as client:
        operator = await _post(client, OPS, {"name": "main"})
        account = await _post(client, ACCOUNTS, {"operator": operator["id"], "name": "app"})

    acknowledged: list[str] = []
    first_acks = asyncio.Event()

    async def create(client: httpx.AsyncClient, i: int) -> None:
        with contextlib.suppress(httpx.HTTPError):
            response = await client.post(USERS, json={"account": account["id"], "name": f"u{i}"})
            if response.status_code == 200:
                acknowledged.append(response.json()["id"])
                if len(acknowledged) >= 20:
                    first_acks.set()

    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(
        base_url=server.url, headers={"X-Token": TOKEN}, timeout=10, limits=limits
    ) as client:
        tasks = [asyncio.create_task(create(client, i)) for i in range(400)]
        await asyncio.wait_for(first_acks.wait(), timeout=20)
        server.kill()
        await asyncio.gather(*tasks)
    await server.wait()
    assert 20 <= len(acknowledged) < 400, "the kill should land mid-burst"

    await server.start()
    async with _client(server.url) as client:
        users = await _all(client, USERS)
        ids = {u["id"] for u in users}
        assert set(acknowledged) <= ids
        for user in users:
            assert user["jwt"] and user["seed"].startswith("SU") and user["public_key"]
            assert user["jwt"] in user["creds"] and user["seed"] in user["creds"]
        # The restarted server still enforces uniqueness and keeps serving filters.
        dup = await client.post(USERS, json={"account": account["id"], "name": users[0]["name"]})
        assert dup.status_code == 400
        found = await client.get(USERS, params={"filter": f"name = {quote(users[0]['name'])}"})
        assert [u["id"] for u in found.json()["items"]] == [users[0]["id"]]
