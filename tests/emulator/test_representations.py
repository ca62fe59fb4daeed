"""Metadata-only (PartialObjectMetadata) and Table answers, chosen from the Accept header."""

from __future__ import annotations

import httpx

from .conftest import pod, read_events

PODS = "/api/v1/namespaces/default/pods"
META_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
META = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
TABLE = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,"
    "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)


async def test_metadata_only_list(http: httpx.AsyncClient) -> None:
    await http.post(PODS, json=pod("m1", labels={"a": "1"}))
    await http.post(PODS, json=pod("m2"))
    r = await http.get(
        PODS,
        headers={
            "Accept": "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;"
            f"g=meta.k8s.io;v=v1,{META_LIST},application/json"
        },
        params={"labelSelector": "a=1"},
    )
    assert r.status_code == 200
    body = r.json()
    assert body["kind"] == "PartialObjectMetadataList"
    assert body["apiVersion"] == "meta.k8s.io/v1"
    assert body["metadata"]["resourceVersion"]
    assert len(body["items"]) == 1
    item = body["items"][0]
    assert set(item) == {"kind", "apiVersion", "metadata"}
    assert item["kind"] == "PartialObjectMetadata"
    assert item["metadata"]["name"] == "m1" and item["metadata"]["labels"] == {"a": "1"}


async def test_metadata_only_get_and_watch(http: httpx.AsyncClient) -> None:
    created = (await http.post(PODS, json=pod("m"))).json()
    got = (await http.get(f"{PODS}/m", headers={"Accept": META})).json()
    assert got == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": created["metadata"],
    }
    rv = created["metadata"]["resourceVersion"]
    async with http.stream(
        "GET", PODS, params={"watch": "1", "resourceVersion": rv}, headers={"Accept": META}
    ) as stream:
        await http.post(PODS, json=pod("n"))
        event = (await read_events(stream, 1))[0]
    assert event["type"] == "ADDED"
    assert set(event["object"]) == {"kind", "apiVersion", "metadata"}
    assert event["object"]["kind"] == "PartialObjectMetadata"


async def test_mismatched_metadata_requests_are_406(http: httpx.AsyncClient) -> None:
    await http.post(PODS, json=pod("x"))
    assert (await http.get(PODS, headers={"Accept": META})).status_code == 406
    assert (await http.get(f"{PODS}/x", headers={"Accept": META_LIST})).status_code == 406
    protobuf_only = await http.get(PODS, headers={"Accept": "application/vnd.kubernetes.protobuf"})
    assert protobuf_only.status_code == 406
    assert protobuf_only.json()["reason"] == "NotAcceptable"


async def test_table_for_kubectl_get(http: httpx.AsyncClient) -> None:
    await http.post(PODS, json=pod("t"))
    table = (await http.get(PODS, headers={"Accept": TABLE})).json()
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name",
        "Ready",
        "Status",
        "Restarts",
        "Age",
    ]
    row = table["rows"][0]
    assert row["cells"][:4] == ["t", "0/1", "Pending", "0"]
    assert row["object"]["kind"] == "PartialObjectMetadata"
    plain = (await http.get(PODS, headers={"Accept": "application/json"})).json()
    assert plain["kind"] == "PodList"
    assert "kind" not in plain["items"][0]  # like the real server, list items carry no kind
