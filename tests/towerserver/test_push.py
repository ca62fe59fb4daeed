"""Pushing account JWTs to a real nats-server (AccountPusher, PushQueue) and how the stand-in
behaves when that server is dead, stalled, late or named by a malformed URL."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import nats
import pytest
from nats.aio.client import RawCredentials

from nats_tower_operator.towerserver import jwt
from nats_tower_operator.towerserver.natsconfig import NatsConfigInputs, render_config
from nats_tower_operator.towerserver.natsserver import NatsServer
from nats_tower_operator.towerserver.push import AccountPusher, PushError, PushQueue, PushTarget
from nats_tower_operator.towerserver.standin import TowerStandIn

from .conftest import TOKEN, USERS, can_connect, records, wait_until

MALFORMED_URLS = ["nats://[::", "not a url at all", "nats://host:notaport", "nats://:0"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _dead_url() -> str:
    """A loopback URL nothing listens on."""
    return f"nats://127.0.0.1:{_free_port()}"


@dataclass
class Account:
    key: jwt.NKey
    signing: jwt.NKey

    def user_creds(self) -> str:
        user = jwt.generate_nkey("user")
        token = jwt.user_jwt(
            user_public_key=user.public_key,
            name="u",
            iat=int(time.time()),
            signer=self.signing,
            issuer_account=self.key.public_key,
        )
        return jwt.format_user_creds(token, user.seed)


@dataclass
class Operator:
    """An operator with a SYS account and its user, built with the jwt module only."""

    key: jwt.NKey = field(default_factory=lambda: jwt.generate_nkey("operator"))
    signing: jwt.NKey = field(default_factory=lambda: jwt.generate_nkey("operator"))
    system: Account = field(
        default_factory=lambda: Account(jwt.generate_nkey("account"), jwt.generate_nkey("account"))
    )

    def account_jwt(self, account: Account, *, iat: int = 1, revoked: tuple[str, ...] = ()) -> str:
        return jwt.account_jwt(
            signer=self.signing,
            account_public_key=account.key.public_key,
            name=account.key.public_key[:8],
            iat=iat,
            signing_keys=[account.signing.public_key],
            revocations={key: iat for key in revoked},
            system=account is self.system,
        )

    @functools.cached_property
    def system_creds(self) -> str:
        return self.system.user_creds()

    def config(self, resolver_dir: Path) -> str:
        """A nats-server config that knows the SYS account only."""
        inputs = NatsConfigInputs(
            operator_public_key=self.key.public_key,
            operator_jwt=jwt.operator_jwt(
                operator=self.key, name="op", iat=1, signing_keys=[self.signing.public_key]
            ),
            system_account=self.system.key.public_key,
            account_jwts={self.system.key.public_key: self.account_jwt(self.system)},
        )
        return render_config(inputs, resolver_dir=resolver_dir)

    def target(self, urls: tuple[str, ...], account: Account, token: str) -> PushTarget:
        return PushTarget(
            urls=urls,
            system_user_creds=self.system_creds,
            account_public_key=account.key.public_key,
            account_jwt=token,
        )


def _account() -> Account:
    return Account(jwt.generate_nkey("account"), jwt.generate_nkey("account"))


@pytest.fixture
def operator() -> Operator:
    return Operator()


@pytest.fixture
async def server(operator: Operator, tmp_path: Path) -> AsyncIterator[NatsServer]:
    async with NatsServer(
        config_text=operator.config(tmp_path / "jwt"), workdir=tmp_path / "nats"
    ) as running:
        yield running


@contextlib.asynccontextmanager
async def _queue(
    pusher: AccountPusher | None = None, retry_interval: float = 0.1
) -> AsyncIterator[PushQueue]:
    queue = PushQueue(pusher or AccountPusher(timeout=1.0), retry_interval=retry_interval)
    queue.start()
    try:
        yield queue
    finally:
        await queue.close()


async def _lookup(server: NatsServer, operator: Operator, account: Account) -> str:
    """The account JWT nats-server holds (asked as the SYS user)."""
    nc = await nats.connect(
        server.client_url, user_credentials=RawCredentials(operator.system_creds)
    )
    try:
        reply = await nc.request(
            f"$SYS.REQ.ACCOUNT.{account.key.public_key}.CLAIMS.LOOKUP", b"", timeout=5
        )
    finally:
        await nc.close()
    return reply.data.decode()


# ------------------------------------------------------------------ AccountPusher


async def test_a_confirmed_push_makes_nats_server_admit_the_accounts_users(
    operator: Operator, server: NatsServer
) -> None:
    app = _account()
    token = operator.account_jwt(app, iat=10)
    assert await _lookup(server, operator, app) == ""
    pusher = AccountPusher()
    try:
        await pusher.push(operator.target((server.client_url,), app, token))
    finally:
        await pusher.close()
    assert await _lookup(server, operator, app) == token
    assert await can_connect(server.client_url, app.user_creds())


async def test_a_push_nats_server_rejects_raises_push_error(
    operator: Operator, server: NatsServer
) -> None:
    app, other = _account(), _account()
    pusher = AccountPusher()
    try:
        # The subject names another account than the JWT: nats-server answers with an error.
        wrong = operator.target((server.client_url,), other, operator.account_jwt(app))
        with pytest.raises(PushError, match="rejected"):
            await pusher.push(wrong)
        garbage = operator.target((server.client_url,), app, "not-a-jwt")
        with pytest.raises(PushError, match="rejected"):
            await pusher.push(garbage)
    finally:
        await pusher.close()


async def test_the_next_url_is_used_when_the_first_is_dead(
    operator: Operator, server: NatsServer
) -> None:
    app = _account()
    pusher = AccountPusher(timeout=1.0)
    try:
        await pusher.push(
            operator.target((_dead_url(), server.client_url), app, operator.account_jwt(app))
        )
    finally:
        await pusher.close()
    assert await can_connect(server.client_url, app.user_creds())


async def test_an_account_jwt_with_5000_revocations_is_accepted(
    operator: Operator, server: NatsServer
) -> None:
    app = _account()
    kept, revoked = app.user_creds(), app.user_creds()
    revoked_key = jwt.decode_jwt(revoked.split("\n")[1])["sub"]
    others = tuple(jwt.generate_nkey("user").public_key for _ in range(4999))
    token = operator.account_jwt(app, iat=int(time.time()), revoked=(revoked_key, *others))
    assert len(token) > 300_000
    pusher = AccountPusher()
    try:
        await pusher.push(operator.target((server.client_url,), app, token))
    finally:
        await pusher.close()
    assert await can_connect(server.client_url, kept)
    assert not await can_connect(server.client_url, revoked)


@pytest.mark.parametrize("url", MALFORMED_URLS)
async def test_a_malformed_url_is_a_push_error(operator: Operator, url: str) -> None:
    app = _account()
    pusher = AccountPusher(timeout=1.0)
    try:
        with pytest.raises(PushError):
            await pusher.push(operator.target((url,), app, operator.account_jwt(app)))
    finally:
        await pusher.close()


# ------------------------------------------------------------------ PushQueue


async def test_a_dead_server_does_not_hold_up_pushes_to_a_live_one(
    operator: Operator, server: NatsServer
) -> None:
    dead_app, live_app = _account(), _account()
    async with _queue() as queue:
        queue.submit(operator.target((_dead_url(),), dead_app, operator.account_jwt(dead_app)))
        queue.submit(
            operator.target((server.client_url,), live_app, operator.account_jwt(live_app))
        )
        # Only the live server's push can be confirmed; the dead one stays pending.
        await wait_until(lambda: queue.pending == 1, message="the live push confirmed")
        assert await can_connect(server.client_url, live_app.user_creds())
        with pytest.raises(TimeoutError):
            await queue.wait_idle(0.3)
        assert queue.pending == 1


class CountingPusher(AccountPusher):
    """An AccountPusher that counts its failed pushes."""

    def __init__(self) -> None:
        super().__init__(timeout=1.0)
        self.failures = 0

    async def push(self, target: PushTarget) -> None:
        try:
            await super().push(target)
        except PushError:
            self.failures += 1
            raise


async def test_a_failed_push_is_retried_until_the_server_is_up(
    operator: Operator, tmp_path: Path
) -> None:
    port = _free_port()
    server = NatsServer(
        config_text=operator.config(tmp_path / "jwt"), workdir=tmp_path / "nats", port=port
    )
    app = _account()
    pusher = CountingPusher()
    async with _queue(pusher) as queue:
        queue.submit(operator.target((f"nats://127.0.0.1:{port}",), app, operator.account_jwt(app)))
        await wait_until(lambda: pusher.failures >= 2, message="two failed attempts")
        assert queue.pending == 1
        async with server:
            await queue.wait_idle(10)
            assert await can_connect(server.client_url, app.user_creds())


async def test_the_latest_jwt_of_an_account_is_the_one_nats_server_ends_with(
    operator: Operator, tmp_path: Path
) -> None:
    port = _free_port()
    url = f"nats://127.0.0.1:{port}"
    app = _account()
    older = operator.account_jwt(app, iat=10)
    newer = operator.account_jwt(app, iat=20)
    pusher = CountingPusher()
    async with _queue(pusher) as queue:
        queue.submit(operator.target((url,), app, older))
        await wait_until(lambda: pusher.failures >= 1, message="a failed attempt")
        queue.submit(operator.target((url,), app, newer))
        assert queue.pending == 1
        async with NatsServer(
            config_text=operator.config(tmp_path / "jwt"), workdir=tmp_path / "nats", port=port
        ) as server:
            await queue.wait_idle(10)
            assert await _lookup(server, operator, app) == newer


class GatedPusher(AccountPusher):
    """Records pushes; the first one waits for ``release``."""

    def __init__(self) -> None:
        super().__init__()
        self.pushed: list[str] = []
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def push(self, target: PushTarget) -> None:
        if not self.pushed:
            self.started.set()
            await self.release.wait()
        self.pushed.append(target.account_jwt)


async def test_a_jwt_submitted_while_an_older_one_is_pushed_is_pushed_after_it(
    operator: Operator,
) -> None:
    app = _account()
    pusher = GatedPusher()
    async with _queue(pusher) as queue:
        queue.submit(operator.target(("nats://x:1",), app, "older"))
        await asyncio.wait_for(pusher.started.wait(), 10)
        queue.submit(operator.target(("nats://x:1",), app, "newer"))
        pusher.release.set()
        await queue.wait_idle(10)
    assert pusher.pushed == ["older", "newer"]


async def test_a_target_without_urls_is_not_queued(operator: Operator) -> None:
    app = _account()
    async with _queue() as queue:
        queue.submit(operator.target((), app, operator.account_jwt(app)))
        assert queue.pending == 0
        await queue.wait_idle(1)


@pytest.mark.parametrize("url", MALFORMED_URLS)
async def test_a_malformed_url_never_stops_the_queue(
    operator: Operator, server: NatsServer, url: str
) -> None:
    bad_app, good_app, later_app = _account(), _account(), _account()
    pusher = CountingPusher()
    async with _queue(pusher) as queue:
        queue.submit(operator.target((url,), bad_app, operator.account_jwt(bad_app)))
        queue.submit(
            operator.target((server.client_url,), good_app, operator.account_jwt(good_app))
        )
        await wait_until(lambda: queue.pending == 1, message="the good push confirmed")
        # The queue still runs after failing on the malformed URL again and again.
        await wait_until(lambda: pusher.failures >= 3, message="repeated failures")
        queue.submit(
            operator.target((server.client_url,), later_app, operator.account_jwt(later_app))
        )
        await wait_until(lambda: queue.pending == 1, message="the later push confirmed")
        for app in (good_app, later_app):
            assert await can_connect(server.client_url, app.user_creds())
        assert await _lookup(server, operator, bad_app) == ""


# ------------------------------------------------------------------ through the stand-in


@contextlib.contextmanager
def _blackhole() -> Iterator[tuple[str, Callable[[], bool]]]:
    """A TCP port that accepts connections and never says a word (a stalled nats-server);
    yields its URL and ``accept()``, true once a client connected."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.setblocking(False)
    accepted: list[socket.socket] = []

    def accept() -> bool:
        with contextlib.suppress(BlockingIOError):
            accepted.append(listener.accept()[0])
        return bool(accepted)

    try:
        yield f"nats://127.0.0.1:{listener.getsockname()[1]}", accept
    finally:
        for conn in accepted:
            conn.close()
        listener.close()


