"""Label and field selectors: parsing, and their effect on list and watch."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from nats_tower_operator.emulator.selectors import FieldSelector, LabelSelector, SelectorError

from .conftest import pod, read_events

PODS = "/api/v1/namespaces/default/pods"
LABELS = {
    "a": {"env": "prod", "tier": "web", "n": "5"},
    "b": {"env": "dev", "tier": "db"},
    "c": {"env": "staging"},
    "d": {},
}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("", "abcd"),
        ("env=prod", "a"),
        ("env==prod", "a"),
        ("env!=prod", "bcd"),  # != matches objects without the label
        ("env in (prod, dev)", "ab"),
        ("env notin (prod,dev)", "cd"),  # notin matches objects without the label
        ("tier", "ab"),
        ("!tier", "cd"),
        ("env,!tier", "c"),
        ("env=dev,tier=db", "b"),
        ("tier in (web),env!=dev", "a"),
        ("n>4", "a"),
        ("n<5", ""),
    ],
)
def test_label_selector_operators(selector: str, expected: str) -> None:
    parsed = LabelSelector.parse(selector)
    assert "".join(k for k, labels in LABELS.items() if parsed.matches(labels)) == expected


@pytest.mark.parametrize(
    "bad", ["env in prod", "env=(x", "bad key!=x", "a=b,", "env in ()", "a=" + "x" * 64, "n>x"]
)
def test_invalid_label_selectors(bad: str) -> None:
    with pytest.raises(SelectorError):
        LabelSelector.parse(bad)


def test_field_selector_parsing() -> None:
    sel = FieldSelector.parse(r"metadata.name=a\,b,metadata.namespace!=kube-system")
    assert sel.terms == (("metadata.name", "=", "a,b"), ("metadata.namespace", "!=", "kube-system"))
    assert sel.matches({"metadata.name": "a,b", "metadata.namespace": "default"})
    assert not sel.matches({"metadata.name": "a,b", "metadata.namespace": "kube-system"})
    with pytest.raises(SelectorError):
        FieldSelector.parse("novalue")


async def _seed(http: httpx.AsyncClient) -> None:
    for name, labels in LABELS.items():
        assert (await http.post(PODS, json=pod(name, labels=labels))).status_code == 201


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("env=prod", ["a"]),
        ("env!=prod", ["b", "c", "d"]),
        ("env in (prod,dev)", ["a", "b"]),
        ("env notin (prod,dev)", ["c", "d"]),
        ("tier", ["a", "b"]),
        ("!tier", ["c", "d"]),
    ],
)
async def test_label_selector_on_list(
    http: httpx.AsyncClient, selector: str, expected: list[str]
) -> None:
    await _seed(http)
    r = await http.get(PODS, params={"labelSelector": selector})
    assert [i["metadata"]["name"] for i in r.json()["items"]] == expected


async def test_invalid_selector_is_400(http: httpx.AsyncClient) -> None:
    r = await http.get(PODS, params={"labelSelector": "env in prod"})
    assert r.status_code == 400
    assert r.json()["reason"] == "BadRequest"
    r2 = await http.get(PODS, params={"fieldSelector": "spec.foo=bar"})
    assert r2.status_code == 400
    assert r2.json()["message"] == "field label not supported: spec.foo"


async def test_field_selectors_on_list(http: httpx.AsyncClient) -> None:
    await _seed(http)
    await http.post("/api/v1/namespaces", json={"metadata": {"name": "other"}})
    await http.post("/api/v1/namespaces/other/pods", json=pod("a"))
    by_name = await http.get("/api/v1/pods", params={"fieldSelector": "metadata.name=a"})
    assert [
        (i["metadata"]["namespace"], i["metadata"]["name"]) for i in by_name.json()["items"]
    ] == [
        ("default", "a"),
        ("other", "a"),
    ]
    by_ns = await http.get("/api/v1/pods", params={"fieldSelector": "metadata.namespace!=default"})
    assert [i["metadata"]["name"] for i in by_ns.json()["items"]] == ["a"]
    both = await http.get(
        "/api/v1/pods", params={"fieldSelector": "metadata.namespace=default,metadata.name!=a"}
    )
    assert [i["metadata"]["name"] for i in both.json()["items"]] == ["b", "c", "d"]
    phase = await http.get(PODS, params={"fieldSelector": "status.phase=Pending"})
    assert len(phase.json()["items"]) == 4
    secrets = await http.get("/api/v1/secrets", params={"fieldSelector": "type=Opaque"})
    assert secrets.status_code == 200


async def test_label_selector_on_watch_sends_entering_and_leaving_objects(
    http: httpx.AsyncClient,
) -> None:
    await http.post(PODS, json=pod("w", labels={"watched": "no"}))
    rv = (await http.get(PODS)).json()["metadata"]["resourceVersion"]
    merge = {"Content-Type": "application/merge-patch+json"}
    async with http.stream(
        "GET",
        PODS,
        params={"watch": "1", "resourceVersion": rv, "labelSelector": "watched in (yes)"},
    ) as stream:
        await asyncio.sleep(0.05)
        await http.patch(
            f"{PODS}/w", headers=merge, json={"metadata": {"labels": {"watched": "yes"}}}
        )
        await http.patch(f"{PODS}/w", headers=merge, json={"metadata": {"annotations": {"x": "1"}}})
        await http.patch(
            f"{PODS}/w", headers=merge, json={"metadata": {"labels": {"watched": "no"}}}
        )
        await http.post(PODS, json=pod("other", labels={"watched": "no"}))
        await http.post(PODS, json=pod("w2", labels={"watched": "yes"}))
        events = await read_events(stream, 4)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "w"),
        ("MODIFIED", "w"),
        ("DELETED", "w"),
        ("ADDED", "w2"),
    ]
    leaving = events[2]["object"]
    assert leaving["metadata"]["labels"] == {"watched": "yes"}  # previous content ...
    assert int(leaving["metadata"]["resourceVersion"]) > int(
        events[1]["object"]["metadata"]["resourceVersion"]
    )


async def test_field_selector_on_watch(http: httpx.AsyncClient) -> None:
    rv = (await http.get(PODS)).json()["metadata"]["resourceVersion"]
    async with http.stream(
        "GET",
        "/api/v1/pods",
        params={"watch": "true", "resourceVersion": rv, "fieldSelector": "metadata.name=target"},
    ) as stream:
        await asyncio.sleep(0.05)
        await http.post(PODS, json=pod("noise"))
        await http.post(PODS, json=pod("target"))
        await http.delete(f"{PODS}/target")
        events = await read_events(stream, 2)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "target"),
        ("DELETED", "target"),
    ]
