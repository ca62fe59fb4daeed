"""Credential lifecycle: isolation, revocation, repair, access withdrawal, role change, renewal.

Each test observes only through the Kubernetes API, Tower's REST API and nats-server, and
restarts the operator between steps where the outcome must not depend on memory.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from nats_tower_operator.bootstrap import Operator
from nats_tower_operator.kube import NACK_ACCOUNTS, PODS, SECRETS, KubeClient
from nats_tower_operator.reconcilers.plan import LOOK_AGAIN_SLACK
from nats_tower_operator.reconcilers.secretdoc import parse_time
from nats_tower_operator.sandbox import Environment

from .harness import (
    OperatorHandle,
    assert_creds_work,
    create_pod,
    creds_refused,
    decode,
    get_secret,
    labelled_pod,
    tower_users,
    wait_event,
    wait_secret,
    wait_secret_gone,
    wait_until,
)
from .scrape import reconciles

ORPHANED = "nats-tower.com/orphaned-since"
GRACE = 2
FAST = {
    "NATS_TOWER_REVOKE_GRACE_PERIOD": "1",
    "NATS_TOWER_ACCESS_RETRY_INTERVAL": "0.5",
}


async def users_named(env: Environment, *names: str) -> list[dict[str, Any]]:
    return [u for u in await tower_users(env) if u["name"] in names]


async def test_same_secret_name_in_two_namespaces_gets_two_isolated_users(
    env: Environment, kube: KubeClient, operator: OperatorHandle
) -> None:
    await operator.start(**FAST)
    await create_pod(kube, labelled_pod("a", secret="shared", namespace="default"))
    await create_pod(kube, labelled_pod("b", secret="shared", namespace="team-a"))
    in_default = await wait_secret(kube, "default", "shared")
    in_team_a = await wait_secret(kube, "team-a", "shared")
    assert decode(in_default)["nats.creds"] != decode(in_team_a)["nats.creds"]
    users = await users_named(
        env, "sandbox-cluster/default/shared", "sandbox-cluster/team-a/shared"
    )
    assert len(users) == 2

    # Revoking the default namespace's credential leaves team-a's working.
    await kube.delete(PODS, "a", namespace="default")
    await wait_secret_gone(kube, "default", "shared")
    assert await wait_until(lambda: creds_refused(in_default), what="old creds refused")
    await assert_creds_work(in_team_a)
    assert [u["name"] for u in await tower_users(env)] == ["sandbox-cluster/team-a/shared"]


async def test_unused_secret_is_revoked_after_grace_period_and_nats_refuses_it(
    env: Environment, kube: KubeClient, operator: OperatorHandle
) -> None:
    op = await operator.start(NATS_TOWER_REVOKE_GRACE_PERIOD=str(GRACE))
    await create_pod(kube, labelled_pod("app-1", secret="app"))
    secret = await wait_secret(kube, "default", "app")
    await assert_creds_work(secret)

    # A rollout: the old pod goes, a new one comes within the grace period -> no churn.
    await kube.delete(PODS, "app-1", namespace="default")
    orphaned = await wait_until(
        lambda: _annotation(kube, "default", "app", ORPHANED), what="orphaned-since recorded"
    )
    await create_pod(kube, labelled_pod("app-2", secret="app"))
    # The operator scheduled its look at the end of the grace period (and the slack after
    # it); wait until then, so that look is due, and make it look once more (a pod change
    # queues the Secret). Once that reconcile is done, the grace period is over for the
    # operator and it has decided with app-2 in view.
    since = parse_time(orphaned)
    assert since is not None
    look_at = since + GRACE + LOOK_AGAIN_SLACK

    async def grace_over() -> bool:
        return time.time() >= look_at

    await wait_until(grace_over, timeout=GRACE + 10, what="the end of the grace period")
    await _touch_and_settle(kube, operator, op, "default", "app-2")
    kept = await get_secret(kube, "default", "app")
    assert kept is not None and decode(kept)["nats.creds"] == decode(secret)["nats.creds"]
    assert ORPHANED not in kept["metadata"].get("annotations", {})

    # Scale to zero; restart the operator while the grace period runs.
    await kube.delete(PODS, "app-2", namespace="default")
    await wait_until(
        lambda: _annotated(kube, "default", "app", ORPHANED), what="orphaned-since recorded"
    )
    await operator.restart()
    await wait_secret_gone(kube, "default", "app")
    assert await users_named(env, "sandbox-cluster/default/app") == []
    assert await wait_until(lambda: creds_refused(secret), what="revoked creds refused")


async def _annotated(kube: KubeClient, namespace: str, name: str, key: str) -> bool:
    return await _annotation(kube, namespace, name, key) is not None


async def _annotation(kube: KubeClient, namespace: str, name: str, key: str) -> str | None:
    secret = await get_secret(kube, namespace, name)
    value = ((secret or {}).get("metadata", {}).get("annotations") or {}).get(key)
    return str(value) if value is not None else None


async def _touch_and_settle(
    kube: KubeClient, operator: OperatorHandle, op: Operator, namespace: str, pod: str
) -> None:
    """Change pod ``pod`` (a label), wait until the operator has seen it and is idle.

    A barrier: the operator reconciled that pod's Secret after this call began.
    """
    before = reconciles(op)
    touched = await kube.patch(
        PODS, pod, {"metadata": {"labels": {"touched": str(time.time())}}}, namespace=namespace
    )
    version = touched["metadata"]["resourceVersion"]

    async def seen() -> bool:
        cached = op.pods.store.get(namespace, pod)
        return cached is not None and cached["metadata"].get("resourceVersion") == version

    await wait_until(seen, what=f"pod {namespace}/{pod} changed in the operator's cache")
    await operator.idle()
    assert reconciles(op) > before


async def test_deleting_a_nack_account_revokes_its_credentials(
    env: Environment, kube: KubeClient, operator: OperatorHandle
) -> None:
    await operator.start(**FAST)
    account = {
        "apiVersion": "jetstream.nats.io/v1beta2",
        "kind": "Account",
        "metadata": {"name": "operator", "labels": {"nats-tower.com/nats-tower-secret": "nack"}},
        "spec": {"name": "operator", "creds": {"secret": {"name": "nack"}, "file": "nats.creds"}},
    }
    await kube.create(NACK_ACCOUNTS, account, namespace="default")
    secret = await wait_secret(kube, "default", "nack")
    await kube.delete(NACK_ACCOUNTS, "operator", namespace="default")
    await wait_secret_gone(kube, "default", "nack")
    assert await users_named(env, "sandbox-cluster/default/nack") == []
    assert await wait_until(lambda: creds_refused(secret), what="revoked creds refused")


async def test_deleted_or_edited_secret_is_restored_with_the_same_user(
    env: Environment, kube: KubeClient, operator: OperatorHandle
) -> None:
    await operator.start(**FAST)
    await create_pod(kube, labelled_pod("app", secret="app"))
    original = await wait_secret(kube, "default", "app")
    user_id = original["metadata"]["annotations"]["nats-tower.com/user-id"]

    await kube.delete(SECRETS, "app", namespace="default")
    restored = await wait_secret(kube, "default", "app")
    assert restored["metadata"]["uid"] != original["metadata"]["uid"]
    assert restored["metadata"]["annotations"]["nats-tower.com/user-id"] == user_id
    await assert_creds_work(restored)

    await operator.restart()
    emptied = dict(restored)
    emptied["data"] = {"nats.creds": "", "URLS": restored["data"]["URLS"]}
    await kube.replace(SECRETS, "app", emptied, namespace="default")
    repaired = await wait_secret(kube, "default", "app")
    assert set(repaired["data"]) == {"nats.creds", "URLS", "ACCOUNT_NAME"}
    assert decode(repaired)["nats.creds"] == decode(original)["nats.creds"]
    await wait_event(kube, "default", "app", "Restored")
    assert len(await users_named(env, "sandbox-cluster/default/app")) == 1


async def test_resync_follows_tower_url_change_and_user_deletion(
    env: Environment, kube: KubeClient, operator: OperatorHandle
) -> None:
    await operator.start(NATS_TOWER_RESYNC_INTERVAL="0.02", **FAST)  # 1.2 s
    await create_pod(kube, labelled_pod("app", secret="app"))
    first = await wait_secret(kube, "default", "app")

    extra_url = "nats://127.0.0.1:1"
    await env.tower.admin.update(
        "nats_auth_operators",
        str(env.installation["id"]),
        {"url": f"{env.nats.client_url},{extra_url}"},
    )

    async def urls_updated() -> bool:
        secret = await get_secret(kube, "default", "app")
        return bool(secret) and decode(secret)["URLS"].endswith(extra_url)  # type: ignore[arg-type]

    await wait_until(urls_updated, what="URLS updated after resync")

    # The user is deleted in Tower: re-issued (the account is still linked), with an Event.
    user_id = first["metadata"]["annotations"]["nats-tower.com/user-id"]
    await env.tower.admin.delete("nats_auth_users", user_id)

    async def reissued() -> dict[str, Any] | None:
        secret = await get_secret(kube, "default", "app")
        if secret and secret["metadata"]["annotations"]["nats-tower.com/user-id"] != user_id:
            return secret
        return None

    fresh = await wait_until(reissued, what="credential re-issued")
    await wait_event(kube, "default", "app", "Reissued")
    await assert_creds_work(fresh)


async def test_removed_access_link_revokes_namespace_credentials(
    env: Environment, kube: KubeClient, operator: OperatorHandle
) -> None:
    await operator.start(NATS_TOWER_RESYNC_INTERVAL="0.02", **FAST)
    await create_pod(kube, labelled_pod("app", secret="app", namespace="team-b"))
    secret = await wait_secret(kube, "team-b", "app")
    await env.tower.admin.unlink(
        env.installation_key, "operator", cluster="sandbox-cluster", namespace="team-b"
    )
    await wait_secret_gone(kube, "team-b", "app", timeout=20)
    assert await users_named(env, "sandbox-cluster/team-b/app") == []
    await wait_event(kube, "team-b", "app", "ErrorK8sAccessNotAllowed")
    assert await wait_until(lambda: creds_refused(secret), what="revoked creds refused")

    # Linking again brings the credential back without a restart.
    await env.tower.admin.link(
        env.installation_key, "operator", cluster="sandbox-cluster", namespace="team-b"
    )
    await assert_creds_work(await wait_secret(kube, "team-b", "app", timeout=20))


async def test_role_change_reissues_under_new_role_and_revokes_old_user(
    env: Environment, kube: KubeClient, operator: OperatorHandle
) -> None:
    await operator.start(**FAST)
    pod = labelled_pod(
        "app",
        secret="app",
        labels={"nats-tower.com/nats-tower-role": "reader"},
        annotations={"nats-tower.com/nats-tower-subscribe": "orders.>"},
    )
    await create_pod(kube, pod)
    before = await wait_secret(kube, "default", "app")
    old_user = before["metadata"]["annotations"]["nats-tower.com/user-id"]

    await operator.restart()
    patch = {
        "metadata": {
            "labels": {"nats-tower.com/nats-tower-role": "writer"},
            "annotations": {
                "nats-tower.com/nats-tower-publish": "orders.>",
                "nats-tower.com/nats-tower-subscribe": "orders.>",
            },
        }
    }
    await kube.patch(PODS, "app", patch, namespace="default")

    async def reissued() -> dict[str, Any] | None:
        secret = await get_secret(kube, "default", "app")
        ann = (secret or {}).get("metadata", {}).get("annotations", {})
        if (
            ann.get("nats-tower.com/role") == "writer"
            and "nats-tower.com/revoke-user-id" not in ann
        ):
            return secret
        return None

    after = await wait_until(reissued, what="re-issued under role writer")
    assert after["metadata"]["annotations"]["nats-tower.com/credential-generation"] == "2"
    await wait_event(kube, "default", "app", "Updated")
    await assert_creds_work(after, subject="orders.new")
    assert old_user not in {u["id"] for u in await tower_users(env)}
    assert await wait_until(lambda: creds_refused(before), what="old role's creds refused")


@pytest.mark.timeout(60)
async def test_expiring_credentials_are_renewed_before_expiry(
    env: Environment, kube: KubeClient, operator: OperatorHandle
) -> None:
    await env.tower.admin.create_account(env.installation_key, "shortlived", user_jwt_ttl=6)
    await env.tower.admin.link(
        env.installation_key, "shortlived", cluster="sandbox-cluster", namespace="default"
    )
    await operator.start(**FAST)
    await create_pod(kube, labelled_pod("app", secret="short", account="shortlived"))
    first = await wait_secret(kube, "default", "short")
    assert "nats-tower.com/expires-at" in first["metadata"]["annotations"]
    first_user = first["metadata"]["annotations"]["nats-tower.com/user-id"]

    async def renewed() -> dict[str, Any] | None:
        secret = await get_secret(kube, "default", "short")
        ann = (secret or {}).get("metadata", {}).get("annotations", {})
        if ann.get("nats-tower.com/user-id") not in (None, first_user):
            return secret
        return None

    second = await wait_until(renewed, timeout=10, what="renewal before expiry")
    await wait_event(kube, "default", "app", "Renewed")
    await assert_creds_work(second)
    await wait_until(lambda: _user_absent(env, first_user), what="replaced user revoked")


async def _user_absent(env: Environment, user_id: str) -> bool:
    return user_id not in {u["id"] for u in await tower_users(env)}


async def test_deleted_secret_after_reissue_is_restored_without_orphaning_a_user(
    env: Environment, kube: KubeClient, operator: OperatorHandle
) -> None:
    await operator.start(**FAST)
    role = {"nats-tower.com/nats-tower-role": "r1"}
    await create_pod(
        kube,
        labelled_pod(
            "app",
            secret="app",
            labels=role,
            annotations={"nats-tower.com/nats-tower-publish": "a.>"},
        ),
    )
    await wait_secret(kube, "default", "app")
    patch = {
        "metadata": {
            "labels": {"nats-tower.com/nats-tower-role": "r2"},
            "annotations": {"nats-tower.com/nats-tower-publish": "b.>"},
        }
    }
    await kube.patch(PODS, "app", patch, namespace="default")

    async def generation_two() -> dict[str, Any] | None:
        secret = await get_secret(kube, "default", "app")
        ann = (secret or {}).get("metadata", {}).get("annotations", {})
        if ann.get("nats-tower.com/credential-generation") == "2" and (
            "nats-tower.com/revoke-user-id" not in ann
        ):
            return secret
        return None

    second = await wait_until(generation_two, what="generation 2")
    user_id = second["metadata"]["annotations"]["nats-tower.com/user-id"]

    await kube.delete(SECRETS, "app", namespace="default")
    restored = await wait_secret(kube, "default", "app")
    assert restored["metadata"]["annotations"]["nats-tower.com/user-id"] == user_id
    await operator.idle()
    assert [u["id"] for u in await tower_users(env)] == [user_id]
