"""Tenant isolation: what a tenant that controls one namespace can do to another, attempted.

Two tenants share the operator and the Tower account ``operator``: ``team-a`` (the victim,
also the only namespace linked to the account ``payments``) and ``team-b`` (the attacker).
Each acts through its own ServiceAccount, confined by a Role and RoleBinding to its own
namespace (pods, Secrets, Events, ConfigMaps, NACK Accounts), which the emulator enforces
through :class:`~.tenancy.RbacAuthorizer`; the operator has its own identity with
cluster-wide rights, so the audit log tells its requests apart. Every attack is made as the
attacker could make it, against the real PocketBase Tower stand-in and a real nats-server.

What the attacker is assumed to know: the victim's Secret annotations (user id, user name,
content hash...), copied as an admin would see them; they are not secret, and a tenant may
learn them from a log or a screenshot. What it can never read: the victim's Secret data.

Proof of "never": :class:`~.tenancy.CredsSpy` watches every Secret of ``team-b`` for the
whole test and records the subject of every NATS user JWT that ever appears in any of their
data; :class:`~.tenancy.TowerUserLog` records every user Tower creates or deletes, as it
happens. Where something must not happen, the test first waits for the evidence that the
operator handled the input (its Event, or the informer having seen the object and the work
queue drained) before asserting.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import nats
import pytest

from nats_tower_operator.bootstrap import Operator
from nats_tower_operator.kube import EVENTS, PODS, SECRETS, Forbidden, KubeClient
from nats_tower_operator.reconcilers.desired import MAX_VALUE
from nats_tower_operator.reconcilers.labels import (
    CONTENT_HASH_ANNOTATION,
    CREDENTIAL_TYPE_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    PREFIX,
    PREVIOUS_USER_ANNOTATION,
    PUBLISH_ANNOTATION,
    ROLE_LABEL,
    SECRET_LABEL,
    SUBSCRIBE_ANNOTATION,
    USER_ID_ANNOTATION,
    USER_NAME_ANNOTATION,
    Reason,
)
from nats_tower_operator.reconcilers.secretdoc import content_hash
from nats_tower_operator.sandbox import Environment

from .harness import (
    OperatorHandle,
    assert_creds_work,
    creds_refused,
    decode,
    events_for,
    get_secret,
    labelled_pod,
    tower_users,
    wait_event,
    wait_secret,
    wait_until,
)
from .tenancy import (
    CredsSpy,
    RbacAuthorizer,
    Tenant,
    TowerUserLog,
    UserChange,
    make_tenant,
    secret_jwt_subjects,
)

VICTIM, ATTACKER = "team-a", "team-b"
OPERATOR_USER = "system:serviceaccount:nats-tower:nats-tower-operator"
OPERATOR_TOKEN = "isolation-operator-token"
CLUSTER = "sandbox-cluster"
#: The EventRecorder's per-namespace write budget (its defaults): burst, writes per second.
EVENT_BURST, EVENT_RATE = 25, 1.0
#: A Secret summary / slim object in the operator's caches may hold at most this much JSON.
#: Summaries keep identity, our bounded labels/annotations (values <= 1024 chars for
#: Secrets, <= MAX_VALUE for pods), a digest, up to 32 key names and two values <= 4 KiB.
CACHED_OBJECT_BOUND = 16 * 1024


def b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


@dataclass
class World:
    """The two tenants, the spies and the operator of one test."""

    env: Environment
    admin: KubeClient
    operator: OperatorHandle
    victim: Tenant
    attacker: Tenant
    users: TowerUserLog
    spy: CredsSpy
    started: float = 0.0

    async def start(self, **settings: str) -> Operator:
        self.started = time.monotonic()
        return await self.operator.start(**settings)

    @property
    def op(self) -> Operator:
        assert self.operator.op is not None
        return self.operator.op

    async def pod(self, tenant: Tenant, name: str, **kwargs: Any) -> dict[str, Any]:
        body = labelled_pod(name, namespace=tenant.namespace, **kwargs)
        return await tenant.client.create(PODS, body, namespace=tenant.namespace)

    async def victim_credential(
        self, pod: str, secret: str, *, check: str = "victim.check", **kwargs: Any
    ) -> dict[str, Any]:
        """A victim pod's credential, proven to work on nats-server (subject ``check``)."""
        await self.pod(self.victim, pod, secret=secret, **kwargs)
        written = await wait_secret(self.admin, VICTIM, secret)
        await assert_creds_work(written, subject=check)
        return written

    async def tower_user(self, public_key: str) -> UserChange:
        """The Tower user created with this public key (Tower's realtime log may lag a bit)."""

        async def created() -> UserChange | None:
            found = [c for c in self.users.changes if c.public_key == public_key]
            return found[0] if found else None

        change: UserChange = await wait_until(created, what=f"Tower user {public_key}")
        return change

    async def victim_keys(self) -> set[str]:
        """Public keys of every Tower user ever created for the victim's namespace."""
        prefix = f"{CLUSTER}/{VICTIM}/"
        now = {u["public_key"] for u in await tower_users(self.env) if u["name"].startswith(prefix)}
        return now | {c.public_key for c in self.users.named(prefix, "create")}

    async def operator_saw(self, informer: str, namespace: str, name: str, present: bool) -> None:
        """Wait until the operator's informer has (or no longer has) the object, then idle."""
        store = getattr(self.op, informer).store

        async def seen() -> bool:
            return (store.get(namespace, name) is not None) == present

        await wait_until(seen, what=f"operator's {informer} cache: {namespace}/{name}")
        await self.operator.idle()

    async def assert_victim_untouched(self, *secrets: dict[str, Any]) -> None:
        """The victim's users exist, were never deleted, and their creds still connect."""
        ids = {s["metadata"]["annotations"][USER_ID_ANNOTATION] for s in secrets}
        assert ids <= {u["id"] for u in await tower_users(self.env)}
        assert ids.isdisjoint(self.users.deleted_ids())
        for secret in secrets:
            await assert_creds_work(secret, subject="victim.still")
            live = await get_secret(self.admin, VICTIM, secret["metadata"]["name"])
            assert live is not None and live["data"] == secret["data"]

    async def assert_no_victim_creds_in_attacker_namespace(self) -> None:
        """No JWT of a victim user ever appeared in any team-b Secret during the test."""
        await self.spy.stop()
        victims = await self.victim_keys()
        assert victims, "the victim has no users: nothing was proven"
        leaked = {k: v for k, v in self.spy.seen.items() if k in victims}
        assert leaked == {}, f"victim credentials appeared in {ATTACKER}: {leaked}"


