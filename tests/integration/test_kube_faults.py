"""Kubernetes API faults during a burst: dropped watches, 410 on resume, failing writes."""

from __future__ import annotations

from collections import Counter

import pytest

from nats_tower_operator.kube import KubeClient
from nats_tower_operator.sandbox import Environment

from .harness import (
    OperatorHandle,
    assert_creds_work,
    create_pod,
    labelled_pod,
    tower_users,
    wait_secret,
    wait_until,
)


@pytest.mark.timeout(90)
async def test_burst_converges_through_watch_drops_410_and_write_errors(
    env: Environment, kube: KubeClient, operator: OperatorHandle
) -> None:
    op = await operator.start()
    faults = env.emulator.faults
    faults.fail_next(4, status=500, method="POST", path=r"/secrets$")
    faults.fail_next(2, status=429, retry_after=1, method="POST", path=r"/secrets$")
    for i in range(10):
        await create_pod(kube, labelled_pod(f"a-{i}", secret=f"a-{i}"))
    faults.drop_watches(abort=True)
    faults.compact()  # the operator's resume points are gone: it must relist
    for i in range(10):
        await create_pod(kube, labelled_pod(f"b-{i}", secret=f"b-{i}"))

    async def caught_up() -> bool:  # past the cut and the compaction: it resumed or relisted
        return all(op.pods.store.get("default", f"b-{i}") is not None for i in range(10))

    await wait_until(caught_up, what="the operator's pod cache holding every b pod")
    faults.drop_watches()  # and again, cleanly, on the streams it has opened since

    names = [f"a-{i}" for i in range(10)] + [f"b-{i}" for i in range(10)]
    secrets = [await wait_secret(kube, "default", n, timeout=30) for n in names]
    await assert_creds_work(secrets[0])
    await assert_creds_work(secrets[-1])
    failed = Counter(
        r.code for r in env.emulator.audit.records if r.path.endswith("/secrets") and r.code >= 429
    )
    assert failed[500] == 4 and failed[429] == 2, failed  # the faults hit the operator's writes
    users = Counter(u["name"] for u in await tower_users(env))
    assert len(users) == 20 and set(users.values()) == {1}

    # After a relist the operator still sees new objects.
    await create_pod(kube, labelled_pod("late", secret="late"))
    await wait_secret(kube, "default", "late")
