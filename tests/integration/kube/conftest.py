"""Fixtures for the kube client tests against the in-process Kubernetes API emulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from nats_tower_operator.emulator.server import Emulator
from nats_tower_operator.kube import KubeClient, KubeConfig, RetryPolicy

from .counting import CountingTransport

FAST_RETRY = RetryPolicy(max_attempts=4, backoff_base=0.01, backoff_cap=0.05, retry_after_cap=0.05)


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator.running(host="127.0.0.1", port=0, bookmark_interval=0.2) as emulator:
        yield emulator


@pytest.fixture
def transport() -> CountingTransport:
    """The ``client``'s transport: ``transport.sent["list pods"]`` counts what it sent."""
    return CountingTransport()


@pytest.fixture
async def client(
    emu: Emulator, tmp_path: Path, transport: CountingTransport
) -> AsyncIterator[KubeClient]:
    config = KubeConfig.from_kubeconfig(str(emu.write_kubeconfig(tmp_path / "kubeconfig")))
    async with KubeClient(config, retry=FAST_RETRY, transport=transport) as kube_client:
        yield kube_client


async def wait_for(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``check`` until it is true; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


@pytest.fixture
def eventually() -> Callable[..., object]:
    return wait_for
