"""A wrong or rotated Tower API token: reported as such, never mistaken for "not found".

Real NATS Tower checks the token in its API rules, so a wrong token gets empty lists and
404s, exactly like a deleted account or a removed access link. The operator must prove a
negative answer before it acts on it; these tests run against the real PocketBase.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from nats_tower_operator.bootstrap import Operator
from nats_tower_operator.kube import PODS, KubeClient
from nats_tower_operator.reconcilers.labels import Reason
from nats_tower_operator.sandbox import Environment

from .harness import (
    OperatorHandle,
    assert_creds_work,
    create_pod,
    get_secret,
    labelled_pod,
    tower_users,
    wait_event,
    wait_secret,
    wait_secret_gone,
    wait_until,
)

REFUSED = Reason.TOWER_TOKEN_REFUSED


async def _readyz(op: Operator) -> httpx.Response:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{op.health.bound_port}") as http:
        return await http.get("/readyz")


async def _user_ids(env: Environment) -> set[str]:
    return {u["id"] for u in await tower_users(env)}


async def test_wrong_token_at_start_is_not_ready_and_deletes_nothing(
    env: Environment, kube: KubeClient, operator: OperatorHandle
) -> None:
    await operator.start()
    for name in ("app-1", "app-2"):
        await create_pod(kube, labelled_pod(name, secret=name))
        await wait_secret(kube, "default", name)
    await operator.idle()
    await operator.stop()
    users = await _user_ids(env)
    await kube.delete(PODS, "app-2", namespace="default")  # its Secret is now unused

    op = await operator.start(
        NATS_TOWER_API_TOKEN="wrong-token", NATS_TOWER_REVOKE_GRACE_PERIOD="0.5"
    )
    ready = await _readyz(op)
    assert ready.status_code == 503
    assert "refused the API token" in ready.text

    # A new consumer is told the token is refused (not "account not found" / "not linked").
    await create_pod(kube, labelled_pod("app-3", secret="app-3"))
    event = await wait_event(kube, "default", "app-3", REFUSED)
    assert event["type"] == "Warning"
    # The unused Secret's user could not be revoked: the Secret is kept, and says why.
    await wait_event(kube, "default", "app-2", REFUSED)
    # A resync verifies the intact Secret with the wrong token: refused, nothing removed.
    op.trigger_resync()
    await wait_event(kube, "default", "app-1", REFUSED)

    assert await get_secret(kube, "default", "app-1") is not None
    assert await get_secret(kube, "default", "app-2") is not None
    assert await get_secret(kube, "default", "app-3") is None
    assert await _user_ids(env) == users


async def test_token_rotated_while_running_deletes_nothing_and_recovers(
    env: Environment, kube: KubeClient, operator: OperatorHandle, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(env.token)
    op = await operator.start(
        NATS_TOWER_API_TOKEN="",
        NATS_TOWER_API_TOKEN_PATH=str(token_file),
        NATS_TOWER_REVOKE_GRACE_PERIOD="0.5",
        NATS_TOWER_ACCESS_RETRY_INTERVAL="0.5",
    )
    for name in ("app-1", "app-2"):
        await create_pod(kube, labelled_pod(name, secret=name))
    kept = await wait_secret(kube, "default", "app-1")
    unused = await wait_secret(kube, "default", "app-2")
    await operator.idle()
    assert (await _readyz(op)).status_code == 200

    new_token = "rotated-" + secrets.token_hex(8)
    await env.tower.rotate_token(new_token)  # Tower restarted with a new API_TOKEN
    users = await _user_ids(env)
    await kube.delete(PODS, "app-2", namespace="default")
    op.trigger_resync()
    await wait_event(kube, "default", "app-1", REFUSED)
    await wait_event(kube, "default", "app-2", REFUSED)
    await op.tower_readiness.refresh()
    ready = await _readyz(op)
    assert ready.status_code == 503 and "refused the API token" in ready.text
    assert await get_secret(kube, "default", "app-1") is not None
    assert await get_secret(kube, "default", "app-2") is not None
    assert await _user_ids(env) == users

    # The operator's token is fixed (the mounted Secret rotates): everything converges.
    token_file.write_text(new_token)
    op.trigger_resync()
    await wait_secret_gone(kube, "default", "app-2")
    unused_user = unused["metadata"]["annotations"]["nats-tower.com/user-id"]
    assert unused_user not in await _user_ids(env)
    await assert_creds_work(kept)

    async def ready_again() -> bool:
        await op.tower_readiness.refresh()
        return (await _readyz(op)).status_code == 200

    await wait_until(ready_again, what="ready with the new token")


async def test_a_namespace_of_long_secret_names_never_sends_an_oversized_filter(
    env: Environment, kube: KubeClient, operator: OperatorHandle
) -> None:
    op = await operator.start()
    names = [f"s{i:03d}-" + "x" * 58 for i in range(100)]  # 63 characters: the label limit
    for i, name in enumerate(names):
        await create_pod(kube, labelled_pod(f"app-{i}", secret=name))
    for name in names:
        await wait_secret(kube, "default", name, timeout=60)
    op.trigger_resync()  # every Secret verified against Tower again
    await operator.idle(30)

    statuses: dict[str, float] = {}
    for family in text_string_to_metric_families(op.metrics.render().decode()):
        for sample in family.samples:
            if sample.name == "nats_tower_operator_tower_requests_total":
                status = sample.labels["status"]
                statuses[status] = statuses.get(status, 0.0) + sample.value
    assert statuses.get("200", 0) > 0
    assert set(statuses) <= {"200", "204"}, statuses
