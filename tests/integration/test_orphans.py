"""No Tower user outlives its workload, even when Secrets disappear behind our back."""

from __future__ import annotations

from typing import Any

import httpx

from nats_tower_operator.kube import PODS, SECRETS, KubeClient
from nats_tower_operator.sandbox import Environment

from .harness import (
    OperatorHandle,
    create_pod,
    labelled_pod,
    tower_users,
    wait_secret,
    wait_until,
)


async def _create_tower_user(env: Environment, name: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=env.tower.url, headers={"X-Token": env.token}) as c:
        response = await c.post(
            "/api/collections/nats_auth_users/records",
            json={"account": env.account["id"], "name": name, "description": "left behind"},
        )
        response.raise_for_status()
        record: dict[str, Any] = response.json()
        return record


async def test_secret_deleted_while_unused_has_its_user_revoked(
    env: Environment, kube: KubeClient, operator: OperatorHandle
) -> None:
    await operator.start(NATS_TOWER_REVOKE_GRACE_PERIOD="3600")
    await create_pod(kube, labelled_pod("app", secret="app"))
    secret = await wait_secret(kube, "default", "app")
    user_id = secret["metadata"]["annotations"]["nats-tower.com/user-id"]
    await kube.delete(PODS, "app", namespace="default")
    await operator.idle()
    assert user_id in {u["id"] for u in await tower_users(env)}  # grace period: kept

    await kube.delete(SECRETS, "app", namespace="default")

    async def revoked() -> bool:
        return user_id not in {u["id"] for u in await tower_users(env)}

    await wait_until(revoked, what="user of the deleted Secret revoked")


async def test_sweep_revokes_users_no_secret_refers_to(
    env: Environment, kube: KubeClient, operator: OperatorHandle
) -> None:
    # Left behind, e.g. a re-issued Secret deleted while the operator was down.
    ghost = await _create_tower_user(env, "sandbox-cluster/default/app#3")
    foreign = await _create_tower_user(env, "other-cluster/default/app")
    handmade = await _create_tower_user(env, "a-user-made-by-hand")
    await operator.start(NATS_TOWER_RESYNC_INTERVAL="0.02", NATS_TOWER_REVOKE_GRACE_PERIOD="1")
    await create_pod(kube, labelled_pod("app", secret="app"))
    live = await wait_secret(kube, "default", "app")
    live_user = live["metadata"]["annotations"]["nats-tower.com/user-id"]

    async def ghost_gone() -> bool:
        return ghost["id"] not in {u["id"] for u in await tower_users(env)}

    await wait_until(ghost_gone, what="orphaned user swept")
    remaining = {u["id"] for u in await tower_users(env)}
    assert {live_user, foreign["id"], handmade["id"]} <= remaining
