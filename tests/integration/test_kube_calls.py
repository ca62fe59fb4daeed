"""What a new credential costs the Kubernetes API: the Secret create and one Event."""

from __future__ import annotations

from nats_tower_operator.kube import KubeClient
from nats_tower_operator.sandbox import Environment

from .harness import OperatorHandle, create_pod, labelled_pod, wait_until


async def test_a_new_credential_costs_two_kubernetes_calls(
    env: Environment, kube: KubeClient, operator: OperatorHandle
) -> None:
    op = await operator.start()
    await operator.idle()
    pod = await create_pod(kube, labelled_pod("app", secret="app"))  # uses the default install
    before = len(env.emulator.audit.records)

    async def stored() -> bool:  # the operator's own cache: no API call from the test
        return op.secrets.store.get("default", "app") is not None

    await wait_until(stored, what="Secret in the operator's cache")
    await operator.idle()
    calls = [
        (r.verb, r.resource)
        for r in env.emulator.audit.records[before:]
        if r.verb not in ("watch", "list")
    ]
    assert sorted(calls) == [("create", "events"), ("create", "secrets")], calls
    assert pod["metadata"]["name"] == "app"
