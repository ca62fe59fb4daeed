"""On-demand resync: SIGHUP makes the operator check every Secret against Tower now."""

from __future__ import annotations

import asyncio
import os
import signal

from nats_tower_operator.kube import SECRETS, KubeClient
from nats_tower_operator.sandbox import Environment

from .harness import OperatorHandle, create_pod, labelled_pod, wait_secret, wait_secret_gone


async def test_sighup_triggers_resync_when_periodic_resync_is_off(
    env: Environment, kube: KubeClient, operator: OperatorHandle
) -> None:
    await operator.start(NATS_TOWER_RESYNC_INTERVAL="0", NATS_TOWER_ACCESS_RETRY_INTERVAL="60")
    await create_pod(kube, labelled_pod("app", secret="app", namespace="team-a"))
    await wait_secret(kube, "team-a", "app")
    await env.tower.admin.unlink(
        env.installation_key, "operator", cluster="sandbox-cluster", namespace="team-a"
    )
    await asyncio.sleep(1.0)
    assert await kube.get(SECRETS, "app", namespace="team-a")  # nothing checks yet

    os.kill(os.getpid(), signal.SIGHUP)  # the operator runs in this process's event loop
    await wait_secret_gone(kube, "team-a", "app", timeout=10)