@pytest.fixture
async def world(
    env: Environment, kube: KubeClient, operator: OperatorHandle
) -> AsyncIterator[World]:
    key = env.installation_key
    await env.tower.admin.create_account(key, "payments")
    await env.tower.admin.link(key, "payments", cluster=env.cluster_id, namespace=VICTIM)
    await env.tower.wait_pushed()
    authorizer = RbacAuthorizer(env.emulator.store)
    env.emulator.access.rules.append(authorizer)
    victim = await make_tenant(env, kube, authorizer, VICTIM)
    attacker = await make_tenant(env, kube, authorizer, ATTACKER)
    # The operator: its own identity, not governed by the tenants' RBAC (cluster-wide rights).
    env.emulator.access.tokens[OPERATOR_TOKEN] = OPERATOR_USER
    env.kubeconfig = env.emulator.write_kubeconfig(
        env.workdir / "operator-kubeconfig", token=OPERATOR_TOKEN
    )
    users = TowerUserLog(env)
    await users.start()
    spy = CredsSpy(kube, ATTACKER)
    await spy.start()
    try:
        yield World(env, kube, operator, victim, attacker, users, spy)
    finally:
        await operator.stop()
        await spy.stop()
        await users.stop()
        await victim.client.aclose()
        await attacker.client.aclose()


def forged_copy(
    original: Mapping[str, Any],
    name: str,
    data: Mapping[str, str],
    *,
    annotations: Mapping[str, str | None] | None = None,
) -> dict[str, Any]:
    """A Secret for team-b carrying ``original``'s operator labels and annotations."""
    meta = original["metadata"]
    copied = {k: v for k, v in (meta.get("annotations") or {}).items() if k.startswith(PREFIX)}
    for key, value in (annotations or {}).items():
        if value is None:
            copied.pop(key, None)
        else:
            copied[key] = value
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": ATTACKER,
            "labels": {
                SECRET_LABEL: "true",
                CREDENTIAL_TYPE_LABEL: "user",
                MANAGED_BY_LABEL: MANAGED_BY,
            },
            "annotations": copied,
        },
        "type": "Opaque",
        "data": dict(data),
    }


async def warnings_in(client: KubeClient, namespace: str) -> list[dict[str, Any]]:
    """Every Warning Event of ``namespace`` (as its tenant reads them)."""
    listing = await client.list(EVENTS, namespace=namespace)
    return [e for e in listing.items if e.get("type") == "Warning"]


