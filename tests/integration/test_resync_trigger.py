"""On-demand resync: SIGHUP makes the operator check every Secret against Tower now."""

from __future__ import annotations

import os
import signal

from nats_tower_operator.kube import PODS, SECRETS, KubeClient
from nats_tower_operator.sandbox import Environment

from .harness import (
    OperatorHandle,
    create_pod,
    labelled_pod,
    wait_secret,
    wait_secret_gone,
    wait_until,
)
from .scrape import reconciles, tower_requests

ACCESS_LOOKUP = "GET nats_auth_k8s_access"


async def test_sighup_triggers_resync_when_periodic_resync_is_off(
    env: Environment, kube: KubeClient, operator: OperatorHandle
) -> None:
    op = await operator.start(NATS_TOWER_RESYNC_INTERVAL="0", NATS_TOWER_ACCESS_RETRY_INTERVAL="60")
    await create_pod(kube, labelled_pod("app", secret="app", namespace="team-a"))
    await wait_secret(kube, "team-a", "app")
    await operator.idle()
    await env.tower.admin.unlink(
        env.installation_key, "operator", cluster="sandbox-cluster", namespace="team-a"
    )
    lookups, passes = tower_requests(op)[ACCESS_LOOKUP], reconciles(op)

    # Barrier: make the operator reconcile the Secret after the unlink (a pod change queues
    # it) and wait until that reconcile is done. It had its chance and did not ask Tower.
    touched = await kube.patch(
        PODS, "app", {"metadata": {"labels": {"touched": "1"}}}, namespace="team-a"
    )

    async def seen() -> bool:
        pod = op.pods.store.get("team-a", "app")
        version = (pod or {}).get("metadata", {}).get("resourceVersion")
        return bool(version == touched["metadata"]["resourceVersion"])

    await wait_until(seen, what="the touched pod in the operator's cache")
    await operator.idle()
    assert reconciles(op) > passes
    assert await kube.get(SECRETS, "app", namespace="team-a")  # nothing checks yet
    assert tower_requests(op)[ACCESS_LOOKUP] == lookups

    os.kill(os.getpid(), signal.SIGHUP)  # the operator runs in this process's event loop
    await wait_secret_gone(kube, "team-a", "app", timeout=10)
