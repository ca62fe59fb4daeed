"""Every Warning reason, triggered by the matching bad input, end to end.

Each case starts a fresh environment and operator, creates the bad input *before* the operator
starts (so the informers see every object at once and no ordering race can hide a bug), waits
for the Warning Event on the pod, lets the queue drain, and checks that no Secret was written
and no Tower user was created.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from nats_tower_operator.kube import SECRETS, KubeClient
from nats_tower_operator.reconcilers.labels import (
    CREDENTIAL_TYPE_LABEL,
    INSTALLATION_LABEL,
    PUBLISH_ANNOTATION,
    ROLE_LABEL,
    SUBSCRIBE_ANNOTATION,
    Reason,
)
from nats_tower_operator.sandbox import Environment

from .harness import (
    OperatorHandle,
    create_pod,
    events_for,
    get_secret,
    labelled_pod,
    tower_users,
    wait_event,
)

Setup = Callable[[Environment, KubeClient], Awaitable[list[dict[str, Any]]]]

FOREIGN_SECRET: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {
        "name": "taken",
        "namespace": "default",
        "labels": {"app": "someone-else"},
        "annotations": {"owner": "a human"},
    },
    "type": "Opaque",
    "data": {
        "nats.creds": base64.b64encode(b"not ours").decode(),
        "other": base64.b64encode(b"keep me").decode(),
    },
}


@dataclass(frozen=True)
class Case:
    """One bad input: the pods to create, the reason expected, extra operator settings."""

    reason: str
    setup: Setup
    settings: dict[str, str] = field(default_factory=dict)
    # Secret names that must not exist afterwards (a foreign Secret is checked separately).
    secrets: tuple[str, ...] = ("creds",)
    message_parts: tuple[str, ...] = ()


def _pods(*pods: dict[str, Any]) -> Setup:
    async def setup(env: Environment, kube: KubeClient) -> list[dict[str, Any]]:
        return list(pods)

    return setup


async def _other_installation(env: Environment, kube: KubeClient) -> list[dict[str, Any]]:
    # A real installation in Tower, but not in the operator's installations file.
    other = await env.tower.admin.create_installation("nats://127.0.0.2:1")
    return [
        labelled_pod("p", secret="creds", labels={INSTALLATION_LABEL: str(other["public_key"])})
    ]


async def _unlinked_account(env: Environment, kube: KubeClient) -> list[dict[str, Any]]:
    await env.tower.admin.create_account(env.installation_key, "unlinked")
    return [labelled_pod("p", secret="creds", account="unlinked")]


async def _foreign_secret(env: Environment, kube: KubeClient) -> list[dict[str, Any]]:
    await kube.create(SECRETS, FOREIGN_SECRET, namespace="default")
    return [labelled_pod("p", secret="taken")]


async def _two_accounts(env: Environment, kube: KubeClient) -> list[dict[str, Any]]:
    await env.tower.admin.create_account(env.installation_key, "second")
    await env.tower.admin.link(
        env.installation_key, "second", cluster=env.cluster_id, namespace="default"
    )
    return [
        labelled_pod("p1", secret="shared", account="operator"),
        labelled_pod("p2", secret="shared", account="second"),
    ]


CASES: dict[str, Case] = {
    "missing-installation": Case(
        Reason.MISSING_INSTALLATION_LABEL,
        _pods(labelled_pod("p", secret="creds")),
        settings={"NATS_TOWER_DEFAULT_INSTALLATION": ""},
        message_parts=(INSTALLATION_LABEL,),
    ),
    "invalid-installation": Case(Reason.INVALID_INSTALLATION_LABEL, _other_installation),
    "missing-account": Case(
        Reason.MISSING_ACCOUNT_LABEL, _pods(labelled_pod("p", secret="creds", account=None))
    ),
    "invalid-secret": Case(
        Reason.INVALID_SECRET_LABEL,
        _pods(labelled_pod("p", secret="Bad_Name")),
        secrets=(),
        message_parts=("Bad_Name",),
    ),
    "invalid-credential-type": Case(
        Reason.INVALID_CREDENTIAL_TYPE,
        _pods(labelled_pod("p", secret="creds", labels={CREDENTIAL_TYPE_LABEL: "account"})),
    ),
    "missing-role": Case(
        Reason.MISSING_ROLE_LABEL,
        _pods(labelled_pod("p", secret="creds", annotations={PUBLISH_ANNOTATION: "orders.>"})),
    ),
    "invalid-subjects": Case(
        Reason.INVALID_SUBJECTS,
        _pods(
            labelled_pod(
                "p",
                secret="creds",
                labels={ROLE_LABEL: "writer"},
                annotations={PUBLISH_ANNOTATION: "a..b", SUBSCRIBE_ANNOTATION: "_INBOX.>"},
            )
        ),
        message_parts=("a..b",),
    ),
    # A tenant is told the same for an account that does not exist as for one it may not use.
    "account-not-found": Case(
        Reason.ACCESS_NOT_ALLOWED,
        _pods(labelled_pod("p", secret="creds", account="nosuch")),
        message_parts=("nosuch", "default", "sandbox-cluster", "or does not exist"),
    ),
    "access-not-allowed": Case(
        Reason.ACCESS_NOT_ALLOWED,
        _unlinked_account,
        message_parts=("unlinked", "default", "sandbox-cluster", "or does not exist"),
    ),
    "secret-not-owned": Case(Reason.SECRET_NOT_OWNED, _foreign_secret, secrets=()),
    "role-not-found": Case(
        Reason.ROLE_NOT_FOUND,
        _pods(labelled_pod("p", secret="creds", labels={ROLE_LABEL: "ghost"})),
        message_parts=("ghost",),
    ),
    "conflicting-consumers": Case(Reason.CONFLICTING_CONSUMERS, _two_accounts, secrets=("shared",)),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
async def test_bad_input_gets_warning_and_nothing_is_issued(
    case: Case, env: Environment, kube: KubeClient, operator: OperatorHandle
) -> None:
    pods = await case.setup(env, kube)
    for pod in pods:
        await create_pod(kube, pod)
    await operator.start(**case.settings)

    for pod in pods:
        name = pod["metadata"]["name"]
        event = await wait_event(kube, "default", name, case.reason, timeout=10)
        assert event["type"] == "Warning", event
        assert event["involvedObject"]["kind"] == "Pod"
        for part in case.message_parts:
            assert part in event["message"], (part, event["message"])
    await operator.idle()

    for secret_name in case.secrets:
        assert await get_secret(kube, "default", secret_name) is None, secret_name
    managed = await kube.list(
        SECRETS, namespace="default", label_selector="nats-tower.com/nats-tower-secret"
    )
    assert managed.items == [], [s["metadata"]["name"] for s in managed.items]
    assert await tower_users(env) == []
    # Nothing was reported as a success either.
    for pod in pods:
        reasons = {
            e.get("reason") for e in await events_for(kube, "default", pod["metadata"]["name"])
        }
        assert not reasons & {Reason.CREATED, Reason.UPDATED}, reasons


async def test_foreign_secret_is_left_byte_for_byte(
    env: Environment, kube: KubeClient, operator: OperatorHandle
) -> None:
    before = await kube.create(SECRETS, FOREIGN_SECRET, namespace="default")
    await create_pod(kube, labelled_pod("p", secret="taken"))
    await operator.start()
    await wait_event(kube, "default", "p", Reason.SECRET_NOT_OWNED, timeout=10)
    await operator.idle()

    after = await get_secret(kube, "default", "taken")
    assert after is not None
    assert after["data"] == before["data"] == FOREIGN_SECRET["data"]
    assert after["metadata"].get("labels") == FOREIGN_SECRET["metadata"]["labels"]
    assert after["metadata"].get("annotations") == FOREIGN_SECRET["metadata"]["annotations"]
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after.get("type") == "Opaque"
    assert await tower_users(env) == []
