"""Counting what a running operator did from its own metrics, as a Prometheus scrape would.

The text of ``op.metrics.render()`` (what ``/metrics`` serves) is parsed, so tests count
through the operator's public surface and not through counters kept for them.
"""

from __future__ import annotations

from collections import Counter

from prometheus_client.parser import text_string_to_metric_families

from nats_tower_operator.bootstrap import Operator
from nats_tower_operator.runtime.metrics import PREFIX

__all__ = ["reconciles", "samples", "tower_requests"]


def samples(op: Operator, name: str) -> list[tuple[dict[str, str], float]]:
    """``(labels, value)`` of every sample called ``name`` (the full name, with ``_total``)."""
    return [
        (dict(sample.labels), float(sample.value))
        for family in text_string_to_metric_families(op.metrics.render().decode())
        for sample in family.samples
        if sample.name == name
    ]


def tower_requests(op: Operator) -> Counter[str]:
    """HTTP attempts to Tower so far by endpoint (``"GET nats_auth_users"``), any status."""
    counts: Counter[str] = Counter()
    for labels, value in samples(op, f"{PREFIX}_tower_requests_total"):
        counts[labels["endpoint"]] += int(value)
    return counts


def reconciles(op: Operator, controller: str = "credentials") -> int:
    """Reconciles ``controller`` finished so far, whatever their result."""
    return sum(
        int(value)
        for labels, value in samples(op, f"{PREFIX}_reconcile_total")
        if labels["controller"] == controller
    )
