"""``nats-tower-operator tower ...``: ``serve`` as a real process, and the admin commands
against a running stand-in, naming installations by public key and accounts by name."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from nats_tower_operator.cli import main
from nats_tower_operator.towerserver.jwt import verify_jwt
from nats_tower_operator.towerserver.natsserver import NatsServer
from nats_tower_operator.towerserver.standin import TowerStandIn

from .conftest import PLACEHOLDER_URL, TOKEN, can_connect, records, wait_until

ENTRY_POINT = Path(sys.executable).parent / "nats-tower-operator"


@pytest.fixture(autouse=True)
def _no_tower_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NATS_TOWER_URL", raising=False)
    monkeypatch.delenv("NATS_TOWER_API_TOKEN", raising=False)


class Cli:
    """Runs ``tower`` commands in-process against one Tower and captures their output."""

    def __init__(self, url: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.url = url
        self._capsys = capsys

    async def run(self, *argv: str, token: str | None = TOKEN) -> tuple[int, str, str]:
        args = ["tower", *argv, "--tower-url", self.url]
        if token is not None:
            args += ["--token", token]
        # main() runs its own event loop: give it a thread.
        code = await asyncio.to_thread(main, args)
        captured = self._capsys.readouterr()
        return code, captured.out, captured.err

    async def ok(self, *argv: str) -> Any:
        code, out, err = await self.run(*argv)
        assert code == 0, err
        return json.loads(out) if out.strip() else None

    async def fails(self, *argv: str, token: str | None = TOKEN) -> str:
        code, out, err = await self.run(*argv, token=token)
        assert code == 1, (out, err)
        assert out == ""
        return err


@pytest.fixture
def cli(tower: TowerStandIn, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(tower.url, capsys)


async def test_admin_commands_build_a_working_installation(cli: Cli, tmp_path: Path) -> None:
    inst = await cli.ok(
        "create-installation", "--nats-url", PLACEHOLDER_URL, "--description", "main"
    )
    key = inst["public_key"]
    assert key.startswith("O") and inst["url"] == PLACEHOLDER_URL
    account = await cli.ok(
        "create-account", "--installation", key, "--name", "orders", "--user-ttl", "600"
    )
    assert account["operator"] == inst["id"] and account["public_key"].startswith("A")
    role = await cli.ok(
        "create-role", "--installation", key, "--account", "orders", "--role", "writer",
        "--publish", "orders.>, audit.x", "--subscribe", "_INBOX.>",
    )  # fmt: skip
    assert role["publish"] == ["orders.>", "audit.x"] and role["subscribe"] == ["_INBOX.>"]
    user = await cli.ok(
        "create-user", "--installation", key, "--account", "orders", "--name", "u",
        "--role", "writer",
    )  # fmt: skip
    assert user["signing_key"] == role["id"]
    claims = verify_jwt(user["jwt"])
    assert claims["iss"] == role["public_key"]
    assert claims["exp"] == claims["iat"] + 600
    link = await cli.ok(
        "link", "--installation", key, "--account", "orders", "--cluster", "c1",
        "--namespace", "ns",
    )  # fmt: skip
    assert (link["account"], link["cluster"], link["namespace"]) == (account["id"], "c1", "ns")

    listed = await cli.ok("list")
    assert sorted(a["name"] for a in listed["nats_auth_accounts"]) == ["SYS", "orders"]
    assert [a["id"] for a in listed["nats_auth_k8s_access"]] == [link["id"]]
    assert len(listed["nats_auth_operators"]) == 1
    only = await cli.ok("list", "nats_auth_users", "--filter", "name = 'u'")
    assert list(only) == ["nats_auth_users"]
    assert [u["id"] for u in only["nats_auth_users"]] == [user["id"]]

    unlink = ("unlink", "--installation", key, "--account", "orders")
    place = ("--cluster", "c1", "--namespace", "ns")
    assert await cli.ok(*unlink, *place) == {"removed": True}
    assert await cli.ok(*unlink, *place) == {"removed": False}
    assert (await cli.ok("list", "nats_auth_k8s_access"))["nats_auth_k8s_access"] == []

    conf = tmp_path / "conf" / "nats.conf"
    assert await cli.ok("nats-config", "--installation", key, "--out", str(conf)) is None
    text = conf.read_text()
    assert account["public_key"] in text and str(tmp_path / "conf" / "jwt") in text
    # The written config preloads every account JWT (with the role's scope): the role's
    # user is admitted without any push.
    async with NatsServer(config_text=text, workdir=tmp_path / "nats") as server:
        assert await can_connect(server.client_url, user["creds"])


async def test_unknown_installation_account_or_role_exit_1_with_a_clear_message(
    cli: Cli, tower: TowerStandIn
) -> None:
    inst = await tower.admin.create_installation(PLACEHOLDER_URL)
    key = inst["public_key"]
    await tower.admin.create_account(key, "orders")
    unknown = "O" + "A" * 55

    err = await cli.fails("create-account", "--installation", unknown, "--name", "x")
    assert err == f"error: installation {unknown} not found (or the API token is wrong)\n"
    err = await cli.fails("create-user", "--installation", key, "--account", "nope", "--name", "u")
    assert err == f"error: account 'nope' not found in installation {key}\n"
    err = await cli.fails("create-role", "--installation", key, "--account", "nope", "--role", "r")
    assert "account 'nope' not found" in err
    err = await cli.fails(
        "create-user", "--installation", key, "--account", "orders", "--name", "u",
        "--role", "ghost",
    )  # fmt: skip
    assert err == "error: role 'ghost' not found in account 'orders'\n"
    err = await cli.fails(
        "link", "--installation", unknown, "--account", "orders", "--cluster", "c",
        "--namespace", "n",
    )  # fmt: skip
    assert "not found (or the API token is wrong)" in err
    err = await cli.fails("nats-config", "--installation", unknown, "--out", "/nonexistent/x")
    assert "not found" in err
    # Nothing was created by the failed commands.
    assert [u["name"] for u in await tower.admin.list("nats_auth_users")] == ["sys"]


async def test_a_wrong_token_exits_1_saying_the_token_may_be_wrong(
    cli: Cli, tower: TowerStandIn
) -> None:
    inst = await tower.admin.create_installation(PLACEHOLDER_URL)
    err = await cli.fails(
        "create-account", "--installation", inst["public_key"], "--name", "x", token="wrong"
    )
    assert "(or the API token is wrong)" in err
    code, out, _ = await cli.run("list", "nats_auth_operators", token="wrong")
    assert code == 0 and json.loads(out) == {"nats_auth_operators": []}


async def test_a_refused_create_exits_1_with_tower_s_validation_error(
    cli: Cli, tower: TowerStandIn
) -> None:
    inst = await tower.admin.create_installation(PLACEHOLDER_URL)
    await tower.admin.create_account(inst["public_key"], "orders")
    err = await cli.fails(
        "create-account", "--installation", inst["public_key"], "--name", "orders"
    )
    assert err.startswith("error: POST /api/collections/nats_auth_accounts/records: HTTP 400")
    assert "validation_not_unique" in err


async def test_admin_commands_without_a_token_exit_2(cli: Cli) -> None:
    code, out, err = await cli.run("list", token=None)
    assert code == 2 and out == ""
    assert "an API token is required" in err


async def test_admin_commands_read_url_and_token_from_env_or_a_token_file(
    tower: TowerStandIn,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    await tower.admin.create_installation(PLACEHOLDER_URL)
    monkeypatch.setenv("NATS_TOWER_URL", tower.url)
    monkeypatch.setenv("NATS_TOWER_API_TOKEN", TOKEN)
    assert await asyncio.to_thread(main, ["tower", "list", "nats_auth_operators"]) == 0
    assert len(json.loads(capsys.readouterr().out)["nats_auth_operators"]) == 1

    monkeypatch.delenv("NATS_TOWER_API_TOKEN")
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    argv = ["tower", "list", "nats_auth_operators", "--token-file", str(token_file)]
    assert await asyncio.to_thread(main, argv) == 0
    assert len(json.loads(capsys.readouterr().out)["nats_auth_operators"]) == 1


async def test_serve_without_a_token_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = await asyncio.to_thread(main, ["tower", "serve", "--dir", str(tmp_path / "d")])
    assert code == 2
    assert "an API token is required" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def _processes_using(path: Path) -> list[int]:
    """Pids of processes whose command line mentions ``path``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(path).encode() in cmdline:
            found.append(int(entry.name))
    return found


