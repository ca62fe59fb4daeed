"""EventRecorder: event body, aggregation by merge patch, spam filter, never raising."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest

from nats_tower_operator.kube import EventRecorder, KubeClient, KubeConfig


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class EventsApi:
    """A tiny events endpoint: creates store events, merge patches update them."""

    def __init__(self) -> None:
        self.events: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.fail_with: int | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.path))
        if self.fail_with:
            return httpx.Response(self.fail_with, json={"kind": "Status", "reason": "Boom"})
        if request.method == "POST":
            body = json.loads(request.content)
            self.events[body["metadata"]["name"]] = body
            return httpx.Response(201, json=body)
        name = request.url.path.rsplit("/", 1)[-1]
        if name not in self.events:
            return httpx.Response(404, json={"kind": "Status", "reason": "NotFound"})
        assert request.headers["Content-Type"] == "application/merge-patch+json"
        self.events[name].update(json.loads(request.content))
        return httpx.Response(200, json=self.events[name])


POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web-1", "namespace": "team", "uid": "u-1", "resourceVersion": "42"},
}


@pytest.fixture
async def api_client() -> Any:
    api = EventsApi()
    async with KubeClient(KubeConfig(server="https://k"), transport=httpx.MockTransport(api)) as c:
        yield api, c


async def test_event_body(api_client: Any) -> None:
    api, client = api_client
    clock = Clock()
    recorder = EventRecorder(client, host="node-a", clock=clock)
    await recorder.record(POD, "Warning", "MissingAccountLabel", "m" * 5000)
    assert api.requests == [("POST", "/api/v1/namespaces/team/events")]
    (event,) = api.events.values()
    assert event["metadata"]["namespace"] == "team"
    assert event["metadata"]["name"].startswith("web-1.")
    assert event["involvedObject"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": "web-1",
        "namespace": "team",
        "uid": "u-1",
        "resourceVersion": "42",
    }
    assert event["type"] == "Warning" and event["reason"] == "MissingAccountLabel"
    assert len(event["message"]) == 1024
    assert event["source"] == {"component": "nats-tower-operator", "host": "node-a"}
    assert event["reportingComponent"] == "nats-tower-operator"
    assert event["firstTimestamp"] == event["lastTimestamp"] == "2023-11-14T22:13:20Z"
    assert event["count"] == 1


async def test_identical_events_aggregate_within_window(api_client: Any) -> None:
    api, client = api_client
    clock = Clock()
    recorder = EventRecorder(client, clock=clock)
    await recorder.record(POD, "Normal", "Created", "secret created")
    clock.now += 60
    await recorder.record(POD, "Normal", "Created", "secret created")
    clock.now += 10
    await recorder.record(POD, "Normal", "Created", "secret created")
    (event,) = api.events.values()
    assert event["count"] == 3 and event["lastTimestamp"] == "2023-11-14T22:14:30Z"
    assert [m for m, _ in api.requests] == ["POST", "PATCH", "PATCH"]

    await recorder.record(POD, "Normal", "Created", "a different message")
    assert len(api.events) == 2
    clock.now += 601  # outside the aggregation window: a new event
    await recorder.record(POD, "Normal", "Created", "secret created")
    assert len(api.events) == 3


async def test_aggregate_of_deleted_event_creates_a_new_one(api_client: Any) -> None:
    api, client = api_client
    clock = Clock()
    recorder = EventRecorder(client, clock=clock)
    await recorder.record(POD, "Normal", "Updated", "x")
    api.events.clear()  # expired by the API server's event TTL
    clock.now += 10
    await recorder.record(POD, "Normal", "Updated", "x")
    assert [m for m, _ in api.requests] == ["POST", "PATCH", "POST"]
    assert [e["count"] for e in api.events.values()] == [1]


async def test_spam_filter_limits_new_events_per_object(
    api_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    api, client = api_client
    clock = Clock()
    recorder = EventRecorder(client, clock=clock, max_events_per_object=3)
    caplog.set_level(logging.DEBUG, logger="nats_tower_operator.kube.events")
    for i in range(5):
        await recorder.record(POD, "Warning", "Failed", f"attempt {i}")
    assert len(api.events) == 3
    assert any("spam filter" in r.getMessage() for r in caplog.records)
    other = {**POD, "metadata": {**POD["metadata"], "name": "web-2", "uid": "u-2"}}
    await recorder.record(other, "Warning", "Failed", "attempt 0")
    assert len(api.events) == 4  # the budget is per object
    clock.now += 301
    await recorder.record(POD, "Warning", "Failed", "attempt 9")
    assert len(api.events) == 5
    names = list(api.events)
    assert len(set(names)) == len(names)


async def test_never_raises(api_client: Any, caplog: pytest.LogCaptureFixture) -> None:
    api, client = api_client
    recorder = EventRecorder(client, clock=Clock())
    api.fail_with = 403
    await recorder.record(POD, "Normal", "Created", "x")
    await recorder.record({"kind": "Pod"}, "Normal", "Created", "x")  # no metadata
    messages = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "failed to record event" in messages
    assert "cannot record event for this object" in messages


async def test_cluster_scoped_object_events_go_to_default(api_client: Any) -> None:
    api, client = api_client
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team", "uid": "n"}}
    await EventRecorder(client, clock=Clock()).record(ns, "Normal", "Seen", "x")
    (event,) = api.events.values()
    assert api.requests == [("POST", "/api/v1/namespaces/default/events")]
    assert "namespace" not in event["involvedObject"]


async def test_repeats_are_written_at_most_once_per_interval_with_their_count(
    api_client: Any,
) -> None:
    api, client = api_client
    clock = Clock()
    recorder = EventRecorder(client, clock=clock, repeat_interval=10.0)
    for _ in range(50):  # a reconcile loop repeating the same warning
        await recorder.record(POD, "Warning", "InvalidSecretLabel", "bad")
        clock.now += 0.1
    assert [m for m, _ in api.requests] == ["POST"]
    clock.now += 10
    await recorder.record(POD, "Warning", "InvalidSecretLabel", "bad")
    assert [m for m, _ in api.requests] == ["POST", "PATCH"]
    (event,) = api.events.values()
    assert event["count"] == 51


async def test_one_namespace_cannot_spend_more_than_its_event_budget(api_client: Any) -> None:
    api, client = api_client
    clock = Clock()
    recorder = EventRecorder(client, clock=clock, namespace_rate=1.0, namespace_burst=5)

    def pod(namespace: str, i: int) -> dict[str, Any]:
        return {
            "kind": "Pod",
            "metadata": {"name": f"p{i}", "namespace": namespace, "uid": f"{namespace}-{i}"},
        }

    for i in range(100):  # a hostile namespace with 100 invalid pods
        await recorder.record(pod("noisy", i), "Warning", "InvalidSecretLabel", "bad")
    assert len(api.requests) == 5 and recorder.dropped == 95
    await recorder.record(pod("quiet", 0), "Warning", "MissingAccountLabel", "m")
    assert len(api.requests) == 6  # another namespace still has its whole budget
    clock.now += 3.0
    for i in range(100, 110):
        await recorder.record(pod("noisy", i), "Warning", "InvalidSecretLabel", "bad")
    assert len(api.requests) == 9  # refilled at the namespace rate
