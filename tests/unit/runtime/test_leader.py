"""Lease leader election against the in-process emulator: one leader at a time, renewal,
takeover after a crash, release on stop, conflicts, lost renewals, clock skew, the manager.

The emulator, the electors and the watchdog share one event loop on the virtual clock
(``virtual_time``); each elector measures expiry on that loop's clock and stamps the Lease with
a wall clock derived from it. Timings are therefore exact multiples of the lease settings
(plus the electors' own jitter), and "nobody else took over" is asserted after advancing past
the deadline at which someone would have.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from nats_tower_operator.emulator.server import Emulator
from nats_tower_operator.kube import LEASES, KubeClient, KubeConfig
from nats_tower_operator.runtime.leader import LeadershipLost, LeaseElector, micro_time
from nats_tower_operator.runtime.manager import Manager
from nats_tower_operator.runtime.metrics import Metrics

pytestmark = pytest.mark.usefixtures("virtual_time")

LEASE_NAME = "nats-tower-operator"
LEASE_PATH = f"/namespaces/default/leases/{LEASE_NAME}"
LEASE, RENEW_DEADLINE, RETRY = 1.0, 0.7, 0.2
FAST = {"lease_duration": LEASE, "renew_deadline": RENEW_DEADLINE, "retry_period": RETRY}
JITTERED_RETRY = RETRY * 1.2  # the longest wait between two acquire attempts
MICRO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
EPOCH = 1_700_000_000.0  # the wall time at virtual time 0


def now() -> float:
    return asyncio.get_running_loop().time()


def wall() -> float:
    """The wall clock of these tests: it runs with the virtual clock."""
    return EPOCH + now()


def user_of(identity: str) -> str:
    return f"system:serviceaccount:ops:{identity}"


class Replica:
    """One elector with its own client (own token, so the emulator audits it as its own user)."""

    def __init__(self, emu: Emulator, identity: str, **options: Any) -> None:
        token = f"token-{identity}"
        emu.access.tokens[token] = user_of(identity)
        self.identity = identity
        self.client = KubeClient(KubeConfig(server=emu.url, token=token))
        self.metrics = Metrics()
        self.elector = LeaseElector(
            self.client,
            namespace="default",
            identity=identity,
            metrics=self.metrics,
            monotonic=asyncio.get_running_loop().time,
            **{"clock": wall, **FAST, **options},
        )
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> Replica:
        self.task = asyncio.create_task(self.elector.run(self.stop), name=self.identity)
        return self

    async def crash(self) -> None:
        """Cancel the run task: no release, like a killed process."""
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    async def shutdown(self) -> None:
        """Graceful stop: the elector releases the lease if it holds it."""
        assert self.task is not None
        self.stop.set()
        await asyncio.wait_for(self.task, timeout=5)

    @property
    def gauge(self) -> float | None:
        return self.metrics.registry.get_sample_value("nats_tower_operator_leader")


class Cluster:
    """Replicas plus a watchdog that samples ``is_leader`` of all of them every 2 ms."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.replicas: list[Replica] = []
        self.violations: list[tuple[str, ...]] = []
        self.leaders_seen: list[str] = []
        self._watchdog: asyncio.Task[None] | None = None

    def add(self, identity: str, **options: Any) -> Replica:
        replica = Replica(self.emu, identity, **options)
        self.replicas.append(replica)
        return replica

    def leaders(self) -> list[str]:
        return [r.identity for r in self.replicas if r.elector.is_leader]

    def sample(self) -> None:
        """Record who leads now (the watchdog does this every 2 ms)."""
        leaders = self.leaders()
        if len(leaders) > 1:
            self.violations.append(tuple(leaders))
        if leaders and (not self.leaders_seen or self.leaders_seen[-1] != leaders[0]):
            self.leaders_seen.append(leaders[0])

    async def _watch(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(0.002)

    def watch(self) -> None:
        self._watchdog = asyncio.create_task(self._watch())

    async def aclose(self) -> None:
        tasks = [t for t in [self._watchdog, *(r.task for r in self.replicas)] if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for replica in self.replicas:
            await replica.client.aclose()


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator.running() as emulator:
        yield emulator


@pytest.fixture
async def cluster(emu: Emulator) -> AsyncIterator[Cluster]:
    c = Cluster(emu)
    try:
        yield c
    finally:
        await c.aclose()


@pytest.fixture
async def admin(emu: Emulator) -> AsyncIterator[KubeClient]:
    async with KubeClient(KubeConfig(server=emu.url, token="x")) as client:
        yield client


async def eventually(check: Callable[[], bool], *, timeout: float, what: str) -> float:
    """Poll ``check`` every millisecond until true; return the (virtual) seconds it took."""
    start = now()
    while not check():
        if now() - start > timeout:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.001)
    return now() - start


async def leads(replica: Replica, *, timeout: float) -> float:
    """Wait until ``replica`` leads; return the (virtual) seconds it took."""
    start = now()
    await asyncio.wait_for(replica.elector.wait_leader(), timeout)
    return now() - start


async def lease_spec(admin: KubeClient) -> dict[str, Any]:
    lease = await admin.get(LEASES, LEASE_NAME, namespace="default")
    spec: dict[str, Any] = lease["spec"]
    return spec


def lease_writes(emu: Emulator, identity: str) -> list[tuple[str, int]]:
    return [
        (r.verb, r.code)
        for r in emu.audit.resource_requests(user=user_of(identity))
        if r.resource == "leases" and r.verb in {"create", "update"}
    ]


def lease_reads(emu: Emulator, identity: str) -> int:
    """How many times ``identity`` read the Lease (each acquire or renew attempt reads it)."""
    return sum(
        1
        for r in emu.audit.resource_requests(user=user_of(identity))
        if r.resource == "leases" and r.verb == "get"
    )


async def test_one_replica_leads_and_renews_while_the_other_follows(
    cluster: Cluster, admin: KubeClient
) -> None:
    a = cluster.add("a").start()
    await leads(a, timeout=3)
    first = await lease_spec(admin)
    assert first["holderIdentity"] == "a"
    assert first["leaseDurationSeconds"] == 1
    assert first["leaseTransitions"] == 0
    assert MICRO_TIME.match(first["acquireTime"]) and MICRO_TIME.match(first["renewTime"])
    b = cluster.add("b").start()
    cluster.watch()
    # Five lease durations: b would have taken over after one, had a stopped renewing.
    await asyncio.sleep(5 * LEASE)

    assert cluster.violations == []
    assert cluster.leaders_seen == ["a"]
    assert a.elector.is_leader and not b.elector.is_leader
    later = await lease_spec(admin)
    assert later["holderIdentity"] == "a"
    assert later["acquireTime"] == first["acquireTime"]
    assert later["renewTime"] > first["renewTime"]
    assert later["leaseTransitions"] == 0
    assert (a.gauge, b.gauge) == (1.0, 0.0)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(b.elector.wait_leader(), 2 * LEASE)
    assert lease_writes(cluster.emu, "b") == []  # a follower only reads
    assert lease_reads(cluster.emu, "b") >= 5 * LEASE / JITTERED_RETRY  # ... and kept trying


async def test_a_crashed_holder_is_replaced_after_the_lease_duration(
    cluster: Cluster, admin: KubeClient
) -> None:
    a = cluster.add("a").start()
    await leads(a, timeout=3)
    acquired = (await lease_spec(admin))["acquireTime"]
    b = cluster.add("b").start()
    cluster.watch()
    await eventually(lambda: lease_reads(cluster.emu, "b") >= 2, timeout=1, what="b follows")

    await a.crash()  # no release: b must wait for the lease to expire
    assert not a.elector.is_leader and a.gauge == 0.0
    took = await leads(b, timeout=5)

    # The 1 s lease counts from b's last sight of a renewal (a renewed every 0.2 s, b looks
    # every 0.2 .. 0.24 s), and b takes over at its first look after that.
    assert LEASE - RETRY <= took <= LEASE + 2 * JITTERED_RETRY, took
    spec = await lease_spec(admin)
    assert spec["holderIdentity"] == "b"
    assert spec["leaseTransitions"] == 1
    assert spec["acquireTime"] > acquired
    assert b.gauge == 1.0
    assert cluster.violations == []
    await b.elector.wait_leader()


async def test_release_on_stop_hands_over_within_a_retry_period(
    cluster: Cluster, admin: KubeClient
) -> None:
    slow = {"lease_duration": 4.0, "renew_deadline": 3.0, "retry_period": 0.2}
    a = cluster.add("a", **slow).start()
    await leads(a, timeout=3)
    b = cluster.add("b", **slow).start()
    cluster.watch()
    await eventually(lambda: lease_reads(cluster.emu, "b") >= 1, timeout=1, what="b follows")

    start = now()
    await a.shutdown()  # returns normally after releasing
    assert not a.elector.is_leader and a.gauge == 0.0
    await leads(b, timeout=5)
    took = now() - start

    # b's next look (one jittered retry period), far below the 4 s lease: the release let b in.
    assert took <= JITTERED_RETRY + 0.001, took
    assert lease_writes(cluster.emu, "a")[-1] == ("update", 200)
    spec = await lease_spec(admin)
    assert spec["holderIdentity"] == "b"
    assert spec["leaseDurationSeconds"] == 4
    assert spec["leaseTransitions"] == 1
    assert cluster.violations == []


async def test_a_follower_stopping_writes_nothing(cluster: Cluster, admin: KubeClient) -> None:
    a = cluster.add("a").start()
    await leads(a, timeout=3)
    b = cluster.add("b").start()
    await eventually(lambda: lease_reads(cluster.emu, "b") >= 2, timeout=1, what="b follows")
    await b.shutdown()
    assert lease_writes(cluster.emu, "b") == []
    assert (await lease_spec(admin))["holderIdentity"] == "a"


async def test_a_conflicting_write_is_read_again_and_retried(
    cluster: Cluster, admin: KubeClient
) -> None:
    # A released lease; a's write of it is held back while someone else updates the lease.
    released = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": LEASE_NAME, "namespace": "default"},
        "spec": {"holderIdentity": "", "leaseDurationSeconds": 1, "leaseTransitions": 3},
    }
    await admin.create(LEASES, released, namespace="default")
    cluster.emu.faults.delay(0.5, count=1, method="PUT", path=LEASE_PATH)
    a = cluster.add("a").start()
    await eventually(lambda: lease_reads(cluster.emu, "a") >= 1, timeout=3, what="a reads")
    # a sent its PUT as soon as its read came back; the emulator holds it for 0.5 s. Step into
    # that window (I/O takes no virtual time, so a's PUT is certainly in it).
    await asyncio.sleep(0.1)
    lease = await admin.get(LEASES, LEASE_NAME, namespace="default")
    lease["metadata"]["labels"] = {"touched": "yes"}
    await admin.replace(LEASES, LEASE_NAME, lease, namespace="default")

    await leads(a, timeout=3)
    assert lease_writes(cluster.emu, "a")[:2] == [("update", 409), ("update", 200)]
    lease = await admin.get(LEASES, LEASE_NAME, namespace="default")
    assert lease["metadata"]["labels"] == {"touched": "yes"}  # written over the re-read
    assert lease["spec"]["holderIdentity"] == "a"
    assert lease["spec"]["leaseTransitions"] == 4


