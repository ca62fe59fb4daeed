"""No seed, JWT, creds block or API token in any log record or Event, even at DEBUG."""

from __future__ import annotations

import logging
import re

import pytest

from nats_tower_operator.kube import EVENTS, PODS, KubeClient
from nats_tower_operator.sandbox import Environment

from .harness import (
    OperatorHandle,
    create_pod,
    labelled_pod,
    wait_event,
    wait_secret,
    wait_secret_gone,
)

LEAKS = [
    re.compile(r"S[UAO][A-Z2-7]{54}"),  # nkey seeds
    re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),  # JWTs
    re.compile(r"BEGIN (NATS USER JWT|USER NKEY SEED)"),  # creds blocks
]


async def test_full_lifecycle_at_debug_leaks_nothing(
    env: Environment,
    kube: KubeClient,
    operator: OperatorHandle,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    await operator.start(
        NATS_TOWER_LOG_LEVEL="DEBUG",
        NATS_TOWER_REVOKE_GRACE_PERIOD="0.5",
        NATS_TOWER_ACCESS_RETRY_INTERVAL="0.5",
    )
    unlinked = await env.tower.admin.create_account(env.installation_key, "unlinked")
    assert unlinked["name"] == "unlinked"
    await create_pod(
        kube,
        labelled_pod(
            "good",
            secret="good",
            labels={"nats-tower.com/nats-tower-role": "w"},
            annotations={"nats-tower.com/nats-tower-publish": "a.>"},
        ),
    )
    await create_pod(kube, labelled_pod("denied", secret="denied", account="unlinked"))
    await create_pod(kube, labelled_pod("bad", secret="Bad_Name"))
    await wait_secret(kube, "default", "good")
    await wait_event(kube, "default", "denied", "ErrorK8sAccessNotAllowed")
    await wait_event(kube, "default", "bad", "InvalidSecretLabel")
    await kube.delete(PODS, "good", namespace="default")
    await wait_secret_gone(kube, "default", "good")
    await operator.stop()

    texts = []
    for record in caplog.records:
        texts.append(record.getMessage())
        texts.extend(str(v) for v in record.__dict__.values() if isinstance(v, str))
        if record.exc_info:
            texts.append(logging.Formatter().formatException(record.exc_info))
    events = await kube.list(EVENTS, namespace="default")
    texts.extend(str(e.get("message", "")) for e in events.items)
    assert len(events.items) >= 3 and len(caplog.records) > 20

    blob = "\n".join(texts)
    assert env.token not in blob
    for pattern in LEAKS:
        found = pattern.search(blob)
        assert found is None, f"secret-looking text in logs/events: {pattern.pattern}"
