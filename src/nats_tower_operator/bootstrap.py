"""The only place that builds and wires the operator's objects.

Data flow: informers (pods and NACK Accounts as metadata, managed Secrets as summaries,
all with server-side label selectors) -> handlers map each event to a Secret key
(namespace, secret name) -> the work queue -> the credential reconciler -> Tower + the
Kubernetes API. The controller starts only once every informer has synced, so no decision
("this Secret has no consumers") is ever taken from a half-filled cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nats_tower_operator.kube import (
    NACK_ACCOUNTS,
    PODS,
    SECRETS,
    EventRecorder,
    Informer,
    KubeClient,
    KubeConfig,
    Resource,
)
from nats_tower_operator.reconcile import Request
from nats_tower_operator.reconcilers.consumers import ConsumerIndex, slim_consumer
from nats_tower_operator.reconcilers.credential import CredentialReconciler, ReconcilerOptions
from nats_tower_operator.reconcilers.labels import MANAGED_SECRET_LABEL_VALUE, SECRET_LABEL
from nats_tower_operator.reconcilers.secretdoc import summarize_secret
from nats_tower_operator.reconcilers.sweep import OrphanSweeper
from nats_tower_operator.runtime.controller import Controller
from nats_tower_operator.runtime.health import HealthServer
from nats_tower_operator.runtime.leader import LeaseElector
from nats_tower_operator.runtime.manager import Manager
from nats_tower_operator.runtime.metrics import Metrics
from nats_tower_operator.runtime.ratelimit import (
    BucketLimiter,
    ItemExponentialLimiter,
    MaxOfLimiter,
)
from nats_tower_operator.settings import Settings
from nats_tower_operator.tower import CredentialIssuer, TowerClient
from nats_tower_operator.tower.readiness import TowerReadiness

__all__ = ["Operator", "build_operator"]

log = logging.getLogger(__name__)


class _InformerRunnable:
    """Runs an informer until the manager stops."""

    def __init__(self, informer: Informer) -> None:
        self._informer = informer

    @property
    def name(self) -> str:
        return f"informer/{self._informer.name}"

    async def run(self, stop: asyncio.Event) -> None:
        task = asyncio.create_task(self._informer.run(), name=self.name)
        try:
            await stop.wait()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class _SyncedController:
    """Starts the controller's workers only after every informer has synced."""

    def __init__(self, controller: Controller, informers: list[Informer]) -> None:
        self._controller = controller
        self._informers = informers

    @property
    def name(self) -> str:
        return f"controller/{self._controller.name}"

    async def _all_synced(self) -> None:
        for informer in self._informers:
            await informer.wait_synced()

    async def run(self, stop: asyncio.Event) -> None:
        waiting = asyncio.create_task(self._all_synced())
        stopped = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({waiting, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if stopped in done:
            waiting.cancel()
            return
        stopped.cancel()
        log.info("caches synced; starting workers", extra={"controller": self._controller.name})
        await self._controller.run(stop)


class _Resync:
    """Every resync interval (or on SIGHUP): sweep orphaned users, then look at every Secret.

    A periodic pass lets each Secret decide from its last verification whether to ask
    Tower again; a triggered pass (SIGHUP, :meth:`Operator.trigger_resync`) verifies all.
    """

    name = "resync"

    def __init__(self, operator: Operator) -> None:
        self._op = operator
        self._wake = asyncio.Event()
        self._verify_all = False

    def trigger(self) -> None:
        """Run a verifying pass now."""
        self._verify_all = True
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        interval = self._op.settings.resync_interval
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, self.trigger)
        try:
            while not stop.is_set():
                waits = {asyncio.create_task(stop.wait()), asyncio.create_task(self._wake.wait())}
                await asyncio.wait(
                    waits,
                    timeout=interval if interval > 0 else None,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for task in waits:
                    task.cancel()
                if stop.is_set():
                    break
                verify, self._verify_all = self._verify_all, False
                self._wake.clear()
                await self._op.sweeper.sweep()
                self._op.enqueue_all(verify=verify)
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGHUP)


@dataclass
class Operator:
    """The wired operator: run it with :meth:`run`; tests reach its parts directly."""

    settings: Settings
    kube: KubeClient
    tower: TowerClient
    issuer: CredentialIssuer
    events: EventRecorder
    index: ConsumerIndex
    pods: Informer
    accounts: Informer | None
    secrets: Informer
    reconciler: CredentialReconciler
    controller: Controller
    metrics: Metrics
    manager: Manager
    health: HealthServer
    sweeper: OrphanSweeper
    tower_readiness: TowerReadiness
    resync: _Resync | None = None
    elector: LeaseElector | None = None

    def enqueue_all(self, *, verify: bool) -> None:
        """Queue every known Secret key; with ``verify`` each is checked against Tower."""
        self.issuer.invalidate()
        if verify:
            self.reconciler.force_resync()
        keys = set(self.index.secret_keys())
        for obj in self.secrets.store.list():
            meta = obj.get("metadata") or {}
            keys.add(Request(str(meta.get("namespace", "")), str(meta.get("name", ""))))
        for key in keys:
            self.controller.enqueue(key)
        log.info("resync", extra={"keys": len(keys), "verify": verify})

    def trigger_resync(self) -> None:
        """On-demand resync (also on SIGHUP): sweep orphans, verify every Secret now."""
        if self.resync is not None:
            self.resync.trigger()

    async def run(self, *, install_signal_handlers: bool = True) -> int:
        """Run until SIGTERM/SIGINT (or a crashed runnable); return the exit code."""
        try:
            return await self.manager.run_forever(install_signal_handlers=install_signal_handlers)
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP clients."""
        await self.tower.aclose()
        await self.kube.aclose()

    def synced(self) -> bool:
        """True when every informer has listed once."""
        informers = [self.pods, self.secrets] + ([self.accounts] if self.accounts else [])
        return all(i.synced.is_set() for i in informers)


def _consumer_handler(index: ConsumerIndex, controller: Controller, resource: Resource) -> Any:
    def handle(event: str, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
        # The index knows each object's previous Secret: a relabel touches both keys.
        for request in index.observe(resource.kind, resource.api_version, event, obj):
            controller.enqueue(request)

    return handle


def _secret_handler(
    controller: Controller, reconciler: CredentialReconciler, metrics: Metrics
) -> Any:
    per_namespace: dict[str, int] = {}

    def handle(event: str, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
        meta = obj.get("metadata") or {}
        namespace = str(meta.get("namespace", ""))
        if event in ("ADDED", "DELETED"):
            per_namespace[namespace] = per_namespace.get(namespace, 0) + (
                1 if event == "ADDED" else -1
            )
            metrics.set_managed_secrets(namespace, per_namespace[namespace])
        if event == "DELETED":
            reconciler.secret_deleted(obj)
        controller.enqueue(Request(namespace, str(meta.get("name", ""))))

    return handle


def _leader_identity() -> str:
    """The pod name plus a random suffix: each process is its own candidate (client-go style)."""
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


def _build_elector(settings: Settings, kube: KubeClient, metrics: Metrics) -> LeaseElector | None:
    """The Lease elector when leader election is on (several replicas), else None."""
    if not settings.leader_election:
        return None
    namespace = (
        settings.leader_election_namespace
        or kube.config.namespace
        or settings.namespace
        or "default"
    )
    return LeaseElector(
        kube,
        namespace=namespace,
        name=settings.leader_election_id,
        identity=_leader_identity(),
        lease_duration=settings.lease_duration,
        renew_deadline=settings.renew_deadline,
        retry_period=settings.retry_period,
        metrics=metrics,
    )


def build_operator(
    settings: Settings,
    *,
    kube_config: KubeConfig | None = None,
    health_port: int | None = None,
) -> Operator:
    """Build every object of the operator from ``settings`` (nothing starts yet)."""
    metrics = Metrics()
    kube = KubeClient(
        kube_config or KubeConfig.load(), qps=settings.kube_qps, burst=settings.kube_burst
    )
    tower = TowerClient(
        settings.tower_url,
        settings.token,
        timeout=settings.tower_timeout,
        observer=lambda method, collection, status, seconds: metrics.observe_tower_request(
            f"{method} {collection}", status if status is not None else "error", seconds
        ),
    )
    issuer = CredentialIssuer(
        tower,
        cluster_id=settings.cluster_id,
        lookup_ttl=settings.tower_cache_ttl,
        caching=settings.tower_caching,
    )
    events = EventRecorder(kube, host=socket.gethostname())
    index = ConsumerIndex()
    namespace = settings.namespace
    consumer_selector = SECRET_LABEL if settings.server_side_selector else None
    pods = Informer(
        kube,
        PODS,
        namespace=namespace,
        label_selector=consumer_selector,
        metadata_only=True,
        transform=slim_consumer,
    )
    accounts = (
        Informer(
            kube,
            NACK_ACCOUNTS,
            namespace=namespace,
            label_selector=consumer_selector,
            metadata_only=True,
            transform=slim_consumer,
            # Discovery is cheap; a NACK install is picked up within seconds.
            not_served_poll_interval=5.0,
        )
        if settings.watch_nack_accounts
        else None
    )
    secrets = Informer(
        kube,
        SECRETS,
        namespace=namespace,
        label_selector=f"{SECRET_LABEL}={MANAGED_SECRET_LABEL_VALUE}",
        transform=summarize_secret,
    )
    informers = [pods, secrets] + ([accounts] if accounts else [])

    def secret_lookup(ns: str, name: str) -> Mapping[str, Any] | None:
        return secrets.store.get(ns, name)

    def consumers_synced() -> bool:
        return pods.synced.is_set() and (accounts is None or accounts.synced.is_set())

    reconciler = CredentialReconciler(
        kube=kube,
        issuer=issuer,
        events=events,
        consumers=index,
        secrets=secret_lookup,
        consumers_synced=consumers_synced,
        options=ReconcilerOptions(
            cluster_id=settings.cluster_id,
            default_installation=settings.default_installation,
            allowed_installations=settings.allowed_installations,
            revoke_grace_period=settings.revoke_grace_period,
            access_retry_interval=settings.access_retry_interval,
            resync_interval=settings.resync_interval,
            renew_fraction=settings.renew_fraction,
        ),
        on_event=metrics.inc_event,
    )
    controller = Controller(
        "credentials",
        reconciler,
        workers=settings.workers,
        metrics=metrics,
        # Per-key backoff capped at 60 s (client-go: 300 s): after a Tower outage every
        # pending credential is retried within a minute of Tower coming back.
        limiter=MaxOfLimiter(
            ItemExponentialLimiter(base=0.1, cap=60.0), BucketLimiter(qps=50, burst=300)
        ),
    )
    pods.add_handler(_consumer_handler(index, controller, PODS))
    if accounts is not None:
        accounts.add_handler(_consumer_handler(index, controller, NACK_ACCOUNTS))
    secrets.add_handler(_secret_handler(controller, reconciler, metrics))

    elector = _build_elector(settings, kube, metrics)
    manager = Manager(leader_gate=elector, metrics=metrics)
    health = HealthServer(
        manager,
        metrics,
        host=settings.health_host,
        port=settings.health_port if health_port is None else health_port,
    )
    operator = Operator(
        settings=settings,
        kube=kube,
        tower=tower,
        issuer=issuer,
        events=events,
        index=index,
        pods=pods,
        accounts=accounts,
        secrets=secrets,
        reconciler=reconciler,
        controller=controller,
        metrics=metrics,
        manager=manager,
        health=health,
        sweeper=OrphanSweeper(
            issuer=issuer,
            consumers=index,
            secrets=secrets.store.list,
            ready=lambda: consumers_synced() and secrets.synced.is_set(),
            cluster_id=settings.cluster_id,
            namespace=settings.namespace,
            default_installation=settings.default_installation,
            allowed_installations=settings.allowed_installations,
            min_age=settings.revoke_grace_period,
        ),
        # Ready only with positive proof that Tower answers for our installations with our
        # token: real Tower answers a wrong token with empty lists, never with 401.
        tower_readiness=TowerReadiness(tower, settings.allowed_installations),
        elector=elector,
    )
    operator.resync = _Resync(operator)
    if elector is not None:
        manager.add(elector, needs_leader=False)
    for informer in informers:
        manager.add(_InformerRunnable(informer), needs_leader=False)
    manager.add(_SyncedController(controller, informers))
    manager.add(operator.resync)
    manager.add(health, needs_leader=False)
    manager.add_ready_check("caches-synced", operator.synced)
    manager.add(operator.tower_readiness, needs_leader=False)
    manager.add_ready_check("tower", operator.tower_readiness)
    return operator
