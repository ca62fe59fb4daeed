"""Restarting the operator over intact Secrets costs no Kubernetes write and no Tower request
for any credential (only the readiness proof: the token sees the configured installation)."""

from __future__ import annotations

from nats_tower_operator.kube import KubeClient
from nats_tower_operator.sandbox import Environment

from .harness import OperatorHandle, create_pod, labelled_pod, wait_secret
from .scrape import tower_requests

WRITES = {"create", "update", "patch", "delete", "deletecollection"}


async def test_restart_is_read_only(
    env: Environment, kube: KubeClient, operator: OperatorHandle
) -> None:
    await operator.start()
    installation = {"nats-tower.com/nats-tower-installation": str(env.installation["public_key"])}
    for i in range(6):
        # half use the default installation, half name it
        labels = installation if i % 2 else None
        await create_pod(kube, labelled_pod(f"app-{i}", secret=f"app-{i}", labels=labels))
    for i in range(6):
        await wait_secret(kube, "default", f"app-{i}")
    await operator.idle()
    await operator.stop()

    audit_before = len(env.emulator.audit.records)
    op = await operator.start()
    await operator.idle()
    during = env.emulator.audit.records[audit_before:]
    writes = [(r.verb, r.resource, r.name) for r in during if r.verb in WRITES]
    assert writes == []
    # The readiness proof (token probe + the one configured installation), nothing per Secret.
    sent = tower_requests(op)  # the operator's own metric, as /metrics reports it
    assert set(sent) <= {"GET nats_auth_operators"}, sent
    assert sent["GET nats_auth_operators"] <= 2, sent
