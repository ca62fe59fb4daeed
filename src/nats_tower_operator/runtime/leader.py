"""Lease-based leader election: client-go's ``leaderelection`` on a coordination.k8s.io/v1 Lease.

:class:`LeaseElector` is both a manager :class:`~nats_tower_operator.runtime.manager.Runnable`
(add it with ``needs_leader=False``) and the manager's
:class:`~nats_tower_operator.runtime.manager.LeaderGate`. Its ``run``:

1. *acquires*: every ``retry_period`` (with a little jitter) it reads the Lease and takes it
   when it is absent (create; ``AlreadyExists`` means another replica won), released (empty
   ``holderIdentity``), already ours, or expired;
2. *renews* every ``retry_period`` while leading; if no renewal succeeded for
   ``renew_deadline`` seconds, or the Lease turns out to be held by someone else, leadership
   is lost and ``run`` raises :class:`LeadershipLost`, which makes the manager stop the process
   (a replica that may have lost its Lease must not keep reconciling; the Deployment restarts
   it as a follower);
3. on ``stop`` (graceful shutdown), if still leading, *releases* the Lease like client-go's
   ``ReleaseOnCancel`` (``holderIdentity: ""``, ``leaseDurationSeconds: 1``) so a follower takes
   over within one ``retry_period`` instead of a whole lease duration.

Expiry never compares a timestamp written by another replica with our clock: like client-go,
the elector remembers when *it* last saw the Lease record change (on the ``monotonic`` clock) and
treats the Lease as expired once ``leaseDurationSeconds`` have passed since then without a
change. Clock skew between replicas therefore does not matter. The wall ``clock`` is only used
for the ``acquireTime``/``renewTime`` stamps written into the Lease. ``monotonic`` measures
expiry and the renew deadline; the waits between attempts run on the event loop, so it must
be the loop's clock (``time.monotonic`` for asyncio's loops, the default).

Every write carries the ``resourceVersion`` that was read, so two replicas racing for the Lease
cannot both win: the loser gets ``409 Conflict``, reads the Lease again and sees the winner.
:attr:`LeaseElector.is_leader` also turns false on its own once the last successful renewal is
older than ``renew_deadline``, even if the renew loop has not run yet (a stalled event loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from nats_tower_operator.kube.client import KubeClient
from nats_tower_operator.kube.errors import AlreadyExists, Conflict, KubeError, NotFound
from nats_tower_operator.kube.models import JSON
from nats_tower_operator.kube.resources import LEASES
from nats_tower_operator.runtime.manager import LeadershipLost
from nats_tower_operator.runtime.metrics import Metrics

__all__ = ["DEFAULT_LEASE_NAME", "LeadershipLost", "LeaseElector", "LeaseRecord", "micro_time"]

logger = logging.getLogger(__name__)

DEFAULT_LEASE_NAME = "nats-tower-operator"
_JITTER = 0.2
"""Acquire attempts wait ``retry_period * (1 + U(0, _JITTER))``: racing replicas spread out."""
_ATTEMPTS = 3
"""Reads and writes per attempt: a ``Conflict``/``AlreadyExists`` is followed by a re-read."""
_RESOLUTION = time.get_clock_info("monotonic").resolution
"""Time left within the clock's resolution counts as none (asyncio runs timers that early)."""