async def publish_refused(secret: Mapping[str, Any], allowed: str, refused: str) -> list[str]:
    """Connect with the Secret's creds: ``allowed`` round-trips; the errors ``refused`` got."""
    values = decode(dict(secret))
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

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
            sub = await nc.subscribe(allowed)
            await nc.flush()
            await nc.publish(allowed, b"ok")
            assert (await sub.next_msg(timeout=3)).data == b"ok"
            assert errors == []
            await nc.publish(refused, b"no")
            await nc.flush()

            async def told() -> bool:
                return any(refused in e for e in errors)

            await wait_until(told, timeout=5, what=f"nats-server refusing {refused}")
        finally:
            await nc.close()
    finally:
        os.unlink(handle.name)
    return errors


# ---------------------------------------------------------------------- control


async def test_tenant_identities_are_confined_to_their_own_namespace(world: World) -> None:
    """Control: each tenant can write in its namespace and nowhere else (RBAC, 403)."""
    attacker, admin = world.attacker.client, world.admin
    await world.pod(world.attacker, "mine", secret="mine")
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}, "data": {}}
    await attacker.create(SECRETS, secret, namespace=ATTACKER)
    await attacker.delete(SECRETS, "x", namespace=ATTACKER)
    denied = [
        attacker.create(SECRETS, secret, namespace=VICTIM),
        attacker.create(PODS, labelled_pod("p", secret="s", namespace=VICTIM), namespace=VICTIM),
        attacker.get(SECRETS, "anything", namespace=VICTIM),
        attacker.list(SECRETS),  # all namespaces
        attacker.patch(PODS, "mine", {"metadata": {"labels": {"a": "b"}}}, namespace=VICTIM),
        world.victim.client.create(SECRETS, secret, namespace=ATTACKER),
    ]
    for call in denied:
        with pytest.raises(Forbidden):
            await call
    forbidden = [r for r in world.env.emulator.audit.records if r.code == 403]
    assert {r.user for r in forbidden} == {world.attacker.user, world.victim.user}
    assert await get_secret(admin, VICTIM, "x") is None


# ---------------------------------------------------------------------- 1. theft


async def test_copied_ownership_annotations_never_hand_out_the_victims_credentials(
    world: World,
) -> None:
    """A forged Secret naming the victim's user gets a user of its own, never the victim's.

    Variants: the victim's annotations with empty data; with edited data and a matching
    content hash (a forged Secret that looks intact, caught when the operator verifies);
    the victim's ``payments`` user (an account team-b is not linked to), asked for with the
    ``operator`` account and with ``payments``; and a forged Secret deleted before a pod asks
    for it (the operator's tombstone of it names the victim's user).
    """
    await world.start()
    app = await world.victim_credential("app", "app-creds")
    pay = await world.victim_credential("pay", "pay-creds", account="payments")
    attacker = world.attacker.client

    async def forge(body: dict[str, Any]) -> None:
        await attacker.create(SECRETS, body, namespace=ATTACKER)

    # (a) The victim's annotations, empty data.
    await forge(forged_copy(app, "copy-empty", {}))
    await world.pod(world.attacker, "thief-empty", secret="copy-empty")
    # (b) Edited data with a content hash that matches it, and the user name made to match
    # the attacker's Secret: intact as far as the Secret itself can tell.
    edited = {
        "nats.creds": b64("-----BEGIN NATS USER JWT-----\nforged\n------END NATS USER JWT------"),
        "URLS": app["data"]["URLS"],
        "ACCOUNT_NAME": app["data"]["ACCOUNT_NAME"],
    }
    await forge(
        forged_copy(
            app,
            "copy-edited",
            edited,
            annotations={
                CONTENT_HASH_ANNOTATION: content_hash(edited),
                USER_NAME_ANNOTATION: f"{CLUSTER}/{ATTACKER}/copy-edited",
            },
        )
    )
    await world.pod(world.attacker, "thief-edited", secret="copy-edited")
    # (c) The victim's payments user, asked for with the account team-b may use...
    await forge(forged_copy(pay, "copy-pay", {}))
    await world.pod(world.attacker, "thief-pay", secret="copy-pay")
    # ... and with payments itself, which team-b may not use.
    await forge(forged_copy(pay, "copy-pay-direct", {}))
    await world.pod(
        world.attacker, "thief-pay-direct", secret="copy-pay-direct", account="payments"
    )
    # (d) A forged Secret the operator only knows from its deletion (the tombstone): a pod
    # with a bad label holds the name meanwhile, so nothing is written for it yet.
    await world.pod(world.attacker, "thief-deleted", secret="copy-deleted", account=None)
    await wait_event(attacker, ATTACKER, "thief-deleted", Reason.MISSING_ACCOUNT_LABEL)
    await forge(forged_copy(app, "copy-deleted", {}))
    await world.operator_saw("secrets", ATTACKER, "copy-deleted", present=True)
    await attacker.delete(SECRETS, "copy-deleted", namespace=ATTACKER)
    await world.operator_saw("secrets", ATTACKER, "copy-deleted", present=False)
    await attacker.patch(
        PODS,
        "thief-deleted",
        {"metadata": {"labels": {"nats-tower.com/nats-tower-account": "operator"}}},
        namespace=ATTACKER,
    )

    for thief in ("thief-empty", "thief-pay", "thief-deleted"):
        await wait_event(attacker, ATTACKER, thief, Reason.OWNERSHIP_MISMATCH)
    await wait_event(attacker, ATTACKER, "thief-pay-direct", Reason.ACCESS_NOT_ALLOWED)
    await world.operator.idle()
    # The intact-looking forgery is left alone until the operator verifies it with Tower.
    world.op.trigger_resync()
    await wait_event(attacker, ATTACKER, "thief-edited", Reason.OWNERSHIP_MISMATCH)
    await world.operator.idle()

    # Each forged Secret the attacker may use now holds a team-b user of its own.
    own: set[str] = set()
    for name in ("copy-empty", "copy-edited", "copy-pay", "copy-deleted"):
        secret = await wait_secret(world.admin, ATTACKER, name)
        (subject,) = secret_jwt_subjects(secret)
        own.add(subject)
        user = await world.tower_user(subject)
        assert user.name.startswith(f"{CLUSTER}/{ATTACKER}/{name}#"), user
        await assert_creds_work(secret, subject="attacker.own")
    # Not linked to payments: nothing written at all.
    direct = await get_secret(world.admin, ATTACKER, "copy-pay-direct")
    assert direct is not None and direct["data"] == {}
    # The attacker's Events say nothing about the victim.
    for event in await warnings_in(attacker, ATTACKER):
        text = json.dumps(event)
        assert VICTIM not in text and app["metadata"]["annotations"][USER_ID_ANNOTATION] not in text

    await world.assert_no_victim_creds_in_attacker_namespace()
    assert own <= world.spy.seen.keys()  # the spy did see what was written in team-b
    await world.assert_victim_untouched(app, pay)


