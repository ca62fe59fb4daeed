"""A role from the publish/subscribe annotations, enforced by nats-server on the issued creds."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from typing import Any

import httpx
import nats

from nats_tower_operator.kube import KubeClient
from nats_tower_operator.reconcilers.labels import (
    PUBLISH_ANNOTATION,
    ROLE_LABEL,
    SUBSCRIBE_ANNOTATION,
)
from nats_tower_operator.sandbox import Environment

from .harness import (
    OperatorHandle,
    create_pod,
    decode,
    labelled_pod,
    tower_users,
    wait_secret,
)


async def _signing_keys(env: Environment) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=env.tower.url, headers={"X-Token": env.token}) as c:
        response = await c.get(
            "/api/collections/nats_auth_signing_keys/records",
            params={"perPage": 500, "fields": "id,account,role,publish,subscribe"},
        )
        response.raise_for_status()
        items: list[dict[str, Any]] = response.json()["items"]
        return items


async def _check_permissions(secret: dict[str, Any]) -> None:
    """``orders.new`` round-trips; publishing ``payments.x`` is refused by nats-server."""
    values = decode(secret)
    errors: list[Exception] = []
    both_refused = asyncio.Event()

    def refused(text: str) -> bool:
        return any(text in str(e) for e in errors)

    async def on_error(exc: Exception) -> None:
        errors.append(exc)
        if refused("payments.x") and refused("payments.>"):
            both_refused.set()

    with tempfile.NamedTemporaryFile("w", suffix=".creds", delete=False) as handle:
        handle.write(values["nats.creds"])
    try:
        nc = await nats.connect(
            values["URLS"],
            user_credentials=handle.name,
            error_cb=on_error,
            allow_reconnect=False,
            max_reconnect_attempts=0,
            connect_timeout=3,
        )
        try:
            sub = await nc.subscribe("orders.>")
            await nc.flush()
            await nc.publish("orders.new", b"ok")
            msg = await sub.next_msg(timeout=3)
            assert (msg.subject, msg.data) == ("orders.new", b"ok")
            assert errors == []

            spy = await nc.subscribe("payments.>")  # refused too: not in subscribe
            await nc.publish("payments.x", b"no")
            # Barrier: nats-server refused both (its -ERR lines reach the error callback);
            # if it does not, the assertions below say what it answered instead.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(both_refused.wait(), timeout=5)
            text = [str(e) for e in errors]
            assert any(
                "permissions violation" in t.lower()
                and "publish" in t.lower()
                and "payments.x" in t
                for t in text
            ), text
            assert any("subscription" in t.lower() and "payments.>" in t for t in text), text
            # A round trip after the publish: whatever the server sent the spy before its
            # PONG has been queued by now.
            await nc.flush()
            assert spy.pending_msgs == 0
        finally:
            await nc.close()
    finally:
        os.unlink(handle.name)


async def test_role_permissions_are_enforced_and_role_is_reused(
    env: Environment, kube: KubeClient, operator: OperatorHandle
) -> None:
    await operator.start()
    await create_pod(
        kube,
        labelled_pod(
            "writer",
            secret="writer-creds",
            labels={ROLE_LABEL: "writer"},
            annotations={
                PUBLISH_ANNOTATION: "orders.>",
                SUBSCRIBE_ANNOTATION: "orders.>, _INBOX.>",
            },
        ),
    )
    first = await wait_secret(kube, "default", "writer-creds")
    await _check_permissions(first)

    # A second pod naming the existing role, without annotations, reuses it.
    await create_pod(
        kube, labelled_pod("reuser", secret="reuser-creds", labels={ROLE_LABEL: "writer"})
    )
    second = await wait_secret(kube, "default", "reuser-creds")
    await operator.idle()
    await _check_permissions(second)

    keys = await _signing_keys(env)
    writers = [k for k in keys if k["role"] == "writer"]
    assert len(writers) == 1, keys
    assert writers[0]["account"] == env.account["id"]
    assert writers[0]["publish"] == ["orders.>"]
    assert sorted(writers[0]["subscribe"]) == ["_INBOX.>", "orders.>"]
    users = await tower_users(env)
    assert len(users) == 2, users
    assert {u["signing_key"] for u in users} == {writers[0]["id"]}
    assert _secret_annotation(first, "role") == _secret_annotation(second, "role") == "writer"


def _secret_annotation(secret: dict[str, Any], short: str) -> str:
    """The ``nats-tower.com/<short>`` annotation of a Secret."""
    value = (secret["metadata"].get("annotations") or {}).get(f"nats-tower.com/{short}", "")
    return str(value)
