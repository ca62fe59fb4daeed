"""An unlinked namespace is told what to link, then served once the link exists in Tower."""

from __future__ import annotations

import time

from nats_tower_operator.kube import KubeClient
from nats_tower_operator.reconcilers.labels import Reason
from nats_tower_operator.sandbox import Environment

from .harness import (
    OperatorHandle,
    assert_creds_work,
    create_pod,
    decode,
    get_secret,
    labelled_pod,
    tower_users,
    wait_event,
    wait_secret,
)


async def test_unlinked_namespace_succeeds_after_link_without_restart(
    env: Environment, kube: KubeClient, operator: OperatorHandle
) -> None:
    account = await env.tower.admin.create_account(env.installation_key, "late")
    await operator.start(NATS_TOWER_ACCESS_RETRY_INTERVAL="0.5")
    started = operator.op
    await create_pod(
        kube, labelled_pod("app", secret="late-creds", account="late", namespace="team-b")
    )

    event = await wait_event(kube, "team-b", "app", Reason.ACCESS_NOT_ALLOWED, timeout=10)
    assert event["type"] == "Warning"
    for part in ("team-b", env.cluster_id, "late"):
        assert part in event["message"], (part, event["message"])
    await operator.idle()
    assert await get_secret(kube, "team-b", "late-creds") is None
    assert await tower_users(env) == []

    await env.tower.admin.link(
        env.installation_key, "late", cluster=env.cluster_id, namespace="team-b"
    )
    linked_at = time.monotonic()
    secret = await wait_secret(kube, "team-b", "late-creds", timeout=10)
    took = time.monotonic() - linked_at
    assert operator.op is started, "the operator was restarted"
    assert took < 8, f"the Secret appeared {took:.1f} s after the link"

    assert decode(secret)["ACCOUNT_NAME"] == "late"
    await assert_creds_work(secret)
    await wait_event(kube, "team-b", "app", Reason.CREATED)
    names = [(u["name"], u["account"]) for u in await tower_users(env)]
    assert names == [("sandbox-cluster/team-b/late-creds", account["id"])]
