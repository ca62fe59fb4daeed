"""Pushing account JWTs to nats-server, as NATS Tower does after every account change.

:class:`AccountPusher` sends one account JWT over NATS as the installation's system user
(``$SYS.REQ.ACCOUNT.<pubkey>.CLAIMS.UPDATE``) and checks nats-server's reply.
:class:`PushQueue` keeps the latest JWT per account and pushes it in the background,
retrying failures every ``retry_interval`` seconds (Tower's own retry runs every 5 minutes;
the stand-in retries faster so tests and the sandbox converge quickly).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Any

import nats
import nats.errors
from nats.aio.client import Client, RawCredentials

__all__ = ["AccountPusher", "PushError", "PushQueue", "PushTarget"]

log = logging.getLogger(__name__)


class PushError(Exception):
    """nats-server did not confirm an account JWT update."""


@dataclass(frozen=True)
class PushTarget:
    """One account JWT for one installation's nats-server."""

    urls: tuple[str, ...]
    system_user_creds: str
    account_public_key: str
    account_jwt: str

    def __repr__(self) -> str:
        return f"PushTarget(account={self.account_public_key!r}, urls={self.urls!r})"


async def _ignore_nats_error(exc: Exception) -> None:
    log.debug("nats client error during push: %s", type(exc).__name__)


class AccountPusher:
    """Pushes account JWTs over NATS, one cached system-user connection per server list."""

    def __init__(self, *, timeout: float = 2.0) -> None:
        self._timeout = timeout
        self._conns: dict[tuple[tuple[str, ...], str], Client] = {}
        self._lock = asyncio.Lock()

    async def _connection(self, target: PushTarget) -> Client:
        key = (target.urls, target.system_user_creds)
        async with self._lock:
            client = self._conns.get(key)
            if client is not None and not client.is_connected:
                await self._drop(key)
                client = None
            if client is None:
                client = await nats.connect(
                    list(target.urls),
                    user_credentials=RawCredentials(target.system_user_creds),
                    connect_timeout=self._timeout,
                    allow_reconnect=False,
                    # nats-py: 0 would retry forever; 1 = try each server at most twice.
                    max_reconnect_attempts=1,
                    reconnect_time_wait=0.1,
                    error_cb=_ignore_nats_error,
                    name="tower-push",
                )
                self._conns[key] = client
            return client

    async def _drop(self, key: tuple[tuple[str, ...], str]) -> None:
        client = self._conns.pop(key, None)
        if client is not None:
            with contextlib.suppress(nats.errors.Error, OSError, asyncio.TimeoutError):
                await client.close()

    async def push(self, target: PushTarget) -> None:
        """Send the account JWT and wait for nats-server to confirm; :class:`PushError` if not."""
        subject = f"$SYS.REQ.ACCOUNT.{target.account_public_key}.CLAIMS.UPDATE"
        try:
            async with asyncio.timeout(self._timeout * 2):
                client = await self._connection(target)
                reply = await client.request(
                    subject, target.account_jwt.encode(), timeout=self._timeout
                )
        except (TimeoutError, nats.errors.Error, OSError, ValueError) as exc:
            # ValueError: nats-py's answer to a malformed URL in the installation's url field.
            await self._drop((target.urls, target.system_user_creds))
            raise PushError(f"account JWT push failed: {type(exc).__name__}") from None
        _check_reply(reply.data)

    async def close(self) -> None:
        """Close every cached connection."""
        for key in list(self._conns):
            await self._drop(key)


def _check_reply(data: bytes) -> None:
    try:
        body: Any = json.loads(data)
    except ValueError:
        raise PushError("account JWT push: unreadable reply") from None
    if not isinstance(body, dict):
        raise PushError("account JWT push: unexpected reply")
    error = body.get("error")
    if error:
        description = error.get("description", "") if isinstance(error, dict) else str(error)
        raise PushError(f"account JWT push rejected: {description}")
    result = body.get("data")
    if not isinstance(result, dict) or result.get("code") != 200:
        raise PushError("account JWT push: no success in reply")


class PushQueue:
    """The latest JWT per account, pushed in the background and retried until confirmed."""

    def __init__(self, pusher: AccountPusher | None = None, *, retry_interval: float = 2.0) -> None:
        self._pusher = pusher or AccountPusher()
        self._retry_interval = retry_interval
        self._pending: dict[str, PushTarget] = {}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._warned: set[tuple[str, ...]] = set()

    @property
    def pending(self) -> int:
        """How many accounts still wait for a confirmed push."""
        return len(self._pending)

    def submit(self, target: PushTarget) -> None:
        """Queue ``target``; it replaces an older JWT of the same account."""
        if not target.urls:
            return
        self._pending[target.account_public_key] = target
        self._idle.clear()
        self._wake.set()

    async def wait_idle(self, timeout: float) -> None:
        """Wait until every queued JWT was confirmed; TimeoutError otherwise."""
        async with asyncio.timeout(timeout):
            await self._idle.wait()

    def start(self) -> None:
        """Start the background pusher."""
        self._task = asyncio.create_task(self._run(), name="tower-push-queue")

    async def close(self) -> None:
        """Stop pushing and close the NATS connections."""
        if self._task is not None:
            # nats-py swallows a CancelledError in places (e.g. while closing a failed
            # connection), so the loop also stops on this flag instead of running forever.
            self._closed = True
            self._wake.set()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._pusher.close()

    async def _run(self) -> None:
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            failed = await self._push_pending()
            if not self._pending:
                self._idle.set()
            elif failed:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._retry_interval):
                        await self._wake.wait()
                self._wake.set()

    async def _push_pending(self) -> bool:
        failed_servers: set[tuple[str, ...]] = set()
        for account, target in list(self._pending.items()):
            if self._closed:
                break
            if target.urls in failed_servers:
                continue
            try:
                await self._pusher.push(target)
            except PushError as exc:
                failed_servers.add(target.urls)
                if target.urls not in self._warned:
                    self._warned.add(target.urls)
                    log.warning("account %s not pushed to nats-server: %s", account, exc)
                continue
            self._warned.discard(target.urls)
            if self._pending.get(account) is target:
                del self._pending[account]
        return bool(failed_servers)
