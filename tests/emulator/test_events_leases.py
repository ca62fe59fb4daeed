"""Events (core/v1 and events.k8s.io/v1 share storage) and coordination.k8s.io Leases."""

from __future__ import annotations

import httpx

CORE = "/api/v1/namespaces/default/events"
NEW = "/apis/events.k8s.io/v1/namespaces/default/events"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/default/leases"


def new_event(name: str, **extra: object) -> dict[str, object]:
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": name},
        "eventTime": "2025-01-01T00:00:00.000000Z",
        "reportingController": "nats-tower.com/operator",
        "reportingInstance": "operator-1",
        "action": "Reconcile",
        "reason": "Created",
        "type": "Normal",
        "note": "secret mycreds created",
        "regarding": {"apiVersion": "v1", "kind": "Pod", "name": "test", "namespace": "default"},
        **extra,
    }


async def test_events_k8s_io_events_are_core_events(http: httpx.AsyncClient) -> None:
    r = await http.post(NEW, json=new_event("e1"))
    assert r.status_code == 201, r.text
    assert (
        r.json()["apiVersion"] == "events.k8s.io/v1"
        and r.json()["note"] == "secret mycreds created"
    )
    core = (await http.get(f"{CORE}/e1")).json()
    assert core["apiVersion"] == "v1"
    assert core["message"] == "secret mycreds created"
    assert core["involvedObject"]["name"] == "test"
    assert core["reportingComponent"] == "nats-tower.com/operator"
    by_object = await http.get(
        CORE, params={"fieldSelector": "involvedObject.name=test,reason=Created"}
    )
    assert [e["metadata"]["name"] for e in by_object.json()["items"]] == ["e1"]
    listed = (await http.get(NEW, params={"fieldSelector": "regarding.name=test"})).json()
    assert listed["items"][0]["regarding"]["kind"] == "Pod"


async def test_event_validation(http: httpx.AsyncClient) -> None:
    incomplete = new_event("e2")
    del incomplete["reportingController"]
    incomplete["type"] = "Info"
    r = await http.post(NEW, json=incomplete)
    assert r.status_code == 422
    assert {c["field"] for c in r.json()["details"]["causes"]} == {"reportingController", "type"}
    legacy = {
        "metadata": {"name": "old"},
        "involvedObject": {"kind": "Pod", "name": "test", "namespace": "other"},
        "reason": "Created",
        "message": "m",
        "type": "Normal",
        "source": {"component": "operator"},
    }
    mismatch = await http.post(CORE, json=legacy)
    assert mismatch.status_code == 422
    assert mismatch.json()["details"]["causes"][0]["field"] == "involvedObject.namespace"
    legacy["involvedObject"]["namespace"] = "default"
    assert (await http.post(CORE, json=legacy)).status_code == 201
    assert (await http.get(NEW + "/old")).json()["deprecatedSource"] == {"component": "operator"}


async def test_lease_leader_election_pattern(http: httpx.AsyncClient) -> None:
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "nats-tower-operator"},
        "spec": {
            "holderIdentity": "a",
            "leaseDurationSeconds": 15,
            "renewTime": "2025-01-01T00:00:00.000000Z",
        },
    }
    first = await http.post(LEASES, json=lease)
    assert first.status_code == 201
    assert (await http.post(LEASES, json=lease)).status_code == 409
    current = first.json()
    renewed = dict(current, spec={**current["spec"], "renewTime": "2025-01-01T00:00:05.000000Z"})
    assert (await http.put(f"{LEASES}/nats-tower-operator", json=renewed)).status_code == 200
    takeover = dict(current, spec={**current["spec"], "holderIdentity": "b"})
    stale = await http.put(f"{LEASES}/nats-tower-operator", json=takeover)
    assert stale.status_code == 409  # b raced with a's renewal and loses
    bad = dict(lease, metadata={"name": "bad"}, spec={"leaseDurationSeconds": 0})
    invalid = await http.post(LEASES, json=bad)
    assert invalid.status_code == 422
    assert invalid.json()["details"]["causes"][0]["field"] == "spec.leaseDurationSeconds"


async def test_timestamps_are_normalized_and_checked(http: httpx.AsyncClient) -> None:
    lease = {
        "metadata": {"name": "t"},
        "spec": {
            "holderIdentity": "a",
            "renewTime": "2025-01-01T01:00:00.5+01:00",
            "acquireTime": "2025-01-01T00:00:00Z",
        },
    }
    created = (await http.post(LEASES, json=lease)).json()
    assert created["spec"]["renewTime"] == "2025-01-01T00:00:00.500000Z"
    assert created["spec"]["acquireTime"] == "2025-01-01T00:00:00.000000Z"
    bad = await http.post(
        LEASES, json={"metadata": {"name": "u"}, "spec": {"renewTime": "yesterday"}}
    )
    assert bad.status_code == 400
    assert bad.json()["message"].startswith(
        'Lease in version "coordination.k8s.io/v1" cannot be handled as a Lease: '
        'parsing time "yesterday"'
    )
    event = (
        await http.post(NEW, json=new_event("timed", eventTime="2025-01-01T00:00:00+00:00"))
    ).json()
    assert event["eventTime"] == "2025-01-01T00:00:00.000000Z"