# ---------------------------------------------------------------------- 2. revocation


async def test_forged_user_ids_never_revoke_another_namespaces_user(world: World) -> None:
    """The victim's user id in a team-b Secret never gets it revoked, whatever the path.

    Paths: a replaced-user annotation (``revoke-user-id``) added to the attacker's own
    Secret; a forged Secret deleted while nothing uses it (the tombstone's user would be
    revoked); a forged Secret left unused past the grace period (also naming the victim's
    payments user as replaced); and, all along, the orphan sweep every 1.2 s.
    """
    await world.start(NATS_TOWER_REVOKE_GRACE_PERIOD="1", NATS_TOWER_RESYNC_INTERVAL="0.02")
    app = await world.victim_credential("app", "app-creds")
    pay = await world.victim_credential("pay", "pay-creds", account="payments")
    victim_user = app["metadata"]["annotations"][USER_ID_ANNOTATION]
    pay_user = pay["metadata"]["annotations"][USER_ID_ANNOTATION]
    attacker = world.attacker.client

    # (a) The attacker's own Secret names the victim's user as the one it replaced.
    await world.pod(world.attacker, "own", secret="own-creds")
    await wait_secret(world.admin, ATTACKER, "own-creds")
    await attacker.patch(
        SECRETS,
        "own-creds",
        {"metadata": {"annotations": {PREVIOUS_USER_ANNOTATION: victim_user}}},
        namespace=ATTACKER,
    )
    await wait_event(attacker, ATTACKER, "own", Reason.OWNERSHIP_MISMATCH)

    async def annotation_dropped() -> bool:
        own = await get_secret(world.admin, ATTACKER, "own-creds")
        return own is not None and PREVIOUS_USER_ANNOTATION not in own["metadata"]["annotations"]

    await wait_until(annotation_dropped, what="forged revoke-user-id dropped")

    # (b) Tombstone: a forged Secret, seen by the operator, deleted while only a pod with a
    # bad label asks for it; then that pod goes too: "deleted while unused" -> revoke.
    await world.pod(world.attacker, "holder", secret="decoy-deleted", account=None)
    await wait_event(attacker, ATTACKER, "holder", Reason.MISSING_ACCOUNT_LABEL)
    await attacker.create(SECRETS, forged_copy(app, "decoy-deleted", {}), namespace=ATTACKER)
    await world.operator_saw("secrets", ATTACKER, "decoy-deleted", present=True)
    await attacker.delete(SECRETS, "decoy-deleted", namespace=ATTACKER)
    await world.operator_saw("secrets", ATTACKER, "decoy-deleted", present=False)
    await attacker.delete(PODS, "holder", namespace=ATTACKER)
    await world.operator_saw("pods", ATTACKER, "holder", present=False)

    # (c) A forged Secret nothing uses, past the grace period, also naming the victim's
    # payments user as replaced.
    orphan = forged_copy(app, "decoy-orphan", {}, annotations={PREVIOUS_USER_ANNOTATION: pay_user})
    await attacker.create(SECRETS, orphan, namespace=ATTACKER)
    await wait_event(attacker, ATTACKER, "decoy-orphan", Reason.OWNERSHIP_MISMATCH)

    # The sweep ran after all of this: a user left behind in team-b is swept (barrier).
    key = world.env.installation_key
    leftover = await world.env.tower.admin.create_user(
        key, "operator", f"{CLUSTER}/{ATTACKER}/gone"
    )

    async def swept() -> bool:
        return leftover["id"] in world.users.deleted_ids()

    await wait_until(swept, timeout=20, what="the orphan sweep to run")
    await world.operator.idle()

    await world.assert_victim_untouched(app, pay)
    await world.assert_no_victim_creds_in_attacker_namespace()


