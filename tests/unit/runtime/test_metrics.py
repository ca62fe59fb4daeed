"""Metrics: names, labels, types and private registries, read back through the text parser."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client.parser import text_string_to_metric_families

from nats_tower_operator.reconcile import Request, Result, TerminalError
from nats_tower_operator.runtime.controller import Controller
from nats_tower_operator.runtime.metrics import Metrics
from nats_tower_operator.runtime.ratelimit import ItemExponentialLimiter

P = "nats_tower_operator_"

# The controller test waits for a backoff and a requeue_after: on the virtual clock.
pytestmark = pytest.mark.usefixtures("virtual_time")


def parse(metrics: Metrics) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """sample name -> {sorted labels: value}"""
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def types(metrics: Metrics) -> dict[str, str]:
    families = text_string_to_metric_families(metrics.render().decode())
    # prometheus_client adds *_created gauges unless disabled process-wide; ignore them
    return {f.name: f.type for f in families if not f.name.endswith("_created")}


def test_every_metric_has_its_name_type_and_labels() -> None:
    m = Metrics()
    m.observe_reconcile("pods", "error", 0.2)
    q = m.queue_metrics("pods")
    q.set_depth(3)
    q.inc_adds()
    q.inc_retries()
    q.observe_queue_latency(0.5)
    q.observe_work_duration(0.1)
    m.observe_tower_request("nats_auth_users.list", 200, 0.03)
    m.observe_tower_request("nats_auth_users.create", "error", 1.5)
    m.set_managed_secrets("team-a", 7)
    m.set_leader(True)
    m.inc_event("Warning", "ErrorK8sAccessNotAllowed")

    assert types(m) == {
        P + "reconcile": "counter",
        P + "reconcile_duration_seconds": "histogram",
        P + "workqueue_depth": "gauge",
        P + "workqueue_adds": "counter",
        P + "workqueue_retries": "counter",
        P + "workqueue_queue_duration_seconds": "histogram",
        P + "workqueue_work_duration_seconds": "histogram",
        P + "tower_requests": "counter",
        P + "tower_request_duration_seconds": "histogram",
        P + "managed_secrets": "gauge",
        P + "leader": "gauge",
        P + "events": "counter",
    }
    s = parse(m)
    assert s[P + "reconcile_total"] == {(("controller", "pods"), ("result", "error")): 1}
    assert s[P + "reconcile_duration_seconds_count"] == {(("controller", "pods"),): 1}
    assert s[P + "reconcile_duration_seconds_sum"] == {(("controller", "pods"),): 0.2}
    assert s[P + "workqueue_depth"] == {(("name", "pods"),): 3}
    assert s[P + "workqueue_adds_total"] == {(("name", "pods"),): 1}
    assert s[P + "workqueue_retries_total"] == {(("name", "pods"),): 1}
    assert s[P + "workqueue_queue_duration_seconds_sum"] == {(("name", "pods"),): 0.5}
    assert s[P + "workqueue_work_duration_seconds_sum"] == {(("name", "pods"),): 0.1}
    assert s[P + "tower_requests_total"] == {
        (("endpoint", "nats_auth_users.list"), ("status", "200")): 1,
        (("endpoint", "nats_auth_users.create"), ("status", "error")): 1,
    }
    assert s[P + "tower_request_duration_seconds_count"] == {
        (("endpoint", "nats_auth_users.list"),): 1,
        (("endpoint", "nats_auth_users.create"),): 1,
    }
    assert s[P + "managed_secrets"] == {(("namespace", "team-a"),): 7}
    assert s[P + "leader"] == {(): 1}
    assert s[P + "events_total"] == {
        (("reason", "ErrorK8sAccessNotAllowed"), ("type", "Warning")): 1
    }


def test_each_metrics_object_has_its_own_registry() -> None:
    a, b = Metrics(), Metrics()
    a.inc_event("Normal", "Created")
    assert parse(a)[P + "events_total"] == {(("reason", "Created"), ("type", "Normal")): 1}
    assert P + "events_total" not in parse(b)
    assert parse(b)[P + "leader"] == {(): 0}


async def test_a_controller_reports_results_and_queue_measurements() -> None:
    class Rec:
        async def reconcile(self, request: Request) -> Result:
            if request.name == "terminal":
                raise TerminalError("bad labels")
            if request.name == "flaky" and not getattr(self, "flaked", False):
                self.flaked = True
                raise ConnectionError("tower down")
            if request.name == "later" and not getattr(self, "again", False):
                self.again = True
                return Result(requeue_after=0.01)
            return Result()

    m = Metrics()
    controller = Controller(
        "pods", Rec(), metrics=m, limiter=ItemExponentialLimiter(base=0.01, jitter=0)
    )
    before = parse(m)
    assert before[P + "reconcile_total"] == {
        (("controller", "pods"), ("result", r)): 0
        for r in ("success", "requeue", "error", "terminal")
    }
    assert before[P + "workqueue_depth"] == {(("name", "pods"),): 0}
    for name in ("ok", "terminal", "flaky", "later"):
        controller.enqueue(Request("ns", name))
    assert parse(m)[P + "workqueue_depth"] == {(("name", "pods"),): 4}
    stop = asyncio.Event()
    task = asyncio.create_task(controller.run(stop))
    async with asyncio.timeout(5):
        while parse(m)[P + "reconcile_total"][(("controller", "pods"), ("result", "success"))] < 3:
            await asyncio.sleep(0.01)
    stop.set()
    await task
    s = parse(m)
    assert s[P + "reconcile_total"] == {
        (("controller", "pods"), ("result", "success")): 3,
        (("controller", "pods"), ("result", "requeue")): 1,
        (("controller", "pods"), ("result", "error")): 1,
        (("controller", "pods"), ("result", "terminal")): 1,
    }
    assert s[P + "reconcile_duration_seconds_count"] == {(("controller", "pods"),): 6}
    assert s[P + "workqueue_adds_total"] == {(("name", "pods"),): 6}
    assert s[P + "workqueue_retries_total"] == {(("name", "pods"),): 1}
    assert s[P + "workqueue_queue_duration_seconds_count"] == {(("name", "pods"),): 6}
    assert s[P + "workqueue_work_duration_seconds_count"] == {(("name", "pods"),): 6}
    assert s[P + "workqueue_depth"] == {(("name", "pods"),): 0}
