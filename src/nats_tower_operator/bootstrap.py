"""The only place that builds and wires the operator's objects; no behaviour lives here.

Data flow: informers (pods and NACK Accounts as metadata, managed Secrets as summaries,
all with server-side label selectors) -> handlers (``reconcilers/resync.py``) map each
event to a Secret key -> the work queue -> the credential reconciler -> Tower + the
Kubernetes API. The controller starts only once every informer has synced
(``runtime/informers.py``).
"""

from __future__ import annotations

import logging
import socket
import uuid
from dataclasses import dataclass

from nats_tower_operator.kube import (
    NACK_ACCOUNTS,
    PODS,
    SECRETS,
    EventRecorder,
    Informer,
    KubeClient,
    KubeConfig,
)
from nats_tower_operator.reconcile import Request
from nats_tower_operator.reconcilers.consumers import ConsumerIndex, slim_consumer
from nats_tower_operator.reconcilers.credential import CredentialReconciler
from nats_tower_operator.reconcilers.labels import MANAGED_SECRET_LABEL_VALUE, SECRET_LABEL
from nats_tower_operator.reconcilers.plan import Policy
from nats_tower_operator.reconcilers.quota import NamespaceQuota
from nats_tower_operator.reconcilers.resync import Resync, consumer_handler, secret_handler
from nats_tower_operator.reconcilers.secretdoc import summarize_secret
from nats_tower_operator.reconcilers.sweep import OrphanSweeper
from nats_tower_operator.runtime.controller import Controller
from nats_tower_operator.runtime.health import HealthServer
from nats_tower_operator.runtime.informers import add_controller, add_informers
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

__all__ = ["Clients", "Operator", "build_clients", "build_operator", "policy_from"]

log = logging.getLogger(__name__)

#: Per-key retry backoff of the credential controller, capped at 60 s (client-go: 300 s):
#: after a Tower outage every pending credential is retried within a minute.
RETRY_BASE, RETRY_CAP = 0.1, 60.0
#: The controller's overall retry budget (token bucket), as client-go's default limiter.
RETRY_QPS, RETRY_BURST = 50.0, 300
#: Managed Secrets listed per request (each may carry up to 1 MiB of data).
SECRET_PAGE_SIZE = 20


