"""Namespaced mode (``NATS_TOWER_NAMESPACE``): only that namespace is listed, watched, written.

The operator talks to the emulator with its own bearer token, mapped to a service-account
user name, so the emulator's audit log separates its requests from the test client's.
"""

from __future__ import annotations

from nats_tower_operator.kube import KubeClient
from nats_tower_operator.reconcilers.labels import Reason
from nats_tower_operator.sandbox import Environment

from .harness import (
    OperatorHandle,
    assert_creds_work,
    create_pod,
    events_for,
    get_secret,
    labelled_pod,
    tower_users,
    wait_event,
    wait_secret,
)

OPERATOR_USER = "system:serviceaccount:team-a:nats-tower-operator"
OPERATOR_TOKEN = "namespaced-operator-token"
OTHERS = ("default", "team-b")
# What a Role in team-a grants; everything else would need a ClusterRole.
NAMESPACED_RESOURCES = {"pods", "secrets", "events", "accounts", "leases"}


async def test_namespaced_operator_ignores_other_namespaces(
    env: Environment, kube: KubeClient, operator: OperatorHandle
) -> None:
    env.emulator.access.tokens[OPERATOR_TOKEN] = OPERATOR_USER
    # The handle builds the operator from env.kubeconfig; our `kube` client already exists.
    env.kubeconfig = env.emulator.write_kubeconfig(
        env.workdir / "operator-kubeconfig", namespace="team-a", token=OPERATOR_TOKEN
    )
    # Labelled pods everywhere, some before and some after the operator starts.
    for namespace in OTHERS:
        await create_pod(kube, labelled_pod("early", secret="early-creds", namespace=namespace))
    op = await operator.start(NATS_TOWER_NAMESPACE="team-a")
    for namespace in OTHERS:
        await create_pod(kube, labelled_pod("late", secret="late-creds", namespace=namespace))
    await create_pod(kube, labelled_pod("mine", secret="mine-creds", namespace="team-a"))

    secret = await wait_secret(kube, "team-a", "mine-creds")
    await assert_creds_work(secret)
    # Barrier: "mine" is younger than every "late" pod (one resourceVersion order), and the
    # operator's pod cache holds it, so every pod event it was sent up to then is handled;
    # idle() then waits for the work those events queued, Events included.
    assert op.pods.store.get("team-a", "mine") is not None
    await wait_event(kube, "team-a", "mine", Reason.CREATED)
    await operator.idle()

    for namespace in OTHERS:
        for name in ("early", "late"):
            assert await get_secret(kube, namespace, f"{name}-creds") is None, (namespace, name)
            assert await events_for(kube, namespace, name) == [], (namespace, name)
    names = [u["name"] for u in await tower_users(env)]
    assert names == ["sandbox-cluster/team-a/mine-creds"]

    requests = env.emulator.audit.resource_requests(user=OPERATOR_USER)
    assert requests, "the operator's requests were not audited under its own user"
    outside = [r for r in requests if r.namespace != "team-a"]
    assert outside == [], [r.as_dict() for r in outside]
    assert {r.resource for r in requests} <= NAMESPACED_RESOURCES, {r.resource for r in requests}
    verbs = {(r.resource, r.verb) for r in requests}
    assert {("pods", "list"), ("pods", "watch"), ("secrets", "create")} <= verbs, verbs