async def test_writes_answer_while_a_push_hangs_on_a_stalled_nats_server(tmp_path: Path) -> None:
    stall = 30.0
    tower = TowerStandIn(data_dir=tmp_path / "tower", token=TOKEN)
    tower.pushes = PushQueue(AccountPusher(timeout=stall))
    with _blackhole() as (url, accept):
        await tower.start()
        try:
            admin = tower.admin
            inst = await admin.create_installation(url)
            await admin.create_account(inst["public_key"], "app")
            await wait_until(accept, message="the push connected to the stalled server")
            # The push now waits up to `stall` seconds for the server's INFO.
            started = time.monotonic()
            role = await admin.create_role(inst["public_key"], "app", "r", publish=["a.>"])
            user = await admin.create_user(inst["public_key"], "app", "u", role="r")
            await admin.delete(USERS, user["id"])
            assert role["public_key"] and user["creds"]
            assert time.monotonic() - started < stall / 2
            assert tower.pushes.pending == 1
        finally:
            await tower.stop()


async def test_an_account_created_while_nats_server_is_down_reaches_it_once_up(
    tmp_path: Path,
) -> None:
    port = _free_port()
    async with TowerStandIn.running(
        data_dir=tmp_path / "tower", token=TOKEN, push_retry_interval=0.1
    ) as tower:
        admin = tower.admin
        inst = await admin.create_installation(f"nats://127.0.0.1:{port}")
        # The config knows the SYS account only: "late" exists on nats-server only if pushed.
        config = render_config(
            await admin.nats_config_inputs(inst["public_key"]), resolver_dir=tmp_path / "jwt"
        )
        await admin.create_account(inst["public_key"], "late")
        user = await admin.create_user(inst["public_key"], "late", "u")
        assert tower.pushes.pending == 1
        async with NatsServer(config_text=config, workdir=tmp_path / "nats", port=port) as nats_:
            await tower.wait_pushed(10)
            assert await can_connect(nats_.client_url, user["creds"])


