"""The rendered Role/ClusterRole allow every API request the operator makes, and nothing more.

The operator runs in-process, configured only by what a pod of the rendered Deployment would
get (env from the ConfigMap, the installations file, the token file), against the Kubernetes
emulator with its own bearer token mapped to the ServiceAccount user the rendered binding
names, so the emulator's audit log tells its requests apart from the test's. A short scenario
walks every code path that touches the API: issue (Secret get/create), restore an edited
Secret (update), a Warning repeated on a bad pod (event create + patch), revocation after the
grace period (Secret patch + delete).
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest

from integration.harness import (
    OperatorHandle,
    create_pod,
    events_for,
    labelled_pod,
    wait_event,
    wait_secret,
    wait_secret_gone,
    wait_until,
)
from nats_tower_operator.emulator.audit import AuditRecord
from nats_tower_operator.kube import PODS, SECRETS, KubeClient
from nats_tower_operator.sandbox import Environment

from .manifests import (
    OPERATOR,
    TOKEN_GENERATOR,
    Grant,
    Rbac,
    SeedValues,
    container_environment,
    one,
    render_seed_install,
)

OPERATOR_NAMESPACE = "team-a"
OPERATOR_TOKEN = "deploy-rbac-operator-token"
# Rules granted although this scenario does not call them, each with its reason. Empty: every
# rule is used. (Leases and SelfSubjectAccessReviews are not granted until code calls them.)
RESERVED: dict[tuple[str, str, str], str] = {}


async def _exercise(kube: KubeClient, namespace: str) -> None:
    """Drive every Kubernetes API call path of the operator in ``namespace``."""
    await create_pod(kube, labelled_pod("app", secret="app-creds", namespace=namespace))
    secret = await wait_secret(kube, namespace, "app-creds")

    # A Secret of the asked-for name that is not the operator's: the create meets it, the
    # operator reads it (GET) and leaves it alone.
    await kube.create(
        SECRETS,
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "taken"}, "data": {}},
        namespace=namespace,
    )
    await create_pod(kube, labelled_pod("squatter", secret="taken", namespace=namespace))
    await wait_event(kube, namespace, "squatter", "SecretNotOwned")

    # An edited Secret is restored in place (PUT).
    edited = dict(secret)
    edited["data"] = {"nats.creds": base64.b64encode(b"tampered").decode()}
    await kube.replace(SECRETS, "app-creds", edited, namespace=namespace)
    await wait_event(kube, namespace, "app", "Restored")  # told to the consumer

    # A pod with a bad label gets a Warning; touching it repeats the Warning (count patch).
    await create_pod(
        kube, labelled_pod("bad", secret="bad-creds", account=None, namespace=namespace)
    )
    await wait_event(kube, namespace, "bad", "MissingAccountLabel")
    touches = iter(range(1000))

    async def repeated() -> bool:
        # Repeats are counted in memory and written at most every 10 s (EventRecorder):
        # touch the pod about once a second until one is written.
        touch = next(touches)
        if touch % 20 == 0:
            await kube.patch(
                PODS,
                "bad",
                {"metadata": {"annotations": {"touched": str(touch)}}},
                namespace=namespace,
            )
        for event in await events_for(kube, namespace, "bad"):
            if event["reason"] == "MissingAccountLabel" and event.get("count", 1) >= 2:
                return True
        return False

    await wait_until(repeated, timeout=30, what="the repeated Warning aggregated")

    # The last consumer goes: orphan mark, grace period, revocation, Secret deleted.
    await kube.delete(PODS, "app", namespace=namespace)
    await wait_secret_gone(kube, namespace, "app-creds")
    await wait_event(kube, namespace, "app-creds", "Revoked")


@pytest.mark.parametrize(
    ("scope", "workload_namespace"),
    [("namespaced", OPERATOR_NAMESPACE), ("cluster", "team-b")],
)
async def test_rendered_rbac_covers_exactly_the_operators_requests(
    tmp_path: Path, scope: str, workload_namespace: str
) -> None:
    async with Environment.running(
        tmp_path / "env", namespaces=("default", "team-a", "team-b")
    ) as env:
        # The docs' install for this environment; the operator gets the env vars and files a
        # pod of the rendered Deployment would get, plus test-only speed-ups.
        values = SeedValues(
            namespace=OPERATOR_NAMESPACE,
            tower_url=env.tower.url,
            cluster_id=env.cluster_id,
            installation=str(env.installation["public_key"]),
        )
        docs = render_seed_install(
            tmp_path, scope, values=values, extra=TOKEN_GENERATOR.format(token=env.token)
        )
        pod_env = container_environment(docs, tmp_path / "pod")
        pod_env.update(
            NATS_TOWER_API_TOKEN="",  # the harness's default; the token file must serve
            NATS_TOWER_HEALTH_ADDR="127.0.0.1:0",
            NATS_TOWER_REVOKE_GRACE_PERIOD="0.5",
        )
        assert pod_env["NATS_TOWER_NAMESPACE"] == (
            OPERATOR_NAMESPACE if scope == "namespaced" else ""
        )

        rbac = Rbac.from_docs(docs)
        binding = one(docs, "RoleBinding" if scope == "namespaced" else "ClusterRoleBinding")
        (subject,) = binding["subjects"]
        user = f"system:serviceaccount:{subject['namespace']}:{subject['name']}"
        assert user == f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR}"

        async with env.kube_client() as kube:
            env.emulator.access.tokens[OPERATOR_TOKEN] = user
            env.kubeconfig = env.emulator.write_kubeconfig(
                env.workdir / "operator-kubeconfig",
                namespace=OPERATOR_NAMESPACE,
                token=OPERATOR_TOKEN,
            )
            handle = OperatorHandle(env)
            await handle.start(**pod_env)
            try:
                await asyncio.wait_for(_exercise(kube, workload_namespace), timeout=60)
                await handle.idle()
            finally:
                await handle.stop()
        records = env.emulator.audit.resource_requests(user=user)

    assert records, "the operator's requests were not audited under its ServiceAccount user"
    denied = [r.as_dict() for r in records if r.code == 403]
    assert denied == []
    not_allowed = [r.as_dict() for r in records if not _allowed(rbac, r)]
    assert not_allowed == [], f"{scope}: requests the rendered RBAC would forbid"

    used = {(r.group, r.rbac_resource, r.verb) for r in records}
    unused = rbac.grants() - used - set(RESERVED)
    assert unused == set(), f"{scope}: rules no request needed (remove or reserve them)"


def _allowed(rbac: Rbac, record: AuditRecord) -> bool:
    return rbac.allows(
        verb=record.verb,
        group=record.group,
        resource=record.rbac_resource,
        namespace=record.namespace,
    )


def test_rbac_evaluator_scopes_roles_to_their_namespace() -> None:
    """Control for the checker itself: a Role grants nothing outside its namespace."""
    rules = ({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},)
    role = Rbac((Grant(rules, "team-a"),))
    cluster = Rbac((Grant(rules, None),))
    assert role.allows(verb="get", group="", resource="secrets", namespace="team-a")
    assert not role.allows(verb="get", group="", resource="secrets", namespace="team-b")
    assert not role.allows(verb="get", group="", resource="secrets", namespace="")
    assert not role.allows(verb="list", group="", resource="secrets", namespace="team-a")
    assert not role.allows(verb="get", group="apps", resource="secrets", namespace="team-a")
    assert cluster.allows(verb="get", group="", resource="secrets", namespace="")