async def test_racing_replicas_never_both_lead(cluster: Cluster, emu: Emulator) -> None:
    # Slow lease writes widen every read-then-write window.
    emu.faults.delay(0.05, method="PUT", path=LEASE_PATH)
    emu.faults.delay(0.05, method="POST", path="/leases")
    for name in ("r0", "r1", "r2"):
        cluster.add(name)
    cluster.watch()
    for replica in cluster.replicas:
        replica.start()
    for round_, crash in enumerate((False, True, False)):
        await eventually(lambda: bool(cluster.leaders()), timeout=5, what="a leader")
        await asyncio.sleep(0.3)
        leader = next(r for r in cluster.replicas if r.elector.is_leader)
        await (leader.crash() if crash else leader.shutdown())
        cluster.add(f"r{3 + round_}").start()
    await eventually(lambda: bool(cluster.leaders()), timeout=5, what="a last leader")
    cluster.sample()

    assert cluster.violations == []
    assert len(cluster.leaders_seen) == 4
    assert len(set(cluster.leaders_seen)) == 4
    conflicts = [r for r in emu.audit.resource_requests() if r.resource == "leases"]
    assert sum(1 for r in conflicts if r.verb == "create" and r.code == 201) == 1


async def test_a_brief_renewal_failure_is_retried_within_the_deadline(
    cluster: Cluster, emu: Emulator
) -> None:
    a = cluster.add("a").start()
    await leads(a, timeout=3)
    emu.faults.fail_next(1, status=500, method="PUT", path=LEASE_PATH)
    cluster.watch()
    await eventually(lambda: emu.faults.injected == 1, timeout=1, what="a failed renewal")
    # Past the renew deadline of the renewal that failed: the retry kept a in front.
    await asyncio.sleep(RENEW_DEADLINE)
    assert emu.faults.injected == 1
    assert cluster.leaders_seen == ["a"]
    assert a.task is not None and not a.task.done()
    assert a.elector.is_leader
    renewed = len(lease_writes(emu, "a"))
    await eventually(
        lambda: len(lease_writes(emu, "a")) > renewed, timeout=2 * RETRY, what="a renews"
    )


