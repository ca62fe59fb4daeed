"""Deletion: finalizers, ownerReference garbage collection, propagation, namespace deletion."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from .conftest import pod, read_events, secret

PODS = "/api/v1/namespaces/default/pods"
SECRETS = "/api/v1/namespaces/default/secrets"
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
MERGE = {"Content-Type": "application/merge-patch+json"}


def owner_ref(obj: dict[str, Any], *, block: bool = False) -> dict[str, Any]:
    ref = {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
    }
    if block:
        ref["blockOwnerDeletion"] = True
    return ref


async def exists(http: httpx.AsyncClient, path: str) -> bool:
    r = await http.get(path)
    assert r.status_code in (200, 404)
    return r.status_code == 200


async def test_finalizers_keep_the_object_with_deletion_timestamp(http: httpx.AsyncClient) -> None:
    body = secret("held")
    body["metadata"]["finalizers"] = ["example.com/cleanup"]
    await http.post(SECRETS, json=body)
    rv = (await http.get(SECRETS)).json()["metadata"]["resourceVersion"]
    async with http.stream("GET", SECRETS, params={"watch": "1", "resourceVersion": rv}) as stream:
        deleted = await http.delete(f"{SECRETS}/held")
        assert deleted.status_code == 200
        pending = deleted.json()
        assert pending["kind"] == "Secret"  # not deleted yet: the object is returned
        assert pending["metadata"]["deletionTimestamp"]
        assert pending["metadata"]["deletionGracePeriodSeconds"] == 0
        got = (await http.get(f"{SECRETS}/held")).json()
        assert got["metadata"]["deletionTimestamp"] == pending["metadata"]["deletionTimestamp"]
        again = await http.delete(f"{SECRETS}/held")
        assert again.json()["metadata"]["resourceVersion"] == pending["metadata"]["resourceVersion"]
        added = await http.patch(
            f"{SECRETS}/held",
            headers=MERGE,
            json={"metadata": {"finalizers": ["example.com/cleanup", "example.com/new"]}},
        )
        assert added.status_code == 422
        assert (
            "no new finalizers can be added if the object is being deleted"
            in added.json()["message"]
        )
        labelled = await http.patch(
            f"{SECRETS}/held", headers=MERGE, json={"metadata": {"labels": {"still": "here"}}}
        )
        assert labelled.status_code == 200
        done = await http.patch(
            f"{SECRETS}/held", headers=MERGE, json={"metadata": {"finalizers": None}}
        )
        assert done.status_code == 200
        assert not await exists(http, f"{SECRETS}/held")
        events = await read_events(stream, 3)
    assert [e["type"] for e in events] == ["MODIFIED", "MODIFIED", "DELETED"]
    assert events[0]["object"]["metadata"]["deletionTimestamp"]


async def test_dependent_is_deleted_when_its_only_owner_is_gone(http: httpx.AsyncClient) -> None:
    owner = (await http.post(PODS, json=pod("owner"))).json()
    dep = secret("dep")
    dep["metadata"]["ownerReferences"] = [owner_ref(owner)]
    await http.post(SECRETS, json=dep)
    unrelated = await http.post(SECRETS, json=secret("unrelated"))
    assert unrelated.status_code == 201
    await http.delete(f"{PODS}/owner")
    assert not await exists(http, f"{SECRETS}/dep")
    assert await exists(http, f"{SECRETS}/unrelated")


async def test_dependent_survives_while_another_owner_remains(http: httpx.AsyncClient) -> None:
    first = (await http.post(PODS, json=pod("first"))).json()
    second = (
        await http.post(
            CONFIGMAPS,
            json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "second"}},
        )
    ).json()
    dep = secret("shared")
    dep["metadata"]["ownerReferences"] = [owner_ref(first), owner_ref(second)]
    await http.post(SECRETS, json=dep)
    await http.delete(f"{PODS}/first")
    survivor = await http.get(f"{SECRETS}/shared")
    assert survivor.status_code == 200
    # the dangling reference is removed, the live one kept (as kube's GC does)
    assert [r["name"] for r in survivor.json()["metadata"]["ownerReferences"]] == ["second"]
    await http.delete(f"{CONFIGMAPS}/second")
    assert not await exists(http, f"{SECRETS}/shared")


async def test_dependent_of_a_missing_owner_is_collected(http: httpx.AsyncClient) -> None:
    dep = secret("orphaned")
    dep["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": "never",
            "uid": "6b0b0c58-0000-0000-0000-000000000000",
        }
    ]
    assert (await http.post(SECRETS, json=dep)).status_code == 201
    assert not await exists(http, f"{SECRETS}/orphaned")


async def test_owner_in_another_namespace_does_not_count(http: httpx.AsyncClient) -> None:
    await http.post("/api/v1/namespaces", json={"metadata": {"name": "ns2"}})
    owner = (await http.post("/api/v1/namespaces/ns2/pods", json=pod("owner"))).json()
    dep = secret("cross")
    dep["metadata"]["ownerReferences"] = [owner_ref(owner)]
    await http.post(SECRETS, json=dep)
    assert not await exists(http, f"{SECRETS}/cross")


async def test_cluster_scoped_owner(http: httpx.AsyncClient) -> None:
    ns = (await http.post("/api/v1/namespaces", json={"metadata": {"name": "owner-ns"}})).json()
    dep = secret("owned-by-ns")
    dep["metadata"]["ownerReferences"] = [owner_ref(ns)]
    await http.post(SECRETS, json=dep)
    assert await exists(http, f"{SECRETS}/owned-by-ns")


async def test_foreground_deletion_waits_for_blocking_dependents(http: httpx.AsyncClient) -> None:
    owner = (await http.post(PODS, json=pod("fg"))).json()
    dep = secret("blocker")
    dep["metadata"]["ownerReferences"] = [owner_ref(owner, block=True)]
    dep["metadata"]["finalizers"] = ["example.com/slow"]
    await http.post(SECRETS, json=dep)
    r = await http.request("DELETE", f"{PODS}/fg", json={"propagationPolicy": "Foreground"})
    assert r.status_code == 200
    assert "foregroundDeletion" in r.json()["metadata"]["finalizers"]
    assert (await http.get(f"{PODS}/fg")).json()["metadata"]["deletionTimestamp"]
    assert (await http.get(f"{SECRETS}/blocker")).json()["metadata"]["deletionTimestamp"]
    await http.patch(f"{SECRETS}/blocker", headers=MERGE, json={"metadata": {"finalizers": None}})
    assert not await exists(http, f"{SECRETS}/blocker")
    assert not await exists(http, f"{PODS}/fg")


async def test_orphan_propagation_keeps_dependents(http: httpx.AsyncClient) -> None:
    owner = (await http.post(PODS, json=pod("parent"))).json()
    dep = secret("kept")
    dep["metadata"]["ownerReferences"] = [owner_ref(owner)]
    await http.post(SECRETS, json=dep)
    await http.delete(f"{PODS}/parent", params={"propagationPolicy": "Orphan"})
    assert not await exists(http, f"{PODS}/parent")
    kept = (await http.get(f"{SECRETS}/kept")).json()
    assert "ownerReferences" not in kept["metadata"]


async def test_namespace_deletion_removes_its_objects(http: httpx.AsyncClient) -> None:
    await http.post("/api/v1/namespaces", json={"metadata": {"name": "doomed"}})
    await http.post("/api/v1/namespaces/doomed/pods", json=pod("p"))
    held = secret("held")
    held["metadata"]["finalizers"] = ["example.com/hold"]
    await http.post("/api/v1/namespaces/doomed/secrets", json=held)
    await http.post(SECRETS, json=secret("outside"))
    r = await http.delete("/api/v1/namespaces/doomed")
    assert r.status_code == 200
    assert r.json()["status"]["phase"] == "Terminating"
    assert not await exists(http, "/api/v1/namespaces/doomed/pods/p")
    ns = (await http.get("/api/v1/namespaces/doomed")).json()
    assert ns["status"]["phase"] == "Terminating"  # waits for the finalizer of "held"
    refused = await http.post("/api/v1/namespaces/doomed/pods", json=pod("late"))
    assert refused.status_code == 403
    assert refused.json()["reason"] == "Forbidden"
    assert refused.json()["message"] == (
        'pods "late" is forbidden: unable to create new content in namespace doomed '
        "because it is being terminated"
    )
    await http.patch(
        "/api/v1/namespaces/doomed/secrets/held",
        headers=MERGE,
        json={"metadata": {"finalizers": None}},
    )
    assert not await exists(http, "/api/v1/namespaces/doomed")
    assert await exists(http, f"{SECRETS}/outside")
    recreated = await http.post("/api/v1/namespaces", json={"metadata": {"name": "doomed"}})
    assert recreated.status_code == 201
    assert (await http.get("/api/v1/namespaces/doomed/pods")).json()["items"] == []


async def test_delete_collection(http: httpx.AsyncClient) -> None:
    for name, team in (("a", "x"), ("b", "x"), ("c", "y")):
        await http.post(PODS, json=pod(name, labels={"team": team}))
    r = await http.delete(PODS, params={"labelSelector": "team=x"})
    assert r.status_code == 200
    assert sorted(i["metadata"]["name"] for i in r.json()["items"]) == ["a", "b"]
    await asyncio.sleep(0)
    assert [i["metadata"]["name"] for i in (await http.get(PODS)).json()["items"]] == ["c"]