async def test_a_foreign_user_in_a_deleted_secret_is_warned_about(world: World) -> None:
    """The tombstone path refuses to revoke a foreign user; the attacker's side is told."""
    await world.start()  # the default grace period: the decoy is not revoked as unused
    app = await world.victim_credential("app", "app-creds")
    attacker = world.attacker.client
    await attacker.create(SECRETS, forged_copy(app, "decoy", {}), namespace=ATTACKER)
    await world.operator_saw("secrets", ATTACKER, "decoy", present=True)
    await attacker.delete(SECRETS, "decoy", namespace=ATTACKER)
    await world.operator_saw("secrets", ATTACKER, "decoy", present=False)
    await world.assert_victim_untouched(app)
    reasons = {e["reason"] for e in await warnings_in(attacker, ATTACKER)}
    assert Reason.OWNERSHIP_MISMATCH in reasons


# ---------------------------------------------------------------------- 3. starving

QUOTA = {
    "NATS_TOWER_MAX_CREDENTIALS_PER_NAMESPACE": "5",
    "NATS_TOWER_USER_CHANGES_BURST": "8",
    "NATS_TOWER_USER_CHANGES_PER_MINUTE": "6",
}


async def attacker_secrets(world: World) -> list[dict[str, Any]]:
    listing = await world.admin.list(SECRETS, namespace=ATTACKER)
    return [s for s in listing.items if (s.get("data") or {}).get("nats.creds")]


async def test_a_namespace_cannot_hold_more_credentials_than_its_quota(world: World) -> None:
    """12 labelled pods, quota 5: at most 5 Secrets and Tower users in team-b.

    The pods exist when the operator starts (made while it was restarting, say), so its
    workers take them up together: the quota must hold under concurrency.
    """
    names = [f"p{i}" for i in range(12)]
    await asyncio.gather(*(world.pod(world.attacker, n, secret=f"s-{n}") for n in names))
    await world.start(**QUOTA)
    told = {Reason.CREDENTIAL_QUOTA_EXCEEDED, Reason.RATE_LIMITED}

    async def each_handled() -> bool:
        written = {s["metadata"]["name"] for s in await attacker_secrets(world)}
        for name in names:
            if f"s-{name}" in written:
                continue
            reasons = {e["reason"] for e in await events_for(world.admin, ATTACKER, name)}
            if not reasons & told:
                return False
        return True

    await wait_until(each_handled, timeout=20, what="every pod given a Secret or a Warning")
    await world.operator.idle()
    reasons = {e["reason"] for e in await warnings_in(world.attacker.client, ATTACKER)}
    assert Reason.CREDENTIAL_QUOTA_EXCEEDED in reasons
    created = world.users.named(f"{CLUSTER}/{ATTACKER}/", "create")
    written = await attacker_secrets(world)
    assert len(written) <= 5 and len(created) <= 5, (len(written), len(created))


