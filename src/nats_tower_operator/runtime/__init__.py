"""The operator runtime: work queue, rate limiters, controllers, manager, probes and metrics.

It knows reconcilers only through :mod:`nats_tower_operator.reconcile`'s protocol and never
imports the reconcilers, the Kubernetes client or the Tower client.
"""

from nats_tower_operator.runtime.checks import Check, CheckRegistry, CheckResult, CheckSource
from nats_tower_operator.runtime.controller import Controller
from nats_tower_operator.runtime.health import HealthServer
from nats_tower_operator.runtime.manager import AlwaysLeader, LeaderGate, Manager, Runnable
from nats_tower_operator.runtime.metrics import Metrics, ReconcileOutcome
from nats_tower_operator.runtime.ratelimit import (
    BucketLimiter,
    ItemExponentialLimiter,
    MaxOfLimiter,
    RateLimiter,
    default_controller_limiter,
)
from nats_tower_operator.runtime.workqueue import QueueMetrics, ShutDown, WorkQueue

__all__ = [
    "AlwaysLeader",
    "BucketLimiter",
    "Check",
    "CheckRegistry",
    "CheckResult",
    "CheckSource",
    "Controller",
    "HealthServer",
    "ItemExponentialLimiter",
    "LeaderGate",
    "Manager",
    "MaxOfLimiter",
    "Metrics",
    "QueueMetrics",
    "RateLimiter",
    "ReconcileOutcome",
    "Runnable",
    "ShutDown",
    "WorkQueue",
    "default_controller_limiter",
]
