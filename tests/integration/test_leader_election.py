"""Two operators with Lease leader election against one environment: only the leader writes.

Each operator talks to the emulator with its own token mapped to its own user, so the audit
log tells their requests apart. The scenario: A leads and issues credentials while B follows
without writing anything; A dies abruptly (no release) and B takes over within the lease
duration and issues the credential that was requested meanwhile; then a fresh replica C
follows B, B stops gracefully (releasing the lease) and C takes over within a retry period.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from nats_tower_operator.bootstrap import build_operator
from nats_tower_operator.kube import LEASES, KubeClient, KubeConfig
from nats_tower_operator.runtime.leader import LeaseElector
from nats_tower_operator.sandbox import Environment
from nats_tower_operator.settings import load_settings

from .harness import create_pod, labelled_pod, tower_users, wait_secret, wait_until

WRITES = {"create", "update", "patch", "delete", "deletecollection"}
LEASE_NAME = "nats-tower-operator"
LEASE_NAMESPACE = "default"
LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD = 4.0, 3.0, 0.3
ELECTION_ENV = {
    "NATS_TOWER_LEADER_ELECTION": "true",
    "NATS_TOWER_LEADER_ELECTION_NAMESPACE": LEASE_NAMESPACE,
    "NATS_TOWER_LEADER_ELECTION_LEASE_DURATION": str(LEASE_DURATION),
    "NATS_TOWER_LEADER_ELECTION_RENEW_DEADLINE": str(RENEW_DEADLINE),
    "NATS_TOWER_LEADER_ELECTION_RETRY_PERIOD": str(RETRY_PERIOD),
}


def user_of(name: str) -> str:
    return f"system:serviceaccount:default:nats-tower-operator-{name}"


class Replica:
    """One operator replica with its own token, kubeconfig and leader elector."""

    def __init__(self, env: Environment, name: str) -> None:
        token = f"operator-{name}-token"
        env.emulator.access.tokens[token] = user_of(name)
        kubeconfig = env.emulator.write_kubeconfig(env.workdir / f"kubeconfig-{name}", token=token)
        settings = load_settings(env.operator_env(KUBECONFIG=str(kubeconfig), **ELECTION_ENV))
        self.user = user_of(name)
        self.op = build_operator(settings, kube_config=KubeConfig.from_kubeconfig(str(kubeconfig)))
        assert self.op.elector is not None, "NATS_TOWER_LEADER_ELECTION=true builds an elector"
        self.elector: LeaseElector = self.op.elector
        self.task: asyncio.Task[int] | None = None

    async def start(self) -> Replica:
        task = self.task = asyncio.create_task(self.op.run(install_signal_handlers=False))

        async def synced() -> bool:
            assert not task.done(), f"operator exited early: {task.result()}"
            return self.op.synced()

        await wait_until(synced, timeout=10, what="operator caches synced")
        return self

    async def kill(self) -> None:
        """Cancel the whole operator at once: nothing is drained, the lease is not released."""
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    async def stop(self) -> int:
        """The graceful stop of SIGTERM: drain, then release the lease."""
        assert self.task is not None
        self.op.manager.request_stop()
        return await asyncio.wait_for(self.task, timeout=20)

    @property
    def leader_gauge(self) -> float | None:
        return self.op.metrics.registry.get_sample_value("nats_tower_operator_leader")


@pytest.fixture
async def replicas() -> AsyncIterator[list[Replica]]:
    started: list[Replica] = []
    try:
        yield started
    finally:
        for replica in started:
            if replica.task is not None and not replica.task.done():
                await replica.kill()


async def wait_leader(replica: Replica, timeout: float) -> float:
    start = time.monotonic()
    await asyncio.wait_for(replica.elector.wait_leader(), timeout)
    return time.monotonic() - start


async def caches_hold(replica: Replica, pod: str, secret: str) -> bool:
    op = replica.op
    return (
        op.pods.store.get("default", pod) is not None
        and op.secrets.store.get("default", secret) is not None
    )


async def wait_lease_reads(
    env: Environment, replica: Replica, *, since: int, count: int = 1
) -> None:
    """Wait until ``replica`` has read the Lease ``count`` times after audit record ``since``."""

    async def read() -> bool:
        reads = [
            r
            for r in env.emulator.audit.records[since:]
            if (r.user, r.verb, r.resource) == (replica.user, "get", "leases")
        ]
        return len(reads) >= count

    await wait_until(read, what=f"{count} Lease read(s) by {replica.user}")


def writes_by_user(env: Environment, start: int = 0) -> list[tuple[str, str, str, str]]:
    """The operators' writes after audit record ``start``, leases aside (not the test's)."""
    return [
        (r.user, r.verb, r.resource, r.name)
        for r in env.emulator.audit.records[start:]
        if r.verb in WRITES and r.resource != "leases" and r.user.startswith(user_of(""))
    ]


async def test_only_the_leader_writes_and_a_follower_takes_over(
    env: Environment, kube: KubeClient, replicas: list[Replica]
) -> None:
    a = Replica(env, "a")
    replicas.append(a)
    await a.start()
    await wait_leader(a, timeout=5)
    b = Replica(env, "b")
    replicas.append(b)
    await b.start()

    # A leads: it issues the credential; B, synced and ready, writes nothing.
    await create_pod(kube, labelled_pod("first", secret="first-creds"))
    await wait_secret(kube, "default", "first-creds")
    await a.op.controller.wait_idle(10)
    # Barrier: B's caches hold the pod and the Secret (the work is in B's view too), and
    # B's elector has read the Lease since then and stayed a follower.
    await wait_until(lambda: caches_hold(b, "first", "first-creds"), what="the work in B's caches")
    await wait_lease_reads(env, b, since=len(env.emulator.audit.records))
    assert a.elector.is_leader and not b.elector.is_leader
    assert (a.leader_gauge, b.leader_gauge) == (1.0, 0.0)
    writers = {user for user, *_ in writes_by_user(env)}
    assert a.user in writers and b.user not in writers
    assert not any(r.verb in WRITES for r in env.emulator.audit.resource_requests(user=b.user))
    queue = b.op.controller.queue  # B's informers queued the Secret; nobody works on it
    assert (len(queue), queue.processing_count) == (1, 0)

    # A dies without releasing; a credential is requested while nobody leads.
    killed_at = len(env.emulator.audit.records)
    start = time.monotonic()
    await a.kill()
    sent_by_a = len(env.emulator.audit.resource_requests(user=a.user))
    await create_pod(kube, labelled_pod("second", secret="second-creds"))
    await wait_secret(kube, "default", "second-creds", timeout=LEASE_DURATION + 6)
    took = time.monotonic() - start
    assert LEASE_DURATION - 1.0 <= took <= LEASE_DURATION + 5, took  # B waited out the lease
    assert b.elector.is_leader and b.leader_gauge == 1.0
    lease = await kube.get(LEASES, LEASE_NAME, namespace=LEASE_NAMESPACE)
    assert lease["spec"]["holderIdentity"] == b.elector.identity
    assert lease["spec"]["leaseTransitions"] == 1
    assert {user for user, *_ in writes_by_user(env, killed_at)} == {b.user}

    # A fresh replica follows; B stops gracefully and hands the lease over at once.
    c = Replica(env, "c")
    replicas.append(c)
    joined_at = len(env.emulator.audit.records)
    await c.start()
    await b.op.controller.wait_idle(10)
    # Barrier: C has read B's Lease twice (the second read is where an expiry could be
    # judged) and is still a follower.
    await wait_lease_reads(env, c, since=joined_at, count=2)
    assert not c.elector.is_leader and c.leader_gauge == 0.0
    handover_at = len(env.emulator.audit.records)
    assert await b.stop() == 0
    took = await wait_leader(c, timeout=LEASE_DURATION)
    assert took < 2.0, took  # released: no need to wait out the 4 s lease
    await create_pod(kube, labelled_pod("third", secret="third-creds"))
    await wait_secret(kube, "default", "third-creds")
    assert {user for user, *_ in writes_by_user(env, handover_at)} == {c.user}
    lease = await kube.get(LEASES, LEASE_NAME, namespace=LEASE_NAMESPACE)
    assert lease["spec"]["holderIdentity"] == c.elector.identity
    assert lease["spec"]["leaseTransitions"] == 2

    assert len(env.emulator.audit.resource_requests(user=a.user)) == sent_by_a  # A stayed dead
    # Exactly one Tower user per Secret: no credential was issued twice across the handovers.
    names = sorted(u["name"] for u in await tower_users(env))
    assert names == [f"sandbox-cluster/default/{n}-creds" for n in ("first", "second", "third")]


async def test_bootstrap_builds_the_elector_from_the_environment(env: Environment) -> None:
    settings = load_settings(env.operator_env(**ELECTION_ENV))
    op = build_operator(settings, kube_config=KubeConfig.from_kubeconfig(str(env.kubeconfig)))
    try:
        assert isinstance(op.elector, LeaseElector)
        off = build_operator(
            load_settings(env.operator_env()),
            kube_config=KubeConfig.from_kubeconfig(str(env.kubeconfig)),
        )
        assert off.elector is None
        await off.aclose()
    finally:
        await op.aclose()