@pytest.mark.parametrize("url", MALFORMED_URLS)
async def test_a_malformed_installation_url_never_breaks_writes(tmp_path: Path, url: str) -> None:
    async with TowerStandIn.running(
        data_dir=tmp_path / "tower", token=TOKEN, push_retry_interval=0.1
    ) as tower:
        admin = tower.admin
        inst = await admin.create_installation(url)
        await admin.create_account(inst["public_key"], "a")
        await admin.create_role(inst["public_key"], "a", "r", publish=["x"])
        user = await admin.create_user(inst["public_key"], "a", "u", role="r")
        async with httpx.AsyncClient(base_url=tower.url, headers={"X-Token": TOKEN}) as client:
            assert (await client.delete(records(USERS, user["id"]))).status_code == 204
        assert tower.pushes.pending == 1


class CancelSwallowingPusher(AccountPusher):
    """Fails every push and, like nats-py in places, swallows the first cancellation."""

    def __init__(self) -> None:
        super().__init__()
        self.started = asyncio.Event()
        self.swallowed = False

    async def push(self, target: PushTarget) -> None:
        self.started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            if self.swallowed:
                raise
            self.swallowed = True
        raise PushError("account JWT push failed: Error")


async def test_close_stops_the_queue_even_when_a_push_swallows_the_cancellation(
    operator: Operator,
) -> None:
    app = _account()
    pusher = CancelSwallowingPusher()
    queue = PushQueue(pusher, retry_interval=0.05)
    queue.start()
    queue.submit(operator.target((_dead_url(),), app, operator.account_jwt(app)))
    await asyncio.wait_for(pusher.started.wait(), 10)
    closing = asyncio.ensure_future(queue.close())
    done, _ = await asyncio.wait({closing}, timeout=10)
    if not done:  # clean up the stuck queue before failing
        closing.cancel()
        await asyncio.wait({closing}, timeout=10)
    assert done, "PushQueue.close() hung after a swallowed cancellation"
    assert pusher.swallowed
