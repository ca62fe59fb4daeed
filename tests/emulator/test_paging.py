"""List paging with ``limit``/``continue``: complete, ordered, consistent, and 410 on expiry."""

from __future__ import annotations

import httpx

from nats_tower_operator.emulator import Emulator

from .conftest import pod

PODS = "/api/v1/namespaces/default/pods"


async def _seed(http: httpx.AsyncClient, count: int) -> None:
    for i in range(count):
        await http.post(PODS, json=pod(f"p{i:02d}", labels={"even": str(i % 2 == 0).lower()}))


async def test_pages_cover_everything_once_in_order(http: httpx.AsyncClient) -> None:
    await _seed(http, 11)
    names: list[str] = []
    token = None
    pages = 0
    list_rv = None
    while True:
        params = {"limit": "4", **({"continue": token} if token else {})}
        body = (await http.get(PODS, params=params)).json()
        pages += 1
        names += [i["metadata"]["name"] for i in body["items"]]
        list_rv = list_rv or body["metadata"]["resourceVersion"]
        assert body["metadata"]["resourceVersion"] == list_rv
        token = body["metadata"].get("continue")
        if pages == 1:
            assert body["metadata"]["remainingItemCount"] == 7
            # changes after the first page do not show up in later pages (consistent snapshot)
            await http.post(PODS, json=pod("p05a"))
            await http.delete(f"{PODS}/p09")
        if not token:
            assert "remainingItemCount" not in body["metadata"]
            break
    assert pages == 3
    assert names == [f"p{i:02d}" for i in range(11)]


async def test_paging_with_a_selector(http: httpx.AsyncClient) -> None:
    await _seed(http, 10)
    first = (await http.get(PODS, params={"limit": "3", "labelSelector": "even=true"})).json()
    assert [i["metadata"]["name"] for i in first["items"]] == ["p00", "p02", "p04"]
    assert "remainingItemCount" not in first["metadata"]  # not computed with selectors
    rest = (
        await http.get(
            PODS,
            params={
                "limit": "3",
                "labelSelector": "even=true",
                "continue": first["metadata"]["continue"],
            },
        )
    ).json()
    assert [i["metadata"]["name"] for i in rest["items"]] == ["p06", "p08"]
    assert "continue" not in rest["metadata"]


async def test_expired_continue_is_410_with_an_inconsistent_token(
    emu: Emulator, http: httpx.AsyncClient
) -> None:
    await _seed(http, 6)
    first = (await http.get(PODS, params={"limit": "2"})).json()
    emu.faults.compact()
    await http.post(PODS, json=pod("p02a"))
    r = await http.get(PODS, params={"limit": "2", "continue": first["metadata"]["continue"]})
    assert r.status_code == 410
    status = r.json()
    assert status["reason"] == "Expired"
    assert status["message"].startswith("The provided continue parameter is too old")
    inconsistent = status["metadata"]["continue"]
    page = (await http.get(PODS, params={"limit": "2", "continue": inconsistent})).json()
    assert [i["metadata"]["name"] for i in page["items"]] == [
        "p02",
        "p02a",
    ]  # current state after p01


async def test_garbage_continue_token_is_400(http: httpx.AsyncClient) -> None:
    r = await http.get(PODS, params={"limit": "2", "continue": "not-a-token"})
    assert r.status_code == 400


async def test_lists_are_ordered_by_namespace_then_name(http: httpx.AsyncClient) -> None:
    await http.post("/api/v1/namespaces", json={"metadata": {"name": "aaa"}})
    for ns, name in (("default", "b"), ("aaa", "z"), ("default", "a"), ("aaa", "c")):
        await http.post(f"/api/v1/namespaces/{ns}/pods", json=pod(name))
    everything = (await http.get("/api/v1/pods")).json()["items"]
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in everything] == [
        ("aaa", "c"),
        ("aaa", "z"),
        ("default", "a"),
        ("default", "b"),
    ]
    page = (await http.get(PODS, params={"limit": "1"})).json()
    assert [i["metadata"]["name"] for i in page["items"]] == ["a"]