async def test_serve_prints_url_token_and_admin_ui_and_sigterm_stops_it_and_pocketbase(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "tower"
    token_file = tmp_path / "token"
    token_file.write_text("from-a-file\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NATS_TOWER_")}
    process = await asyncio.create_subprocess_exec(
        str(ENTRY_POINT), "tower", "serve", "--dir", str(data_dir),
        "--token-file", str(token_file), "--port", "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        lines = [
            (await asyncio.wait_for(process.stdout.readline(), timeout=30)).decode()
            for _ in range(3)
        ]
        prefix = "NATS Tower stand-in listening on "
        assert lines[0].startswith(prefix), lines
        url = lines[0][len(prefix) :].strip()
        assert url.startswith("http://127.0.0.1:")
        assert lines[1] == "  API token (X-Token): from-a-file\n"
        admin_prefix = f"  admin UI: {url}/_/  (admin@tower.local / "
        assert lines[2].startswith(admin_prefix) and lines[2].endswith(")\n"), lines[2]
        password = lines[2][len(admin_prefix) : -2]

        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            login = await http.post(
                "/api/collections/_superusers/auth-with-password",
                json={"identity": "admin@tower.local", "password": password},
            )
            assert login.status_code == 200
            created = await http.post(
                records("nats_auth_operators"),
                json={"url": PLACEHOLDER_URL},
                headers={"X-Token": "from-a-file"},
            )
            assert created.status_code == 200 and created.json()["sign_seed"].startswith("SO")
            other = await http.get(records("nats_auth_operators"), headers={"X-Token": "x"})
            assert other.json()["items"] == []

        pocketbase = [pid for pid in _processes_using(data_dir) if pid != process.pid]
        assert len(pocketbase) == 1, pocketbase  # pocketbase serve --dir <data_dir>
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=20) == 0
        await wait_until(lambda: not _processes_using(data_dir), message="pocketbase stopped")
        assert not await can_reach(url)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), timeout=20)
            except TimeoutError:
                process.kill()
                await process.wait()
        for leftover in _processes_using(data_dir):  # never leak a PocketBase of this test
            os.kill(leftover, signal.SIGKILL)


async def can_reach(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            await http.get(url + "/api/health")
    except httpx.TransportError:
        return False
    return True


async def test_creds_from_create_user_work_once_the_account_is_pushed(
    cli: Cli, tower: TowerStandIn, tmp_path: Path
) -> None:
    inst = await cli.ok("create-installation", "--nats-url", PLACEHOLDER_URL)
    server = await tower.start_nats(inst["public_key"], workdir=tmp_path / "nats")
    await cli.ok("create-account", "--installation", inst["public_key"], "--name", "app")
    user = await cli.ok(
        "create-user", "--installation", inst["public_key"], "--account", "app", "--name", "u"
    )
    await tower.wait_pushed(10)
    assert await can_connect(server.client_url, user["creds"])


async def test_an_unreachable_tower_exits_1_with_a_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    cli = Cli(dead, capsys)
    err = await cli.fails("list", "nats_auth_operators")
    assert err.startswith("error: GET /api/collections/nats_auth_operators/records: ")
    assert f"no answer from Tower at {dead}" in err
