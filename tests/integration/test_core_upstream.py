"""Secrets written by the Go operator: a filled one is left alone, an empty one is filled."""

from __future__ import annotations

import base64
from typing import Any

from nats_tower_operator.kube import SECRETS, KubeClient
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

UPSTREAM_CREDS = "-----BEGIN NATS USER JWT-----\nwritten.by.the.go.operator\n"


def _upstream_secret(name: str, creds: str) -> dict[str, Any]:
    """A Secret as the Go operator writes it: our label, no annotations."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {"nats-tower.com/nats-tower-secret": "true"},
        },
        "type": "Opaque",
        "data": {
            "nats.creds": base64.b64encode(creds.encode()).decode(),
            "URLS": base64.b64encode(b"nats://old:4222").decode(),
            "ACCOUNT_NAME": base64.b64encode(b"operator").decode(),
        },
    }


async def test_filled_upstream_secret_is_left_and_empty_one_is_filled(
    env: Environment, kube: KubeClient, operator: OperatorHandle
) -> None:
    filled = await kube.create(SECRETS, _upstream_secret("legacy", UPSTREAM_CREDS))
    await kube.create(SECRETS, _upstream_secret("hollow", ""))
    await create_pod(kube, labelled_pod("old", secret="legacy"))
    await create_pod(kube, labelled_pod("new", secret="hollow"))
    await operator.start()

    refilled = await wait_secret(kube, "default", "hollow")
    values = decode(refilled)
    assert values["URLS"] == env.nats.client_url
    assert values["ACCOUNT_NAME"] == "operator"
    await assert_creds_work(refilled)
    await wait_event(kube, "default", "new", Reason.UPDATED)
    await operator.idle()

    legacy = await get_secret(kube, "default", "legacy")
    assert legacy is not None
    assert legacy["data"] == filled["data"]
    assert legacy["metadata"].get("labels") == filled["metadata"].get("labels")
    assert legacy["metadata"].get("annotations") == filled["metadata"].get("annotations")
    assert legacy["metadata"]["resourceVersion"] == filled["metadata"]["resourceVersion"]
    names = [u["name"] for u in await tower_users(env)]
    assert names == ["sandbox-cluster/default/hollow"]