async def test_renewals_failing_past_the_deadline_lose_leadership(
    cluster: Cluster, emu: Emulator
) -> None:
    a = cluster.add("a").start()
    await leads(a, timeout=3)
    b = cluster.add("b").start()
    cluster.watch()
    await eventually(lambda: lease_reads(cluster.emu, "b") >= 1, timeout=1, what="b follows")

    # a is cut off from the lease (it cannot even read it, so it never sees b take over):
    # only its renew deadline (0.7 s) ends its leadership before b's takeover (1 s lease).
    emu.access.deny(resource="leases", user=user_of("a"))
    start = now()
    assert a.task is not None
    with pytest.raises(LeadershipLost):
        await asyncio.wait_for(asyncio.shield(a.task), timeout=5)
    lost_after = now() - start
    # The renew deadline counts from a's last renewal, at most one retry period before the cut.
    assert RENEW_DEADLINE - RETRY <= lost_after <= RENEW_DEADLINE + 0.001, lost_after
    assert not a.elector.is_leader and a.gauge == 0.0
    denied = {(r.verb, r.code) for r in emu.audit.resource_requests(user=user_of("a"))}
    assert ("get", 403) in denied

    await leads(b, timeout=5)
    cluster.sample()
    assert cluster.violations == []
    assert cluster.leaders_seen == ["a", "b"]


