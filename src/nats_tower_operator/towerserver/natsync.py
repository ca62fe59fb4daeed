"""Keeping nats-server in step with the store: config files and account JWT pushes.

* :func:`render_config` writes the operator-mode part of a nats-server configuration for one
  installation (operator JWT, system account, a ``full`` resolver and every account JWT
  preloaded).
* :class:`AccountPusher` sends an account JWT to a running nats-server as the installation's
  system account user (``$SYS.REQ.ACCOUNT.<pubkey>.CLAIMS.UPDATE``) and checks the reply.
* :class:`NatsSync` listens to the service: after each commit it pushes the changed accounts
  (serialised per account, always the latest stored JWT), remembers failed pushes and retries
  them in the background, and optionally rewrites config files in a directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import nats.errors
from nats.aio.client import Client, RawCredentials

from nats_tower_operator.towerserver.service import ConfigInputs, PushTarget, TowerService

__all__ = ["AccountPusher", "NatsSync", "PushError", "render_config", "write_config"]

log = logging.getLogger(__name__)


class PushError(Exception):
    """nats-server did not confirm an account JWT update."""


def _q(text: str) -> str:
    return json.dumps(text)


def render_config(
    inputs: ConfigInputs,
    *,
    resolver_dir: str | Path,
    host: str | None = None,
    port: int | None = None,
) -> str:
    """The nats-server configuration text of one installation in operator mode."""
    lines = [f"# nats-server config for NATS installation {inputs.operator_public_key}"]
    if host is not None:
        lines.append(f"host: {_q(host)}")
    if port is not None:
        lines.append(f"port: {port}")
    lines += [
        f"operator: {_q(inputs.operator_jwt)}",
        f"system_account: {_q(inputs.system_account)}",
        "resolver: {",
        "  type: full",
        f"  dir: {_q(str(resolver_dir))}",
        "  allow_delete: false",
        '  interval: "2m"',
        "}",
        "resolver_preload: {",
    ]
    lines += [f"  {pub}: {_q(token)}" for pub, token in sorted(inputs.account_jwts.items())]
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_config(path: Path, text: str) -> None:
    """Atomically replace ``path`` with ``text`` (owner-readable only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@dataclass
class _Conn:
    urls: tuple[str, ...]
    creds: str
    client: Client


async def _log_nats_error(exc: Exception) -> None:
    log.debug("nats client error during push: %s", type(exc).__name__)


class AccountPusher:
    """Pushes account JWTs over NATS, one cached system-user connection per installation."""

    def __init__(self, *, timeout: float = 2.0) -> None:
        self._timeout = timeout
        self._conns: dict[str, _Conn] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def _connection(self, target: PushTarget) -> Client:
        lock = self._locks.setdefault(target.operator_id, asyncio.Lock())
        async with lock:
            conn = self._conns.get(target.operator_id)
            if conn is not None and (
                conn.urls != target.urls
                or conn.creds != target.system_user_creds
                or not conn.client.is_connected
            ):
                await self._drop(target.operator_id)
                conn = None
            if conn is None:
                client = await nats.connect(
                    list(target.urls),
                    user_credentials=RawCredentials(target.system_user_creds),
                    connect_timeout=self._timeout,
                    allow_reconnect=False,
                    # nats-py: 0 would retry forever; 1 = try each server at most twice.
                    max_reconnect_attempts=1,
                    reconnect_time_wait=0.1,
                    error_cb=_log_nats_error,
                    name="tower-push",
                )
                conn = _Conn(urls=target.urls, creds=target.system_user_creds, client=client)
                self._conns[target.operator_id] = conn
            return conn.client

    async def _drop(self, operator_id: str) -> None:
        conn = self._conns.pop(operator_id, None)
        if conn is not None:
            with contextlib.suppress(nats.errors.Error, OSError, asyncio.TimeoutError):
                await conn.client.close()

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
            await self._drop(target.operator_id)
            raise PushError(f"account JWT push failed: {type(exc).__name__}") from None
        _check_reply(reply.data)

    async def close(self) -> None:
        """Close every cached connection."""
        for operator_id in list(self._conns):
            await self._drop(operator_id)


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


class NatsSync:
    """Service listener that pushes changed account JWTs and keeps config files current."""

    def __init__(
        self,
        service: TowerService,
        *,
        pusher: AccountPusher | None = None,
        config_dir: Path | None = None,
        retry_interval: float = 2.0,
    ) -> None:
        self._service = service
        self._pusher = pusher or AccountPusher()
        self._config_dir = config_dir
        self._retry_interval = retry_interval
        self._locks: dict[str, asyncio.Lock] = {}
        self._dirty: set[str] = set()
        # (operator id, urls) whose last push failed: API requests do not wait on them again.
        self._failing: set[tuple[str, tuple[str, ...]]] = set()
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> frozenset[str]:
        """Account ids whose last push failed (or was deferred) and will be retried."""
        return frozenset(self._dirty)

    async def start(self, *, push_all: bool = True) -> None:
        """Listen to the service; queue every account for a push; start the retry loop."""
        self._service.add_listener(self)
        if push_all:
            self._dirty.update(await self._service.all_account_ids())
        if self._config_dir is not None:
            await self.write_all_configs()
        self._task = asyncio.create_task(self._retry_loop(), name="towerserver-natsync")

    async def close(self) -> None:
        """Stop retrying and close the NATS connections."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._pusher.close()

    async def accounts_changed(self, account_ids: Sequence[str]) -> None:
        """Push each changed account now (failures are retried later)."""
        operators: set[str] = set()
        for account_id in account_ids:
            operator_id = await self.push_account(account_id, wait_if_failing=False)
            if operator_id:
                operators.add(operator_id)
        for operator_id in operators:
            await self._write_config(operator_id)

    async def account_removed(self, target: PushTarget) -> None:
        """Push the final (disabled) JWT of a deleted account, once."""
        if target.urls:
            await self._push(target)
        await self._write_config(target.operator_id)

    async def _push(self, target: PushTarget) -> bool:
        key = (target.operator_id, target.urls)
        try:
            await self._pusher.push(target)
        except Exception as exc:  # logged: the change is committed already and is retried
            reason = str(exc) if isinstance(exc, PushError) else type(exc).__name__
            if key not in self._failing:
                log.warning(
                    "account %s not pushed to nats-server: %s", target.account_public_key, reason
                )
            self._failing.add(key)
            return False
        self._failing.discard(key)
        return True

    async def push_account(self, account_id: str, *, wait_if_failing: bool = True) -> str | None:
        """Push the latest stored JWT of one account; its operator id (None if gone).

        With ``wait_if_failing`` false, an account whose installation's nats-server failed
        the last push is only queued for the retry loop, so API requests do not wait on a
        dead server.
        """
        lock = self._locks.setdefault(account_id, asyncio.Lock())
        async with lock:
            target = await self._service.push_target(account_id)
            if target is None:
                self._dirty.discard(account_id)
                return None
            if not target.urls:
                self._dirty.discard(account_id)
            elif not wait_if_failing and (target.operator_id, target.urls) in self._failing:
                self._dirty.add(account_id)
            elif await self._push(target):
                self._dirty.discard(account_id)
            else:
                self._dirty.add(account_id)
            return target.operator_id

    async def retry_pending(self) -> None:
        """Push every pending account once; stop early for an installation that fails."""
        failed: set[str] = set()
        for account_id in sorted(self._dirty):
            target = await self._service.push_target(account_id)
            if target is None or target.operator_id in failed:
                if target is None:
                    self._dirty.discard(account_id)
                continue
            await self.push_account(account_id)
            if account_id in self._dirty:
                failed.add(target.operator_id)

    async def _retry_loop(self) -> None:
        while True:
            await asyncio.sleep(self._retry_interval)
            await self.retry_pending()

    async def write_all_configs(self) -> None:
        """Write the config file of every installation into the config directory."""
        if self._config_dir is None:
            return
        for operator_id in await self._service.operator_ids():
            await self._write_config(operator_id)

    async def _write_config(self, operator_id: str) -> None:
        if self._config_dir is None:
            return
        inputs = await self._service.config_inputs(operator_id)
        base = self._config_dir / inputs.operator_public_key
        text = render_config(inputs, resolver_dir=base.with_name(base.name + "-jwt"))
        await asyncio.to_thread(write_config, base.with_name(base.name + ".conf"), text)
