"""Audit records in RBAC terms; users from tokens; deny rules and SelfSubjectAccessReview."""

from __future__ import annotations

import asyncio

import httpx

from nats_tower_operator.emulator import Emulator

from .conftest import pod, read_events

PODS = "/api/v1/namespaces/default/pods"
MERGE = {"Content-Type": "application/merge-patch+json"}


async def test_every_verb_is_recorded_in_rbac_terms(emu: Emulator, http: httpx.AsyncClient) -> None:
    await http.get("/api/v1")
    created = (await http.post(PODS, json=pod("a"))).json()
    await http.get(f"{PODS}/a")
    await http.get("/api/v1/pods")
    await http.put(f"{PODS}/a", json=created)
    await http.patch(f"{PODS}/a", headers=MERGE, json={"metadata": {"labels": {"x": "y"}}})
    status = (await http.get(f"{PODS}/a")).json()
    await http.put(f"{PODS}/a/status", json=status)
    await http.patch(
        "/apis/coordination.k8s.io/v1/namespaces/default/leases/l", headers=MERGE, json={}
    )
    async with http.stream("GET", "/api/v1/secrets", params={"watch": "true"}) as stream:
        await http.post("/api/v1/namespaces/default/secrets", json={"metadata": {"name": "s"}})
        await read_events(stream, 1)
    await http.delete(f"{PODS}/a")
    await http.delete(PODS)
    records = [
        (r.verb, r.group, r.resource, r.subresource, r.namespace, r.name, r.code)
        for r in emu.audit.records
        if r.resource
    ]
    assert records == [
        ("create", "", "pods", "", "default", "", 201),
        ("get", "", "pods", "", "default", "a", 200),
        ("list", "", "pods", "", "", "", 200),
        ("update", "", "pods", "", "default", "a", 200),
        ("patch", "", "pods", "", "default", "a", 200),
        ("get", "", "pods", "", "default", "a", 200),
        ("update", "", "pods", "status", "default", "a", 200),
        ("patch", "coordination.k8s.io", "leases", "", "default", "l", 404),
        ("watch", "", "secrets", "", "", "", 200),
        ("create", "", "secrets", "", "default", "", 201),
        ("delete", "", "pods", "", "default", "a", 200),
        ("deletecollection", "", "pods", "", "default", "", 200),
    ]
    assert ("", "pods/status", "update") in emu.audit.permissions()
    assert ("coordination.k8s.io", "leases", "patch") in emu.audit.permissions()
    discovery = [r for r in emu.audit.records if not r.resource]
    assert discovery[0].path == "/api/v1" and discovery[0].verb == "get"
    over_http = (await http.get("/_emulator/audit")).json()["records"]
    assert len(over_http) == len(emu.audit.records)
    assert over_http[1]["verb"] == "create"
    await http.delete("/_emulator/audit")
    assert emu.audit.records == []


async def test_user_names_from_tokens() -> None:
    async with Emulator.running(tokens={"op-token": "system:serviceaccount:nats:operator"}) as emu:
        async with httpx.AsyncClient(base_url=emu.url) as http:
            await http.get(PODS, headers={"Authorization": "Bearer op-token"})
            await http.get(PODS, headers={"Authorization": "Bearer other"})
            await http.get(PODS)
        assert [r.user for r in emu.audit.records] == [
            "system:serviceaccount:nats:operator",
            "emulator-admin",
            "system:anonymous",
        ]
        assert emu.audit.permissions(user="system:serviceaccount:nats:operator") == {
            ("", "pods", "list")
        }


async def test_deny_rules_and_self_subject_access_review(
    emu: Emulator, http: httpx.AsyncClient
) -> None:
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {
            "resourceAttributes": {"namespace": "default", "verb": "list", "resource": "secrets"}
        },
    }
    url = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
    allowed = await http.post(url, json=review)
    assert allowed.status_code == 201
    assert allowed.json()["status"]["allowed"] is True
    emu.access.deny(verb="list", resource="secrets")
    assert (await http.post(url, json=review)).json()["status"]["allowed"] is False
    r = await http.get("/api/v1/namespaces/default/secrets")
    assert r.status_code == 403
    assert r.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'secrets is forbidden: User "emulator-admin" cannot list resource "secrets" '
        'in API group "" in the namespace "default"',
        "reason": "Forbidden",
        "details": {"kind": "secrets"},
        "code": 403,
    }
    cluster = await http.get("/api/v1/secrets")
    assert "at the cluster scope" in cluster.json()["message"]
    assert (await http.get(PODS)).status_code == 200
    emu.access.allow()
    assert (await http.get("/api/v1/namespaces/default/secrets")).status_code == 200
    await http.post("/_emulator/access/deny", json={"verb": "create", "resource": "pods"})
    assert (await http.post(PODS, json=pod("nope"))).status_code == 403
    await http.delete("/_emulator/access/deny")
    await asyncio.sleep(0)
    assert (await http.post(PODS, json=pod("yes"))).status_code == 201


async def test_a_rejected_watch_is_recorded_once_with_its_code(
    emu: Emulator, http: httpx.AsyncClient
) -> None:
    r = await http.get(PODS, params={"watch": "1", "labelSelector": "a in b"})
    assert r.status_code == 400
    assert [(x.verb, x.code) for x in emu.audit.records] == [("watch", 400)]
    bad_admin = await http.post("/_emulator/faults/fail", content=b"not json")
    assert bad_admin.status_code == 400