async def test_unlabelling_a_managed_secret_does_not_free_its_quota(world: World) -> None:
    """Quota 2: the attacker unlabels its two Secrets (to keep their creds) and asks again.

    The unlabelled Secrets' users are revoked, and it never holds more than 2 valid Tower
    users. Pods are added one at a time, so the concurrency race of the previous test plays
    no part.
    """
    await world.start(NATS_TOWER_MAX_CREDENTIALS_PER_NAMESPACE="2")
    attacker = world.attacker.client
    for name in ("a0", "a1"):
        await world.pod(world.attacker, name, secret=name)
        await wait_secret(world.admin, ATTACKER, name)
        await world.operator_saw("secrets", ATTACKER, name, present=True)
    unlabel = {"metadata": {"labels": {SECRET_LABEL: None}}}
    for name in ("a0", "a1"):
        await attacker.patch(SECRETS, name, unlabel, namespace=ATTACKER)
        await world.operator_saw("secrets", ATTACKER, name, present=False)
    for name in ("b0", "b1", "b2"):
        await world.pod(world.attacker, name, secret=name)

        async def handled(name: str = name) -> bool:
            if await get_secret(world.admin, ATTACKER, name) is not None:
                return True
            reasons = {e["reason"] for e in await events_for(world.admin, ATTACKER, name)}
            return Reason.CREDENTIAL_QUOTA_EXCEEDED in reasons

        await wait_until(handled, what=f"pod {name} given a Secret or told the quota")
        await world.operator.idle()
    # A Secret that left the operator's management took its user out of circulation: the
    # unlabelled Secrets' creds are revoked (the Secrets themselves are left alone).
    for name in ("a0", "a1"):
        unlabelled = await get_secret(world.admin, ATTACKER, name)
        assert unlabelled is not None
        assert await wait_until(
            lambda s=unlabelled: creds_refused(s), what="unlabelled creds revoked"
        )
    live = [
        u["name"]
        for u in await tower_users(world.env)
        if u["name"].startswith(f"{CLUSTER}/{ATTACKER}/")
    ]
    assert len(live) <= 2, sorted(live)


async def test_user_churn_is_rate_limited_and_does_not_starve_other_namespaces(
    world: World,
) -> None:
    """Relabel and create/delete churn in team-b: user changes stay within the rate; team-a
    credentials still arrive promptly meanwhile."""
    await world.start(NATS_TOWER_REVOKE_GRACE_PERIOD="1", **QUOTA)
    await world.victim_credential("before", "before-creds")
    attacker = world.attacker.client
    for i in range(5):  # the quota, filled one at a time
        await world.pod(world.attacker, f"p{i}", secret=f"s{i}")
        await wait_secret(world.admin, ATTACKER, f"s{i}")
    await world.operator_saw("secrets", ATTACKER, "s4", present=True)

    async def churn() -> None:
        for i in range(30):
            label = {"metadata": {"labels": {SECRET_LABEL: f"churn-{i}"}}}
            await attacker.patch(PODS, "p0", label, namespace=ATTACKER)
            await world.pod(world.attacker, f"x{i}", secret=f"x{i}")
            await attacker.delete(PODS, f"x{i}", namespace=ATTACKER)
            await asyncio.sleep(0.2)

    churning = asyncio.create_task(churn())
    # The first relabel already meets the full quota (s0 is kept for its grace period).
    await wait_event(attacker, ATTACKER, "p0", Reason.CREDENTIAL_QUOTA_EXCEEDED)
    asked = time.monotonic()  # the victim asks while the attacker churns at its limits
    during = await world.victim_credential("during", "during-creds")
    victim_latency = time.monotonic() - asked
    assert not churning.done(), "the churn ended before the victim asked"
    await churning
    await world.operator.idle()

    elapsed = time.monotonic() - world.started
    changes = world.users.named(f"{CLUSTER}/{ATTACKER}/")
    allowed = 8 + 6 / 60 * elapsed
    assert len(changes) <= allowed, (len(changes), allowed, [(c.action, c.name) for c in changes])
    # (The quota itself is the previous test's; churn overshoots it by the same race.)
    assert victim_latency < 5.0
    await assert_creds_work(during)
    asked = time.monotonic()
    await world.victim_credential("after", "after-creds")
    assert time.monotonic() - asked < 5.0


# ---------------------------------------------------------------------- 4. memory


def _json_size(obj: Any) -> int:
    return len(json.dumps(obj, default=str))


def _longest_value(obj: Any) -> int:
    if isinstance(obj, Mapping):
        return max((_longest_value(v) for v in obj.values()), default=0)
    if isinstance(obj, list | tuple):
        return max((_longest_value(v) for v in obj), default=0)
    return len(obj) if isinstance(obj, str) else 0


BIG_DATA = 1_000_000  # bytes of data per Secret, under the API server's 1 MiB


