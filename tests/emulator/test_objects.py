"""Object identity, versions and the error Status bodies of create/get/update."""

from __future__ import annotations

import re
import uuid

import httpx

from nats_tower_operator.emulator import Emulator

from .conftest import pod, secret

PODS = "/api/v1/namespaces/default/pods"
SECRETS = "/api/v1/namespaces/default/secrets"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/default/leases"


async def test_uid_timestamp_and_cluster_wide_increasing_resource_version(
    http: httpx.AsyncClient,
) -> None:
    versions = []
    uids = set()
    for path, body in (
        (PODS, pod("a")),
        (SECRETS, secret("b")),
        (PODS, pod("c")),
        (LEASES, {"metadata": {"name": "d"}, "spec": {}}),
    ):
        r = await http.post(path, json=body)
        assert r.status_code == 201, r.text
        meta = r.json()["metadata"]
        uuid.UUID(meta["uid"])
        uids.add(meta["uid"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta["creationTimestamp"])
        versions.append(int(meta["resourceVersion"]))
    assert len(uids) == 4
    assert versions == sorted(versions) and len(set(versions)) == 4
    listed = (await http.get(PODS)).json()
    assert int(listed["metadata"]["resourceVersion"]) == versions[-1]
    updated = await http.patch(
        f"{PODS}/a",
        json={"metadata": {"labels": {"x": "y"}}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert int(updated.json()["metadata"]["resourceVersion"]) > versions[-1]
    assert (
        updated.json()["metadata"]["uid"] == (await http.get(f"{PODS}/a")).json()["metadata"]["uid"]
    )


async def test_unchanged_update_keeps_resource_version(http: httpx.AsyncClient) -> None:
    created = (await http.post(SECRETS, json=secret("same", data={"k": "dg=="}))).json()
    again = await http.put(f"{SECRETS}/same", json=created)
    assert again.status_code == 200
    assert again.json()["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


async def test_create_existing_answers_409_already_exists(http: httpx.AsyncClient) -> None:
    await http.post(PODS, json=pod("dup"))
    r = await http.post(PODS, json=pod("dup"))
    assert r.status_code == 409
    assert r.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods "dup" already exists',
        "reason": "AlreadyExists",
        "details": {"name": "dup", "kind": "pods"},
        "code": 409,
    }


async def test_get_missing_answers_404_not_found_with_group(http: httpx.AsyncClient) -> None:
    r = await http.get(f"{LEASES}/nope")
    assert r.status_code == 404
    assert r.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'leases.coordination.k8s.io "nope" not found',
        "reason": "NotFound",
        "details": {"name": "nope", "group": "coordination.k8s.io", "kind": "leases"},
        "code": 404,
    }
    core = await http.get(f"{PODS}/nope")
    assert core.json()["message"] == 'pods "nope" not found'
    assert core.json()["details"] == {"name": "nope", "kind": "pods"}


async def test_update_with_stale_resource_version_is_409_conflict(http: httpx.AsyncClient) -> None:
    first = (await http.post(SECRETS, json=secret("s", stringData={"a": "1"}))).json()
    first["metadata"]["labels"] = {"v": "2"}
    assert (await http.put(f"{SECRETS}/s", json=first)).status_code == 200
    first["metadata"]["labels"] = {"v": "3"}
    stale = await http.put(f"{SECRETS}/s", json=first)
    assert stale.status_code == 409
    assert stale.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'Operation cannot be fulfilled on secrets "s": the object has been modified; '
        "please apply your changes to the latest version and try again",
        "reason": "Conflict",
        "details": {"name": "s", "kind": "secrets"},
        "code": 409,
    }
    # without a resourceVersion the update is unconditional
    del first["metadata"]["resourceVersion"]
    forced = await http.put(f"{SECRETS}/s", json=first)
    assert forced.status_code == 200
    assert forced.json()["metadata"]["labels"] == {"v": "3"}


async def test_update_of_missing_object_and_name_mismatch(http: httpx.AsyncClient) -> None:
    assert (await http.put(f"{PODS}/ghost", json=pod("ghost"))).status_code == 404
    await http.post(PODS, json=pod("real"))
    r = await http.put(f"{PODS}/real", json=pod("other"))
    assert r.status_code == 400
    assert r.json()["reason"] == "BadRequest"
    assert "does not match the name on the URL" in r.json()["message"]


async def test_generate_name(http: httpx.AsyncClient) -> None:
    body = pod("")
    del body["metadata"]["name"]
    body["metadata"]["generateName"] = "worker-"
    names = set()
    for _ in range(3):
        r = await http.post(PODS, json=body)
        assert r.status_code == 201
        name = r.json()["metadata"]["name"]
        assert re.fullmatch(r"worker-[a-z0-9]{5}", name)
        names.add(name)
    assert len(names) == 3
    missing = await http.post(PODS, json={"metadata": {}, "spec": body["spec"]})
    assert missing.status_code == 422
    assert missing.json()["details"]["causes"] == [
        {
            "reason": "FieldValueRequired",
            "message": "Required value: name or generateName is required",
            "field": "metadata.name",
        }
    ]


async def test_invalid_name_answers_422_invalid(http: httpx.AsyncClient) -> None:
    r = await http.post(SECRETS, json=secret("Bad_Name"))
    assert r.status_code == 422
    body = r.json()
    assert body["reason"] == "Invalid"
    assert body["message"].startswith(
        'Secret "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name"'
    )
    assert body["details"]["kind"] == "Secret"
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    ns = await http.post("/api/v1/namespaces", json={"metadata": {"name": "a.b"}})
    assert ns.status_code == 422  # namespaces are DNS labels: no dots


async def test_namespaced_create_needs_an_existing_namespace(http: httpx.AsyncClient) -> None:
    r = await http.post("/api/v1/namespaces/nope/pods", json=pod("p"))
    assert r.status_code == 404
    assert r.json()["message"] == 'namespaces "nope" not found'
    assert r.json()["details"] == {"name": "nope", "kind": "namespaces"}
    names = [n["metadata"]["name"] for n in (await http.get("/api/v1/namespaces")).json()["items"]]
    assert {"default", "kube-system"} <= set(names)


async def test_unknown_resources_and_methods(http: httpx.AsyncClient) -> None:
    r = await http.get("/api/v1/namespaces/default/widgets")
    assert r.status_code == 404
    assert r.json()["message"] == "the server could not find the requested resource"
    assert (await http.get("/apis/example.com/v1/things")).status_code == 404
    put_list = await http.put(PODS, json=pod("x"))
    assert put_list.status_code == 405
    assert put_list.json()["reason"] == "MethodNotAllowed"


async def test_status_subresource_and_generation(http: httpx.AsyncClient) -> None:
    created = (await http.post(PODS, json=pod("gen"))).json()
    assert created["metadata"]["generation"] == 1
    assert created["status"]["phase"] == "Pending"
    status = dict(created)
    status["status"] = {"phase": "Running"}
    status["metadata"] = {**created["metadata"], "labels": {"ignored": "yes"}}
    r = await http.put(f"{PODS}/gen/status", json=status)
    assert r.status_code == 200
    assert r.json()["status"] == {"phase": "Running"}
    assert r.json()["metadata"].get("labels") == {}  # metadata is not changed through /status
    assert r.json()["metadata"]["generation"] == 1
    main = r.json()
    main["status"] = {"phase": "Failed"}
    main["metadata"]["labels"] = {"changed": "yes"}
    r2 = await http.put(f"{PODS}/gen", json=main)
    assert r2.json()["status"] == {
        "phase": "Running"
    }  # status is not changed through the main resource
    assert r2.json()["metadata"]["labels"] == {"changed": "yes"}
    assert r2.json()["metadata"]["generation"] == 1  # metadata changes do not bump generation
    spec = r2.json()
    spec["spec"]["containers"][0]["image"] = "busybox:1.37"
    r3 = await http.put(f"{PODS}/gen", json=spec)
    assert r3.json()["metadata"]["generation"] == 2
    forbidden = r3.json()
    forbidden["spec"]["containers"][0]["name"] = "renamed"
    r4 = await http.put(f"{PODS}/gen", json=forbidden)
    assert r4.status_code == 422
    assert "pod updates may not change fields" in r4.json()["message"]


async def test_dry_run_does_not_persist(http: httpx.AsyncClient) -> None:
    r = await http.post(SECRETS, params={"dryRun": "All"}, json=secret("dry"))
    assert r.status_code == 201
    assert (await http.get(f"{SECRETS}/dry")).status_code == 404


async def test_delete_answers(http: httpx.AsyncClient) -> None:
    created = (await http.post(SECRETS, json=secret("gone"))).json()
    r = await http.delete(f"{SECRETS}/gone")
    assert r.status_code == 200
    assert r.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": "gone", "kind": "secrets", "uid": created["metadata"]["uid"]},
    }
    await http.post(PODS, json=pod("p"))
    deleted_pod = await http.delete(f"{PODS}/p")
    assert deleted_pod.json()["kind"] == "Pod"  # pods return the deleted object
    again = await http.delete(f"{SECRETS}/gone")
    assert again.status_code == 404


