"""Tower unreachable in the middle of a burst: Warnings, then full recovery, no duplicates."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest

from nats_tower_operator.kube import KubeClient
from nats_tower_operator.reconcilers.labels import Reason
from nats_tower_operator.sandbox import Environment

from .harness import (
    OperatorHandle,
    assert_creds_work,
    create_pod,
    events_for,
    labelled_pod,
    tower_users,
    wait_secret,
    wait_until,
)


class CuttableProxy:
    """A TCP proxy to Tower; while cut, new connections are closed at once."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self.cut = False
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    def sever(self) -> None:
        """Cut: refuse new connections and drop the open ones (keep-alive included)."""
        self.cut = True
        for writer in list(self._conns):
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(self._host, self._port)
        self._conns.update({writer, up_writer})

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._conns.difference_update({writer, up_writer})

    async def close(self) -> None:
        self.sever()
        if self._server is not None:
            self._server.close()


@pytest.fixture
async def proxy(env: Environment) -> AsyncIterator[CuttableProxy]:
    p = CuttableProxy(env.tower.url)
    await p.start()
    yield p
    await p.close()


@pytest.mark.timeout(90)
async def test_burst_survives_tower_outage_without_duplicate_users(
    env: Environment, kube: KubeClient, operator: OperatorHandle, proxy: CuttableProxy
) -> None:
    await operator.start(NATS_TOWER_URL=proxy.url, NATS_TOWER_TIMEOUT="1")
    for i in range(5):
        await create_pod(kube, labelled_pod(f"early-{i}", secret=f"early-{i}"))
    for i in range(5):
        await wait_secret(kube, "default", f"early-{i}")

    proxy.sever()
    for i in range(20):
        await create_pod(kube, labelled_pod(f"app-{i}", secret=f"app-{i}"))

    # Barrier: every new credential failed during the outage and failed again on its retry
    # (repeats of an Event are aggregated into its count), so the operator is backing off.
    async def each_failed_twice() -> bool:
        for i in range(20):
            told = [
                int(e.get("count") or 1)
                for e in await events_for(kube, "default", f"app-{i}")
                if e.get("reason") == Reason.ERROR_CREATING_USER
            ]
            if sum(told) < 2:
                return False
        return True

    await wait_until(each_failed_twice, timeout=45, what="two failures per credential")
    proxy.cut = False

    secrets = [await wait_secret(kube, "default", f"app-{i}", timeout=60) for i in range(20)]
    for secret in secrets[:3]:
        await assert_creds_work(secret)
    names = Counter(u["name"] for u in await tower_users(env))
    assert all(count == 1 for count in names.values()), names
    assert len(names) == 25