@dataclass
class Clients:
    """The operator's two HTTP clients (also what ``check`` uses)."""

    kube: KubeClient
    tower: TowerClient

    async def aclose(self) -> None:
        """Close both connection pools."""
        await self.tower.aclose()
        await self.kube.aclose()


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
    resync: Resync
    elector: LeaseElector | None = None

    def trigger_resync(self) -> None:
        """On-demand resync (also on SIGHUP): sweep orphans, verify every Secret now."""
        self.resync.trigger()

    async def run(self, *, install_signal_handlers: bool = True) -> int:
        """Run until SIGTERM/SIGINT (or a crashed runnable); return the exit code."""
        try:
            return await self.manager.run_forever(install_signal_handlers=install_signal_handlers)
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP clients."""
        await Clients(self.kube, self.tower).aclose()

    def synced(self) -> bool:
        """True when every informer has listed once."""
        informers = [self.pods, self.secrets] + ([self.accounts] if self.accounts else [])
        return all(i.synced.is_set() for i in informers)


def policy_from(settings: Settings) -> Policy:
    """The credential lifecycle policy of ``settings`` (reconciler and sweeper share it)."""
    return Policy(
        cluster_id=settings.cluster_id,
        default_installation=settings.default_installation,
        allowed_installations=settings.allowed_installations,
        revoke_grace_period=settings.revoke_grace_period,
        access_retry_interval=settings.access_retry_interval,
        resync_interval=settings.resync_interval,
        renew_fraction=settings.renew_fraction,
    )


def build_clients(
    settings: Settings, kube_config: KubeConfig | None = None, metrics: Metrics | None = None
) -> Clients:
    """The Kubernetes and Tower clients as ``settings`` configure them."""
    observer = None
    if metrics is not None:
        record = metrics.observe_tower_request

        def observer(method: str, collection: str, status: int | None, seconds: float) -> None:
            record(f"{method} {collection}", status if status is not None else "error", seconds)

    kube = KubeClient(
        kube_config or KubeConfig.load(), qps=settings.kube_qps, burst=settings.kube_burst
    )
    tower = TowerClient(
        settings.tower_url, settings.token, timeout=settings.tower_timeout, observer=observer
    )
    return Clients(kube=kube, tower=tower)


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


def _informers(
    settings: Settings, kube: KubeClient, consumer_selector: str | None
) -> tuple[Informer, Informer | None, Informer]:
    """Pods and NACK Accounts (metadata, slim) and managed Secrets (summaries)."""
    pods = Informer(
        kube,
        PODS,
        namespace=settings.namespace,
        label_selector=consumer_selector,
        metadata_only=True,
        transform=slim_consumer,
    )
    accounts = (
        Informer(
            kube,
            NACK_ACCOUNTS,
            namespace=settings.namespace,
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
        namespace=settings.namespace,
        label_selector=f"{SECRET_LABEL}={MANAGED_SECRET_LABEL_VALUE}",
        transform=summarize_secret,
        # Secrets arrive with their data (up to 1 MiB each): small pages, each summarised
        # as it arrives, bound what a list of hostile Secrets can hold at once.
        page_size=SECRET_PAGE_SIZE,
    )
    return pods, accounts, secrets


def build_operator(
    settings: Settings,
    *,
    kube_config: KubeConfig | None = None,
    health_port: int | None = None,
    tower_caching: bool = True,
    consumer_selector: str | None = SECRET_LABEL,
) -> Operator:
    """Build every object of the operator from ``settings`` (nothing starts yet).

    ``tower_caching=False`` and ``consumer_selector=None`` rebuild the Go operator's costs
    (every lookup sent to Tower, every pod watched) for the benchmark's comparison.
    """
    metrics = Metrics()
    clients = build_clients(settings, kube_config, metrics)
    kube, tower = clients.kube, clients.tower
    policy = policy_from(settings)
    issuer = CredentialIssuer(
        tower,
        cluster_id=settings.cluster_id,
        lookup_ttl=settings.tower_cache_ttl,
        caching=tower_caching,
    )
    events = EventRecorder(kube, host=socket.gethostname())
    index = ConsumerIndex()
    pods, accounts, secrets = _informers(settings, kube, consumer_selector)
    consumer_informers = [pods] + ([accounts] if accounts else [])

    def consumers_synced() -> bool:
        return all(i.synced.is_set() for i in consumer_informers)

    quota = NamespaceQuota(
        max_credentials=settings.max_credentials_per_namespace,
        per_minute=settings.user_changes_per_minute,
        burst=settings.user_changes_burst,
    )
    reconciler = CredentialReconciler(
        kube=kube,
        issuer=issuer,
        events=events,
        consumers=index,
        secrets=secrets.store.get,
        consumers_synced=consumers_synced,
        policy=policy,
        quota=quota,
        on_event=metrics.inc_event,
    )
    controller = Controller(
        "credentials",
        reconciler,
        workers=settings.workers,
        metrics=metrics,
        limiter=MaxOfLimiter(
            ItemExponentialLimiter(base=RETRY_BASE, cap=RETRY_CAP),
            BucketLimiter(qps=RETRY_QPS, burst=RETRY_BURST),
        ),
    )
    pods.add_handler(consumer_handler(index, controller.enqueue, kind="Pod", api_version="v1"))
    if accounts is not None:
        accounts.add_handler(
            consumer_handler(
                index,
                controller.enqueue,
                kind=NACK_ACCOUNTS.kind,
                api_version=NACK_ACCOUNTS.api_version,
            )
        )
    secrets.add_handler(
        secret_handler(reconciler, controller.enqueue, quota, on_count=metrics.set_managed_secrets)
    )
    sweeper = OrphanSweeper(
        issuer=issuer,
        consumers=index,
        secrets=secrets.store.list,
        ready=lambda: consumers_synced() and secrets.synced.is_set(),
        policy=policy,
        namespace=settings.namespace,
    )

    def known_keys() -> set[Request]:
        keys = set(index.secret_keys())
        for obj in secrets.store.list():
            meta = obj.get("metadata") or {}
            keys.add(Request(str(meta.get("namespace", "")), str(meta.get("name", ""))))
        return keys

    resync = Resync(
        interval=settings.resync_interval,
        sweeper=sweeper,
        reconciler=reconciler,
        issuer=issuer,
        keys=known_keys,
        enqueue=controller.enqueue,
    )
    elector = _build_elector(settings, kube, metrics)
    manager = Manager(leader_gate=elector, metrics=metrics)
    health = HealthServer(
        manager,
        metrics,
        host=settings.health_host,
        port=settings.health_port if health_port is None else health_port,
    )
    # Ready only with positive proof that Tower answers for our installations with our
    # token: real Tower answers a wrong token with empty lists, never with 401.
    readiness = TowerReadiness(tower, settings.allowed_installations)
    if elector is not None:
        manager.add(elector, needs_leader=False)
    add_informers(manager, [*consumer_informers, secrets])
    add_controller(manager, controller, reads=[*consumer_informers, secrets])
    manager.add(resync)
    manager.add(health, needs_leader=False)
    manager.add(readiness, needs_leader=False)
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
        sweeper=sweeper,
        tower_readiness=readiness,
        resync=resync,
        elector=elector,
    )
    manager.add_ready_check("caches-synced", operator.synced)
    manager.add_ready_check("tower", readiness)
    return operator
