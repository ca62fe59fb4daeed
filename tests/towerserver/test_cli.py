"""The ``tower`` command: admin subcommands on a database, ``serve`` with a token file."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from nats.aio.client import RawCredentials

from nats_tower_operator.towerserver import cli
from nats_tower_operator.towerserver.natsserver import NatsServer


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code = cli.main(["tower", *argv])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out) if out.strip() else None


def test_register_adds_tower_with_handlers() -> None:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["tower", "list", "--db", "x.db"])
    assert callable(args.handler)
    with pytest.raises(SystemExit):
        parser.parse_args(["tower", "create-account", "--db", "x.db"])  # --name missing


def test_admin_commands_build_a_working_installation(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = str(tmp_path / "tower.db")
    op = _run(capsys, "create-installation", "--db", db, "--name", "main", "--url", "")
    assert op["public_key"].startswith("O")
    acc = _run(
        capsys,
        "create-account",
        "--db",
        db,
        "--installation",
        op["public_key"],
        "--name",
        "orders",
        "--user-ttl",
        "600",
    )
    assert acc["operator"] == op["id"] and acc["user_jwt_ttl"] == 600
    role = _run(
        capsys,
        "create-role",
        "--db",
        db,
        "--account-id",
        acc["id"],
        "--role",
        "writer",
        "--publish",
        "orders.>,audit.x",
        "--subscribe",
        "_INBOX.>",
    )
    assert role["publish"] == ["orders.>", "audit.x"] and "sign_seed" not in role
    link = _run(
        capsys,
        "link",
        "--db",
        db,
        "--account-id",
        acc["id"],
        "--cluster",
        "c1",
        "--namespace",
        "ns",
    )
    assert link["cluster"] == "c1"
    user = _run(
        capsys, "create-user", "--db", db, "--account-id", acc["id"], "--name", "u",
        "--role-id", role["id"],
    )  # fmt: skip
    listed = _run(capsys, "list", "--db", db)
    assert [a["name"] for a in listed["nats_auth_accounts"]] == ["SYS", "orders"]
    assert len(listed["nats_auth_k8s_access"]) == 1
    only = _run(capsys, "list", "nats_auth_users", "--db", db, "--filter", "name = 'u'")
    assert list(only) == ["nats_auth_users"] and only["nats_auth_users"][0]["id"] == user["id"]
    assert _run(
        capsys, "unlink", "--db", db, "--account-id", acc["id"], "--cluster", "c1",
        "--namespace", "ns",
    ) == {"removed": True}  # fmt: skip
    token = _run(capsys, "create-token", "--db", db, "--name", "ci")["token"]
    assert token.startswith("nt_")

    conf = tmp_path / "nats" / "nats.conf"
    _run(capsys, "nats-config", "--db", db, "--installation", op["public_key"], "--out", str(conf))

    async def connect_with_config() -> None:
        async with NatsServer(config_text=conf.read_text(), workdir=tmp_path / "ns") as server:
            nc = await nats.connect(
                server.client_url,
                user_credentials=RawCredentials(user["creds"]),
                allow_reconnect=False,
                max_reconnect_attempts=1,
            )
            await nc.close()

    asyncio.run(connect_with_config())


def test_admin_command_errors_exit_nonzero(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = cli.main(
        ["tower", "create-account", "--db", str(tmp_path / "d.db"), "--installation", "nope",
         "--name", "x"]
    )  # fmt: skip
    assert code == 1
    assert "operator" in capsys.readouterr().err


def test_serve_reads_token_file(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "nats_tower_operator.towerserver.cli", "tower", "serve",
            "--db", str(tmp_path / "db"), "--token-file", str(token_file), "--port", "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().decode().rsplit(" ", 1)[1].strip()
        path = "/api/collections/nats_auth_operators/records"
        assert httpx.get(url + path, headers={"X-Token": "from-file"}).status_code == 200
        assert httpx.get(url + path, headers={"X-Token": "other"}).status_code == 403
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
