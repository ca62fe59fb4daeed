"""Fixtures for the Kubernetes API emulator tests: a running emulator, HTTP, kubectl."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from nats_tower_operator.emulator import Emulator

FIXTURES = Path(__file__).parent / "fixtures"
KUBECTL = Path(sys.executable).parent / "kubectl"


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator.running(bookmark_interval=0.3) as emulator:
        yield emulator


@pytest.fixture
async def http(emu: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=emu.url, headers={"Authorization": "Bearer test-token"}, timeout=10
    ) as client:
        yield client


def pod(name: str, *, labels: dict[str, str] | None = None, **meta: Any) -> dict[str, Any]:
    """A minimal valid Pod manifest."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}, **meta},
        "spec": {"containers": [{"name": "app", "image": "busybox:1.36"}]},
    }


def secret(name: str, **fields: Any) -> dict[str, Any]:
    """A Secret manifest."""
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, **fields}


_LINES: weakref.WeakKeyDictionary[httpx.Response, AsyncIterator[str]] = weakref.WeakKeyDictionary()


def _lines(response: httpx.Response) -> AsyncIterator[str]:
    if response not in _LINES:
        _LINES[response] = response.aiter_lines()
    return _LINES[response]


async def read_events(
    response: httpx.Response, count: int, *, timeout: float = 5.0
) -> list[dict[str, Any]]:
    """Read ``count`` watch events (one JSON document per line) from a streaming response."""
    events: list[dict[str, Any]] = []
    lines = _lines(response)

    async def collect() -> None:
        async for line in lines:
            if line.strip():
                events.append(json.loads(line))
                if len(events) >= count:
                    return

    await asyncio.wait_for(collect(), timeout)
    return events


async def read_all_events(
    response: httpx.Response, *, timeout: float = 5.0
) -> list[dict[str, Any]]:
    """Read watch events until the server ends the stream."""
    events: list[dict[str, Any]] = []

    async def collect() -> None:
        async for line in _lines(response):
            if line.strip():
                events.append(json.loads(line))

    await asyncio.wait_for(collect(), timeout)
    return events


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


@dataclass
class Kubectl:
    """Runs the real kubectl against the emulator (asynchronously, same event loop)."""

    kubeconfig: Path
    home: Path

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "HOME": str(self.home),
            "KUBECONFIG": str(self.kubeconfig),
            "KUBECACHEDIR": str(self.home / "cache"),
        }

    async def run(self, *args: str, stdin: str | None = None, check: bool = True) -> Result:
        proc = await asyncio.create_subprocess_exec(
            str(KUBECTL),
            *args,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env,
        )
        out, err = await asyncio.wait_for(
            proc.communicate(stdin.encode() if stdin is not None else None), 30
        )
        result = Result(proc.returncode or 0, out.decode(), err.decode())
        if check and result.code != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}{result.stdout}")
        return result

    async def start(self, *args: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            str(KUBECTL),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env,
        )


@pytest.fixture
def kubectl(emu: Emulator, tmp_path: Path) -> Kubectl:
    return Kubectl(emu.write_kubeconfig(tmp_path / "kubeconfig"), tmp_path)