def micro_time(seconds: float) -> str:
    """Format a POSIX timestamp as a Kubernetes ``MicroTime`` (``2024-01-01T00:00:00.000000Z``)."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """The leader-election fields of a Lease spec (client-go's ``LeaderElectionRecord``)."""

    holder: str
    duration: int
    acquire_time: str | None
    renew_time: str | None
    transitions: int

    @classmethod
    def from_lease(cls, lease: Mapping[str, Any]) -> LeaseRecord:
        """Read the record from a Lease object; missing or malformed fields become empty."""
        spec = lease.get("spec")
        if not isinstance(spec, Mapping):
            spec = {}
        holder = spec.get("holderIdentity")
        duration = spec.get("leaseDurationSeconds")
        transitions = spec.get("leaseTransitions")
        acquire = spec.get("acquireTime")
        renew = spec.get("renewTime")
        return cls(
            holder=holder if isinstance(holder, str) else "",
            duration=duration if isinstance(duration, int) and duration > 0 else 0,
            acquire_time=acquire if isinstance(acquire, str) else None,
            renew_time=renew if isinstance(renew, str) else None,
            transitions=transitions if isinstance(transitions, int) and transitions > 0 else 0,
        )

    def spec(self) -> dict[str, Any]:
        """The record as Lease ``spec`` fields."""
        spec: dict[str, Any] = {
            "holderIdentity": self.holder,
            "leaseDurationSeconds": self.duration,
            "leaseTransitions": self.transitions,
        }
        if self.acquire_time is not None:
            spec["acquireTime"] = self.acquire_time
        if self.renew_time is not None:
            spec["renewTime"] = self.renew_time
        return spec


class LeaseElector:
    """Elects one leader among replicas through a Lease (see the module docstring)."""

    def __init__(  # noqa: PLR0913 - keyword-only Lease options (client-go's)
        self,
        client: KubeClient,
        *,
        namespace: str,
        name: str = DEFAULT_LEASE_NAME,
        identity: str,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not identity:
            raise ValueError("identity must not be empty")
        if not 0 < retry_period * (1 + _JITTER) < renew_deadline < lease_duration:
            raise ValueError(
                "need 0 < retry_period * 1.2 < renew_deadline < lease_duration, got "
                f"{retry_period:g}, {renew_deadline:g}, {lease_duration:g}"
            )
        self._client = client
        self._namespace = namespace
        self._lease_name = name
        self._identity = identity
        self._lease_duration = lease_duration
        self._duration_seconds = max(1, math.ceil(lease_duration))
        self._renew_deadline = renew_deadline
        self._retry_period = retry_period
        self._metrics = metrics
        self._clock = clock
        self._monotonic = monotonic
        self._rand = random.Random()
        self._leading = False
        self._leader_event = asyncio.Event()
        self._renewed_at = -math.inf  # monotonic start of our last successful write
        self._observed: LeaseRecord | None = None
        self._observed_at = -math.inf  # monotonic time we last saw the record change
        self._lease: JSON | None = None  # the Lease as we last wrote it (for the release)

    # -- the protocols -------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The runnable's name in logs."""
        return "leader-election"

    @property
    def identity(self) -> str:
        """This replica's ``holderIdentity``."""
        return self._identity

    @property
    def is_leader(self) -> bool:
        """True while this replica holds the Lease and renewed it within ``renew_deadline``."""
        return self._leading and self._monotonic() - self._renewed_at < self._renew_deadline

    async def wait_leader(self) -> None:
        """Return once this replica leads."""
        await self._leader_event.wait()

    async def run(self, stop: asyncio.Event) -> None:
        """Acquire, renew until ``stop``, then release; raise :class:`LeadershipLost` if lost."""
        try:
            if not await self._acquire(stop):
                return
            await self._renew(stop)
            await self._release()
        finally:
            self._set_leading(False)

    # -- the loops -----------------------------------------------------------------------

    async def _acquire(self, stop: asyncio.Event) -> bool:
        """Try every retry period until we lead (True) or ``stop`` is set (False)."""
        logger.info(
            "leader election: trying to acquire lease %s/%s as %s",
            self._namespace,
            self._lease_name,
            self._identity,
        )
        while not stop.is_set():
            if await self._attempt(self._renew_deadline):
                if stop.is_set():  # acquired while we were asked to stop: hand it back
                    await self._release()
                    return False
                self._set_leading(True)
                logger.info(
                    "leader election: acquired lease %s/%s as %s",
                    self._namespace,
                    self._lease_name,
                    self._identity,
                )
                return True
            period = self._retry_period * (1 + _JITTER * self._rand.random())
            if await _wait(stop, period):
                break
        return False

    async def _renew(self, stop: asyncio.Event) -> None:
        """Renew every retry period until ``stop``; raise :class:`LeadershipLost` on failure."""
        while True:
            if await _wait(stop, self._retry_period):
                return
            while True:
                remaining = self._renew_time_left()
                if remaining <= 0:
                    self._lose(f"no successful renewal within {self._renew_deadline:g}s")
                held = await self._attempt(remaining)
                if held is True:
                    break
                if held is False:
                    holder = self._observed.holder if self._observed else ""
                    self._lose(f"the lease is now held by {holder or 'nobody'}")
                if await _wait(stop, min(self._retry_period, self._renew_time_left())):
                    return  # stopping: release (it may fail too) and leave

    def _renew_time_left(self) -> float:
        """Seconds until the renew deadline, 0 once it is within the clock's resolution.

        A deadline computed as a float sum can be a hair away after waiting for it; without
        the resolution that hair would be waited for (a wait that ends at once) again and again.
        """
        left = self._renewed_at + self._renew_deadline - self._monotonic()
        return left if left > _RESOLUTION else 0.0

    async def _attempt(self, timeout: float) -> bool | None:
        """One bounded try: True if we hold the Lease, False if another does, None on errors."""
        try:
            async with asyncio.timeout(timeout):
                return await self._try_acquire_or_renew()
        except TimeoutError:
            logger.warning(
                "leader election: lease %s/%s: no answer within %.1fs",
                self._namespace,
                self._lease_name,
                timeout,
            )
        except KubeError as exc:
            logger.warning(
                "leader election: lease %s/%s: %s", self._namespace, self._lease_name, exc
            )
        return None

    async def _try_acquire_or_renew(self) -> bool:
        """Read the Lease and write ourselves as holder if allowed; True if we now hold it."""
        for _ in range(_ATTEMPTS):
            try:
                lease = await self._client.get(LEASES, self._lease_name, namespace=self._namespace)
            except NotFound:
                now = self._clock()
                record = LeaseRecord(
                    holder=self._identity,
                    duration=self._duration_seconds,
                    acquire_time=micro_time(now),
                    renew_time=micro_time(now),
                    transitions=0,
                )
                started = self._monotonic()
                try:
                    created = await self._client.create(
                        LEASES, self._new_lease(record), namespace=self._namespace
                    )
                except AlreadyExists:
                    continue  # another replica created it first: read theirs
                self._wrote(created, started)
                return True
            record = LeaseRecord.from_lease(lease)
            self._observe(record)
            if record.holder and record.holder != self._identity and not self._expired(record):
                return False
            now = self._clock()
            ours = record.holder == self._identity
            desired = LeaseRecord(
                holder=self._identity,
                duration=self._duration_seconds,
                acquire_time=record.acquire_time if ours else micro_time(now),
                renew_time=micro_time(now),
                transitions=record.transitions if ours else record.transitions + 1,
            )
            started = self._monotonic()
            try:
                updated = await self._client.replace(
                    LEASES,
                    self._lease_name,
                    _with_spec(lease, desired),
                    namespace=self._namespace,
                )
            except Conflict:
                continue  # someone wrote in between: read again and decide again
            self._wrote(updated, started)
            return True
        return False

    async def _release(self) -> None:
        """Hand the Lease back (empty holder, 1 s duration) if we still hold it."""
        lease = self._lease
        if lease is None:
            return
        self._set_leading(False)  # stop believing before anyone else can take over
        self._lease = None
        try:
            async with asyncio.timeout(self._renew_deadline):
                for _ in range(_ATTEMPTS):
                    record = LeaseRecord.from_lease(lease)
                    if record.holder != self._identity:
                        return  # not ours any more: nothing to release
                    now = micro_time(self._clock())
                    released = LeaseRecord(
                        holder="",
                        duration=1,
                        acquire_time=now,
                        renew_time=now,
                        transitions=record.transitions,
                    )
                    try:
                        await self._client.replace(
                            LEASES,
                            self._lease_name,
                            _with_spec(lease, released),
                            namespace=self._namespace,
                        )
                    except Conflict:
                        lease = await self._client.get(
                            LEASES, self._lease_name, namespace=self._namespace
                        )
                        continue
                    logger.info(
                        "leader election: released lease %s/%s", self._namespace, self._lease_name
                    )
                    return
        except (KubeError, TimeoutError) as exc:
            # Not fatal: a follower takes over when the lease expires instead.
            logger.warning(
                "leader election: could not release lease %s/%s: %s",
                self._namespace,
                self._lease_name,
                exc or "timed out",
            )

    # -- state ---------------------------------------------------------------------------

    def _new_lease(self, record: LeaseRecord) -> dict[str, Any]:
        return {
            "apiVersion": LEASES.api_version,
            "kind": LEASES.kind,
            "metadata": {"name": self._lease_name, "namespace": self._namespace},
            "spec": record.spec(),
        }

    def _observe(self, record: LeaseRecord) -> None:
        """Remember when we last saw the record change (our clock, never theirs)."""
        if record == self._observed:
            return
        previous = self._observed.holder if self._observed is not None else None
        self._observed = record
        self._observed_at = self._monotonic()
        if record.holder != previous and record.holder and record.holder != self._identity:
            logger.info(
                "leader election: lease %s/%s is held by %s",
                self._namespace,
                self._lease_name,
                record.holder,
            )

    def _expired(self, record: LeaseRecord) -> bool:
        duration = record.duration or self._lease_duration
        return self._monotonic() >= self._observed_at + duration

    def _wrote(self, lease: JSON, started: float) -> None:
        self._lease = lease
        self._renewed_at = started
        self._observed = LeaseRecord.from_lease(lease)
        self._observed_at = self._monotonic()

    def _set_leading(self, leading: bool) -> None:
        if leading == self._leading:
            return
        self._leading = leading
        if leading:
            self._leader_event.set()
        else:
            self._leader_event.clear()
        if self._metrics is not None:
            self._metrics.set_leader(leading)

    def _lose(self, why: str) -> None:
        self._set_leading(False)
        self._lease = None
        logger.warning(
            "leader election: lost lease %s/%s: %s", self._namespace, self._lease_name, why
        )
        raise LeadershipLost(f"lost lease {self._namespace}/{self._lease_name}: {why}")


def _with_spec(lease: Mapping[str, Any], record: LeaseRecord) -> dict[str, Any]:
    """``lease`` (keeping its metadata and resourceVersion) with ``record`` in its spec."""
    spec = lease.get("spec")
    merged = dict(spec) if isinstance(spec, Mapping) else {}
    merged.update(record.spec())
    return {**lease, "spec": merged}


async def _wait(stop: asyncio.Event, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``stop``; return whether it is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout)
    return stop.is_set()
