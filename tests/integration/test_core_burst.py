"""Burst economy: many pods for one account cost one Tower create each and little else."""

from __future__ import annotations

import asyncio

from nats_tower_operator.kube import KubeClient
from nats_tower_operator.sandbox import Environment

from .harness import OperatorHandle, create_pod, labelled_pod, tower_users, wait_secret
from .scrape import tower_requests

PODS = 30
CREATE = "POST nats_auth_users"
OTHER_BUDGET = 10


async def test_burst_of_pods_costs_one_create_each(
    env: Environment, kube: KubeClient, operator: OperatorHandle
) -> None:
    op = await operator.start()
    await asyncio.gather(
        *(create_pod(kube, labelled_pod(f"p{i}", secret=f"s{i}")) for i in range(PODS))
    )
    for i in range(PODS):
        await wait_secret(kube, "default", f"s{i}")
    await operator.idle()

    assert len(await tower_users(env)) == PODS
    sent = tower_requests(op)  # the operator's own metric, as /metrics reports it
    creates = sent[CREATE]
    others = sum(count for key, count in sent.items() if key != CREATE)
    report = ", ".join(f"{key}: {count}" for key, count in sorted(sent.items()))
    assert creates <= PODS, report
    # Installation, account and access lookups are cached and single-flight; user lookups
    # before a create must not cost about one request per pod either.
    assert others <= OTHER_BUDGET, report