async def test_server_errors_on_renewal_raise_leadership_lost(
    cluster: Cluster, emu: Emulator
) -> None:
    a = cluster.add("a").start()
    await leads(a, timeout=3)
    emu.faults.fail_next(100, status=500, method="PUT", path=LEASE_PATH)
    assert a.task is not None
    with pytest.raises(LeadershipLost, match=r"no successful renewal within 0\.7s"):
        await asyncio.wait_for(a.task, timeout=5)
    assert emu.faults.injected >= 2  # retried every retry period until the deadline


async def test_clock_skew_between_replicas_does_not_matter(
    cluster: Cluster, admin: KubeClient
) -> None:
    hour = 3600.0
    a = cluster.add("a").start()
    await leads(a, timeout=3)
    ahead = cluster.add("ahead", clock=lambda: wall() + hour).start()
    behind = cluster.add("behind", clock=lambda: wall() - hour).start()
    cluster.watch()
    # ahead sees a's renewTime as an hour old, and must not care: not even after it would
    # have expired twice over.
    await asyncio.sleep(2 * LEASE)
    assert cluster.leaders_seen == ["a"]

    await a.crash()
    await eventually(lambda: bool(cluster.leaders()), timeout=5, what="a new leader")
    # A stamp an hour off must not look expired (or alive) to the other: for several leases.
    await asyncio.sleep(3 * LEASE)
    assert cluster.violations == []
    assert len(cluster.leaders_seen) == 2  # the new leader keeps it despite the others' clocks
    new = next(r for r in (ahead, behind) if r.identity == cluster.leaders_seen[1])
    spec = await lease_spec(admin)
    assert spec["holderIdentity"] == new.identity
    written = datetime.strptime(spec["renewTime"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    expected = wall() + (hour if new is ahead else -hour)
    # Stamps come from the writer's own clock (written within the last renewal period):
    assert abs(written.timestamp() - expected) <= RETRY + 0.001


def test_micro_time_format() -> None:
    assert micro_time(1704067200.25) == "2024-01-01T00:00:00.250000Z"


@pytest.mark.parametrize(
    ("lease", "renew", "retry", "identity"),
    [
        (1.0, 1.0, 0.2, "a"),  # the renew deadline must end before the lease does
        (2.0, 1.0, 0.9, "a"),  # room for more than one (jittered) retry in the deadline
        (2.0, 1.0, 0.0, "a"),
        (1.0, 0.7, 0.2, ""),
    ],
)
async def test_bad_settings_are_refused(
    admin: KubeClient, lease: float, renew: float, retry: float, identity: str
) -> None:
    with pytest.raises(ValueError):
        LeaseElector(
            admin,
            namespace="default",
            identity=identity,
            lease_duration=lease,
            renew_deadline=renew,
            retry_period=retry,
        )


class Work:
    """A leader-only runnable that records when it runs."""

    name = "work"

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.stopped = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        self.started.set()
        try:
            await stop.wait()
        finally:
            self.stopped.set()


async def test_managers_run_leader_work_on_one_replica_and_hand_over(
    cluster: Cluster, emu: Emulator, admin: KubeClient
) -> None:
    def manager_for(replica: Replica, work: Work) -> Manager:
        manager = Manager(leader_gate=replica.elector, metrics=replica.metrics)
        manager.add(replica.elector, needs_leader=False)
        manager.add(work)
        return manager

    a, b = cluster.add("a"), cluster.add("b")
    work_a, work_b = Work(), Work()
    manager_a, manager_b = manager_for(a, work_a), manager_for(b, work_b)
    run_a = asyncio.create_task(manager_a.run_forever(install_signal_handlers=False))
    await asyncio.wait_for(work_a.started.wait(), timeout=3)
    run_b = asyncio.create_task(manager_b.run_forever(install_signal_handlers=False))
    await eventually(lambda: lease_reads(emu, "b") >= 1, timeout=1, what="b follows")
    await asyncio.sleep(2 * LEASE)  # past the time b would take over, were a's lease not renewed
    assert not work_b.started.is_set()

    manager_a.request_stop()  # graceful: work stops first, then the lease is released
    assert await asyncio.wait_for(run_a, timeout=5) == 0
    assert work_a.stopped.is_set()
    await asyncio.wait_for(work_b.started.wait(), timeout=1.5)
    assert (await lease_spec(admin))["holderIdentity"] == "b"

    # b's renewals are refused: the elector raises, the manager stops b's work and exits 1.
    emu.access.deny(verb="update", resource="leases", user=user_of("b"))
    assert await asyncio.wait_for(run_b, timeout=5) == 1
    assert manager_b.crashed == ("leader-election",)
    assert work_b.stopped.is_set()
    assert b.gauge == 0.0