def big_secret(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": ATTACKER,
            "labels": {SECRET_LABEL: "true"},
            "annotations": {
                # 240 KB in all: under the API server's 256 KiB for annotations
                USER_ID_ANNOTATION: "u" * 100_000,
                "nats-tower.com/note": "n" * 70_000,
                "other/note": "o" * 70_000,
            },
        },
        "type": "Opaque",
        "data": {"blob": b64(os.urandom(BIG_DATA // 2).hex())},
    }


async def test_oversized_annotations_and_big_secrets_are_never_cached(world: World) -> None:
    """100 KiB annotations on pods and ~1 MiB labelled Secrets: the caches hold summaries.

    Bound asserted: every cached pod and Secret serialises to at most 16 KiB of JSON and
    holds no string over 4096 characters; Secrets listed (pages of 20) and watched alike.
    """
    admin, attacker = world.admin, world.attacker.client
    for i in range(24):  # listed at start: two pages
        await attacker.create(SECRETS, big_secret(f"big-{i}"), namespace=ATTACKER)
    await world.start()
    for i in range(24, 30):  # watched
        await attacker.create(SECRETS, big_secret(f"big-{i}"), namespace=ATTACKER)
    for i in range(4):
        huge = {PUBLISH_ANNOTATION: "orders." + "x" * 100 * 1024, "other/huge": "y" * 100 * 1024}
        await world.pod(
            world.attacker,
            f"huge-{i}",
            secret=f"huge-{i}",
            labels={ROLE_LABEL: "w"},
            annotations=huge,
        )
    for i in range(4):
        event = await wait_event(attacker, ATTACKER, f"huge-{i}", Reason.ANNOTATION_TOO_LARGE)
        assert str(MAX_VALUE) in event["message"]
    await world.operator_saw("secrets", ATTACKER, "big-29", present=True)

    secrets = world.op.secrets.store.list(ATTACKER)
    assert len(secrets) == 30
    pods = world.op.pods.store.list(ATTACKER)
    assert len(pods) == 4
    for cached in secrets + pods:
        assert _json_size(cached) <= CACHED_OBJECT_BOUND
        assert _longest_value(cached) <= 4096
    assert all("data" not in s for s in secrets)
    # Nothing issued for any of them, and the operator still serves the namespace.
    assert world.users.named(f"{CLUSTER}/{ATTACKER}/") == []
    await world.pod(world.attacker, "fine", secret="fine-creds")
    await assert_creds_work(await wait_secret(admin, ATTACKER, "fine-creds"))


async def test_many_small_prefixed_annotations_do_not_inflate_the_caches(world: World) -> None:
    """Hundreds of short ``nats-tower.com/*`` annotations: the cached copy stays small.

    Each value is under the per-value limits (1024 for Secrets, 4096 for pods), so only a
    bound on how many of our keys are kept protects the caches.
    """
    await world.start()
    attacker = world.attacker.client
    padding = {f"nats-tower.com/pad-{i}": "p" * 1000 for i in range(200)}  # ~200 KiB
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "padded", "labels": {SECRET_LABEL: "true"}, "annotations": padding},
        "data": {},
    }
    await attacker.create(SECRETS, secret, namespace=ATTACKER)
    await world.pod(world.attacker, "padded", secret="padded-creds", annotations=padding)
    await world.operator_saw("secrets", ATTACKER, "padded", present=True)
    await world.operator_saw("pods", ATTACKER, "padded", present=True)
    sizes = {
        "secret": _json_size(world.op.secrets.store.get(ATTACKER, "padded")),
        "pod": _json_size(world.op.pods.store.get(ATTACKER, "padded")),
    }
    assert max(sizes.values()) <= CACHED_OBJECT_BOUND, sizes


# ---------------------------------------------------------------------- 5. Events


