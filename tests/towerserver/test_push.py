"""Keeping nats-server in sync: dead servers do not block the API, pushes are retried,
config files written by the server start a real nats-server."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import nats
import pytest
from nats.aio.client import RawCredentials

from nats_tower_operator.towerserver.natsserver import NatsServer
from nats_tower_operator.towerserver.natsync import render_config
from nats_tower_operator.towerserver.server import TowerServer

from .conftest import TOKEN


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _can_connect(url: str, creds: str) -> bool:
    try:
        nc = await nats.connect(
            url,
            user_credentials=RawCredentials(creds),
            allow_reconnect=False,
            max_reconnect_attempts=1,
            reconnect_time_wait=0.1,
            connect_timeout=2,
        )
    except (nats.errors.Error, OSError):
        return False
    await nc.close()
    return True


async def test_dead_nats_server_does_not_block_the_api(tower: TowerServer) -> None:
    dead = f"nats://127.0.0.1:{_free_port()}"
    operator = await tower.create_installation("dead", dead)
    account = await tower.create_account(operator["id"], "a")
    assert account["id"] in tower.sync.pending
    started = time.monotonic()
    for i in range(5):
        await tower.create_role(account["id"], f"r{i}", publish=["x"])
    assert time.monotonic() - started < 2
    assert account["id"] in tower.sync.pending


async def test_failed_push_is_retried_when_nats_server_comes_back(
    tower: TowerServer, tmp_path: Path
) -> None:
    operator = await tower.create_installation("flaky")
    account = await tower.create_account(operator["id"], "a")
    config = await tower.nats_config(operator["id"], resolver_dir=tmp_path / "jwt")
    port = _free_port()
    server = NatsServer(config_text=config, workdir=tmp_path / "n1", port=port)
    await tower.service.update(
        "nats_auth_operators", operator["id"], {"url": f"nats://127.0.0.1:{port}"}
    )
    # nats-server is down while the role is created: the push fails and is kept pending.
    role = await tower.create_role(account["id"], "late", publish=["a.>"], subscribe=["a.>"])
    user = await tower.create_user(account["id"], "u", signing_key_id=role["id"])
    assert account["id"] in tower.sync.pending
    async with server:
        # The server started from the old config does not know the role yet; the retry
        # loop pushes the account JWT within a few seconds.
        deadline = time.monotonic() + 8
        while not await _can_connect(server.client_url, user["creds"]):
            assert time.monotonic() < deadline, "pending push never reached nats-server"
            await asyncio.sleep(0.2)
        assert account["id"] not in tower.sync.pending


async def test_config_dir_files_start_nats_server(tmp_path: Path) -> None:
    config_dir = tmp_path / "conf"
    async with TowerServer.running(
        db_path=tmp_path / "db", token=TOKEN, nats_config_dir=config_dir
    ) as srv:
        operator = await srv.create_installation("files")
        account = await srv.create_account(operator["id"], "acct")
        role = await srv.create_role(account["id"], "r", publish=["p.>"])
        user = await srv.create_user(account["id"], "u", signing_key_id=role["id"])
        path = config_dir / f"{operator['public_key']}.conf"
        text = path.read_text()
        assert account["public_key"] in text and "type: full" in text
        async with NatsServer(config_text=text, workdir=tmp_path / "nats") as server:
            assert await _can_connect(server.client_url, user["creds"])


def test_render_config_mentions_every_account() -> None:
    from nats_tower_operator.towerserver.service import ConfigInputs

    text = render_config(
        ConfigInputs(
            operator_id="o",
            operator_public_key="OKEY",
            operator_jwt="op.jwt.sig",
            system_account="ASYS",
            account_jwts={"ASYS": "sys.jwt.sig", "AAPP": "app.jwt.sig"},
        ),
        resolver_dir='/tmp/with "quote"',
    )
    assert 'operator: "op.jwt.sig"' in text
    assert 'system_account: "ASYS"' in text
    assert 'dir: "/tmp/with \\"quote\\""' in text
    assert '  AAPP: "app.jwt.sig"' in text and '  ASYS: "sys.jwt.sig"' in text
    assert "allow_delete: false" in text


@pytest.mark.parametrize("url", ["nats://[::", "not a url at all", "nats://host:notaport"])
async def test_malformed_urls_never_break_writes(tower: TowerServer, url: str) -> None:
    operator = await tower.create_installation("weird", url)
    account = await tower.create_account(operator["id"], "a")
    await tower.create_role(account["id"], "r")
    assert account["id"] in tower.sync.pending