async def test_delete_preconditions(http: httpx.AsyncClient) -> None:
    created = (await http.post(SECRETS, json=secret("pre"))).json()
    meta = created["metadata"]
    wrong_uid = await http.request(
        "DELETE",
        f"{SECRETS}/pre",
        json={"preconditions": {"uid": "00000000-0000-0000-0000-000000000000"}},
    )
    assert wrong_uid.status_code == 409
    assert wrong_uid.json()["message"] == (
        'Operation cannot be fulfilled on secrets "pre": Precondition failed: UID in precondition: '
        f"00000000-0000-0000-0000-000000000000, UID in object meta: {meta['uid']}"
    )
    wrong_rv = await http.request(
        "DELETE", f"{SECRETS}/pre", json={"preconditions": {"resourceVersion": "1"}}
    )
    assert wrong_rv.status_code == 409
    ok = await http.request(
        "DELETE",
        f"{SECRETS}/pre",
        json={"preconditions": {"uid": meta["uid"], "resourceVersion": meta["resourceVersion"]}},
    )
    assert ok.status_code == 200


async def test_in_process_store_api(emu: Emulator) -> None:
    created = emu.store.write(pod("inproc", labels={"a": "1"}))
    assert created["metadata"]["namespace"] == "default"
    created["metadata"]["labels"]["a"] = "mutated"  # copies: the store is not affected
    assert emu.store.read("pods", "inproc", "default")["metadata"]["labels"] == {"a": "1"}
    assert [p["metadata"]["name"] for p in emu.store.read_all("po", label_selector="a=1")] == [
        "inproc"
    ]
    assert emu.store.remove("pods", "inproc", "default") is True
    assert emu.store.read("pods", "inproc", "default") is None
