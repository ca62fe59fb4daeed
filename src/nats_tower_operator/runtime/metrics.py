"""The operator's Prometheus metrics, in a registry owned by one :class:`Metrics` object.

No process-wide singleton: every :class:`Metrics` has its own ``CollectorRegistry``, so tests
and several operators in one process never share counters. Callers observe through plain
methods (``observe_reconcile``, ``observe_tower_request``, ...) that can also be handed to other
packages as callbacks, and ``render()`` produces the Prometheus text exposition.

Label values must come from small, fixed sets (controller names, endpoint templates such as
``"nats_auth_users.list"``, namespaces, event reasons): never object names or ids.
"""

from __future__ import annotations

from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["PREFIX", "Metrics", "ReconcileOutcome"]

PREFIX = "nats_tower_operator"

ReconcileOutcome = Literal["success", "requeue", "error", "terminal"]
RECONCILE_OUTCOMES: tuple[ReconcileOutcome, ...] = ("success", "requeue", "error", "terminal")

_RECONCILE_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
)
_QUEUE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0)
_REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """Every metric the operator exports, registered in a private registry."""

    def __init__(self, *, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.reconcile_total = Counter(
            f"{PREFIX}_reconcile_total",
            "Reconciles by controller and result (success, requeue, error, terminal).",
            ["controller", "result"],
            registry=r,
        )
        self.reconcile_duration = Histogram(
            f"{PREFIX}_reconcile_duration_seconds",
            "Time spent in one reconcile.",
            ["controller"],
            buckets=_RECONCILE_BUCKETS,
            registry=r,
        )
        self.workqueue_depth = Gauge(
            f"{PREFIX}_workqueue_depth",
            "Items waiting in a work queue (not processing, not delayed).",
            ["name"],
            registry=r,
        )
        self.workqueue_adds = Counter(
            f"{PREFIX}_workqueue_adds_total",
            "Items accepted by a work queue.",
            ["name"],
            registry=r,
        )
        self.workqueue_retries = Counter(
            f"{PREFIX}_workqueue_retries_total",
            "Rate-limited re-adds to a work queue.",
            ["name"],
            registry=r,
        )
        self.workqueue_queue_duration = Histogram(
            f"{PREFIX}_workqueue_queue_duration_seconds",
            "Time an item waited in a work queue between add and get.",
            ["name"],
            buckets=_QUEUE_BUCKETS,
            registry=r,
        )
        self.workqueue_work_duration = Histogram(
            f"{PREFIX}_workqueue_work_duration_seconds",
            "Time a worker held an item, from get to done.",
            ["name"],
            buckets=_RECONCILE_BUCKETS,
            registry=r,
        )
        self.tower_requests = Counter(
            f"{PREFIX}_tower_requests_total",
            "HTTP requests to NATS Tower by endpoint and status (a code, or 'error').",
            ["endpoint", "status"],
            registry=r,
        )
        self.tower_request_duration = Histogram(
            f"{PREFIX}_tower_request_duration_seconds",
            "Latency of HTTP requests to NATS Tower.",
            ["endpoint"],
            buckets=_REQUEST_BUCKETS,
            registry=r,
        )
        self.managed_secrets = Gauge(
            f"{PREFIX}_managed_secrets",
            "Secrets holding NATS credentials managed by the operator.",
            ["namespace"],
            registry=r,
        )
        self.leader = Gauge(
            f"{PREFIX}_leader",
            "1 while this replica holds the leader lease, else 0.",
            registry=r,
        )
        self.events = Counter(
            f"{PREFIX}_events_total",
            "Kubernetes events emitted by type and reason.",
            ["type", "reason"],
            registry=r,
        )

    # -- reconciles ------------------------------------------------------------------------

    def declare_controller(self, controller: str) -> None:
        """Create the zero-valued series of ``controller`` so they show before the first use."""
        for outcome in RECONCILE_OUTCOMES:
            self.reconcile_total.labels(controller=controller, result=outcome)
        self.reconcile_duration.labels(controller=controller)

    def observe_reconcile(self, controller: str, result: ReconcileOutcome, seconds: float) -> None:
        """Count one reconcile of ``controller`` with its outcome and duration."""
        self.reconcile_total.labels(controller=controller, result=result).inc()
        self.reconcile_duration.labels(controller=controller).observe(seconds)

    # -- work queues -----------------------------------------------------------------------

    def queue_metrics(self, name: str) -> BoundQueueMetrics:
        """The :class:`~nats_tower_operator.runtime.workqueue.QueueMetrics` of queue ``name``."""
        return BoundQueueMetrics(self, name)

    # -- Tower, secrets, leadership, events ------------------------------------------------

    def observe_tower_request(self, endpoint: str, status: int | str, seconds: float) -> None:
        """Count one Tower request (``status``: HTTP code, or e.g. ``"error"``) and its latency."""
        self.tower_requests.labels(endpoint=endpoint, status=str(status)).inc()
        self.tower_request_duration.labels(endpoint=endpoint).observe(seconds)

    def set_managed_secrets(self, namespace: str, count: int) -> None:
        """Set the number of managed Secrets in ``namespace``."""
        self.managed_secrets.labels(namespace=namespace).set(count)

    def set_leader(self, is_leader: bool) -> None:
        """Record whether this replica is the leader."""
        self.leader.set(1 if is_leader else 0)

    def inc_event(self, type_: str, reason: str) -> None:
        """Count one emitted Kubernetes event (``type_``: Normal or Warning)."""
        self.events.labels(type=type_, reason=reason).inc()

    # -- exposition ------------------------------------------------------------------------

    def render(self) -> bytes:
        """All metrics in the Prometheus text format."""
        return generate_latest(self.registry)


class BoundQueueMetrics:
    """A :class:`Metrics` bound to one work queue's ``name`` label."""

    def __init__(self, metrics: Metrics, name: str) -> None:
        self._depth = metrics.workqueue_depth.labels(name=name)
        self._adds = metrics.workqueue_adds.labels(name=name)
        self._retries = metrics.workqueue_retries.labels(name=name)
        self._queue_duration = metrics.workqueue_queue_duration.labels(name=name)
        self._work_duration = metrics.workqueue_work_duration.labels(name=name)

    def set_depth(self, depth: int) -> None:
        """Set the queue depth gauge."""
        self._depth.set(depth)

    def inc_adds(self) -> None:
        """Count one accepted add."""
        self._adds.inc()

    def inc_retries(self) -> None:
        """Count one rate-limited re-add."""
        self._retries.inc()

    def observe_queue_latency(self, seconds: float) -> None:
        """Observe the time from add to get."""
        self._queue_duration.observe(seconds)

    def observe_work_duration(self, seconds: float) -> None:
        """Observe the time from get to done."""
        self._work_duration.observe(seconds)