async def test_an_event_flood_stays_within_the_namespace_budget_and_others_are_still_told(
    world: World,
) -> None:
    """200 invalid pods plus touches in team-b: Event writes <= 25 + 1/s; team-a still told."""
    attacker = world.attacker.client
    limit = asyncio.Semaphore(16)
    # 100 pods share one Secret and exist before the operator starts, so every pass sees
    # all of them: at most 10 are told. 100 more, a Secret each, arrive while it runs.
    shared = [f"shared-{i}" for i in range(100)]
    alone = [f"alone-{i}" for i in range(100)]

    async def bounded(call: Any) -> Any:
        async with limit:
            return await call

    await asyncio.gather(
        *(bounded(world.pod(world.attacker, n, secret="shared", account=None)) for n in shared)
    )
    await world.start()
    await asyncio.gather(
        *(bounded(world.pod(world.attacker, n, secret=n, account=None)) for n in alone)
    )
    touched: list[dict[str, Any]] = []
    for touch in range(3):
        patch = {"metadata": {"annotations": {"nats-tower.com/touch": str(touch)}}}
        touched = await asyncio.gather(
            *(bounded(attacker.patch(PODS, n, patch, namespace=ATTACKER)) for n in shared + alone)
        )
    store = world.op.pods.store
    last = {p["metadata"]["name"]: p["metadata"]["resourceVersion"] for p in touched}

    async def touches_seen() -> bool:
        # The operator keeps no unknown nats-tower.com/ key: compare resourceVersions.
        pods = {n: store.get(ATTACKER, n) for n in shared + alone}
        return all(p and p["metadata"]["resourceVersion"] == last[n] for n, p in pods.items())

    await wait_until(touches_seen, what="the operator to see every touch")
    await world.operator.idle()

    # team-a is still told at once.
    asked = time.monotonic()
    await world.pod(world.victim, "valid", secret="valid-creds")
    await wait_event(world.victim.client, VICTIM, "valid", Reason.CREATED, timeout=10)
    victim_told = time.monotonic() - asked

    elapsed = time.monotonic() - world.started
    writes = [
        r
        for r in world.env.emulator.audit.records
        if r.user == OPERATOR_USER
        and r.resource == "events"
        and r.namespace == ATTACKER
        and r.verb in ("create", "patch")
    ]
    budget = EVENT_BURST + EVENT_RATE * elapsed
    assert len(writes) <= budget, (len(writes), budget)
    # The flood asked for more than the budget: the limit was reached, not just respected.
    assert world.op.events.dropped > 0
    events = (await attacker.list(EVENTS, namespace=ATTACKER)).items
    told_shared = {e["involvedObject"]["name"] for e in events} & set(shared)
    # Every pass saw all 100 and told (budget permitting) the same first 10 of them.
    assert told_shared and told_shared <= set(sorted(shared)[:10]), sorted(told_shared)
    assert victim_told < 5.0


# ---------------------------------------------------------------------- 6. roles


async def test_an_existing_role_keeps_its_subjects_whoever_asks_for_it(world: World) -> None:
    """The attacker asks for the victim's role with more subjects: it gets the role as it is."""
    await world.start()
    victim_role = {
        PUBLISH_ANNOTATION: "orders.>",
        SUBSCRIBE_ANNOTATION: "orders.>, _INBOX.>",
    }
    writer = await world.victim_credential(
        "writer",
        "writer-creds",
        check="orders.check",
        labels={ROLE_LABEL: "writer"},
        annotations=victim_role,
    )
    await world.pod(
        world.attacker,
        "squatter",
        secret="squatter-creds",
        labels={ROLE_LABEL: "writer"},
        annotations={
            PUBLISH_ANNOTATION: "orders.>, payments.>",
            SUBSCRIBE_ANNOTATION: "orders.>, payments.>, _INBOX.>",
        },
    )
    squatter = await wait_secret(world.admin, ATTACKER, "squatter-creds")
    event = await wait_event(
        world.attacker.client, ATTACKER, "squatter", Reason.ROLE_SUBJECTS_DIFFER
    )
    assert "orders.>" in event["message"] and event["type"] == "Warning"

    errors = await publish_refused(squatter, "orders.new", "payments.x")
    assert any("permissions violation" in e.lower() for e in errors), errors
    role = await world.env.tower.admin.role(world.env.installation_key, "operator", "writer")
    assert role["publish"] == ["orders.>"]
    assert sorted(role["subscribe"]) == ["_INBOX.>", "orders.>"]
    await publish_refused(writer, "orders.new", "payments.x")


# ---------------------------------------------------------------------- 7. existence


async def test_an_unlinked_account_and_a_missing_one_are_told_alike(world: World) -> None:
    """``payments`` (exists, linked to team-a only) and ``nosuch``: same reason, same words."""
    await world.start()
    attacker = world.attacker.client
    await world.pod(world.attacker, "probe-pay", secret="probe-pay", account="payments")
    await world.pod(world.attacker, "probe-none", secret="probe-none", account="nosuch")
    pay = await wait_event(attacker, ATTACKER, "probe-pay", Reason.ACCESS_NOT_ALLOWED)
    none = await wait_event(attacker, ATTACKER, "probe-none", Reason.ACCESS_NOT_ALLOWED)
    await world.operator.idle()
    assert (pay["type"], none["type"]) == ("Warning", "Warning")
    assert pay["message"].replace("'payments'", "'X'") == none["message"].replace("'nosuch'", "'X'")
    assert "'payments'" in pay["message"]
    reasons = [
        e["reason"]
        for e in (await attacker.list(EVENTS, namespace=ATTACKER)).items
        if e["involvedObject"]["name"].startswith("probe-")
    ]
    assert sorted(reasons) == [Reason.ACCESS_NOT_ALLOWED] * 2
    assert await get_secret(world.admin, ATTACKER, "probe-pay") is None
    assert world.users.named(f"{CLUSTER}/{ATTACKER}/") == []
