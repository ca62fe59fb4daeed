"""The operator SIGKILLed mid-burst and restarted: every Secret, one user each, nothing lost."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path

import pytest

from nats_tower_operator.kube import SECRETS, KubeClient
from nats_tower_operator.sandbox import Environment, start_operator_process

from .harness import (
    assert_creds_work,
    create_pod,
    labelled_pod,
    tower_users,
    wait_secret,
    wait_until,
)


async def start_process(env: Environment, log: Path) -> asyncio.subprocess.Process:
    return await start_operator_process(env, log, NATS_TOWER_WORKERS="2")


async def count_written(kube: KubeClient) -> int:
    listing = await kube.list(
        SECRETS, namespace="default", label_selector="nats-tower.com/nats-tower-secret=true"
    )
    return len(listing.items)


@pytest.mark.timeout(90)
async def test_sigkill_mid_burst_then_restart_converges(
    env: Environment, kube: KubeClient, tmp_path: Path
) -> None:
    log = tmp_path / "operator.log"
    names = [f"app-{i}" for i in range(60)]
    for name in names:
        await create_pod(kube, labelled_pod(name, secret=name))
    written_at_kill = [0]
    for _ in range(3):
        process = await start_process(env, log)

        async def some_written() -> bool:
            return await count_written(kube) >= written_at_kill[-1] + 5

        await wait_until(some_written, timeout=30, what="some Secrets written")
        process.send_signal(signal.SIGKILL)
        await process.wait()
        written_at_kill.append(await count_written(kube))
    # The first kill landed in the middle of the burst, with work done and work left.
    assert written_at_kill == sorted(written_at_kill)
    assert 5 <= written_at_kill[1] < len(names)

    process = await start_process(env, log)
    try:
        secrets = [await wait_secret(kube, "default", n, timeout=30) for n in names]
        await assert_creds_work(secrets[0])
        await assert_creds_work(secrets[-1])
        users = Counter(u["name"] for u in await tower_users(env))
        assert len(users) == len(names) and set(users.values()) == {1}, users
        referenced = {s["metadata"]["annotations"]["nats-tower.com/user-id"] for s in secrets}
        assert referenced == {u["id"] for u in await tower_users(env)}
    finally:
        process.terminate()
        assert await process.wait() == 0
