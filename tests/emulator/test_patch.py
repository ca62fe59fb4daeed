"""PATCH: JSON merge patch, strategic merge patch and JSON patch (pure and over HTTP)."""

from __future__ import annotations

import httpx
import pytest

from nats_tower_operator.emulator.patch import (
    ListStrategy,
    PatchError,
    json_merge_patch,
    json_patch,
    strategic_merge_patch,
)
from nats_tower_operator.emulator.resources import POD_PATCH_SCHEMA

from .conftest import pod

PODS = "/api/v1/namespaces/default/pods"
MERGE = {"Content-Type": "application/merge-patch+json"}
SMP = {"Content-Type": "application/strategic-merge-patch+json"}
JSONPATCH = {"Content-Type": "application/json-patch+json"}


@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [  # the examples of RFC 7386, appendix A
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_json_merge_patch_rfc7386(target: object, patch: object, result: object) -> None:
    assert json_merge_patch(target, patch) == result


def test_json_merge_patch_does_not_mutate_inputs() -> None:
    target = {"a": {"b": 1}}
    json_merge_patch(target, {"a": {"b": 2}})
    assert target == {"a": {"b": 1}}


def test_json_patch_operations() -> None:
    doc = {"metadata": {"labels": {"a/b": "1"}}, "list": [1, 2]}
    out = json_patch(
        doc,
        [
            {"op": "test", "path": "/metadata/labels/a~1b", "value": "1"},
            {"op": "add", "path": "/metadata/labels/c", "value": "2"},
            {"op": "replace", "path": "/metadata/labels/a~1b", "value": "3"},
            {"op": "add", "path": "/list/-", "value": 3},
            {"op": "add", "path": "/list/0", "value": 0},
            {"op": "remove", "path": "/list/1"},
            {"op": "copy", "from": "/list", "path": "/copy"},
            {"op": "move", "from": "/copy", "path": "/moved"},
        ],
    )
    assert out == {
        "metadata": {"labels": {"a/b": "3", "c": "2"}},
        "list": [0, 2, 3],
        "moved": [0, 2, 3],
    }
    assert doc["list"] == [1, 2]
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "test", "path": "/list/0", "value": 9}])
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "remove", "path": "/missing"}])
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "replace", "path": "/metadata/nope", "value": 1}])


def test_strategic_merge_patch_lists_by_key() -> None:
    original = {
        "metadata": {
            "finalizers": ["a", "b"],
            "ownerReferences": [{"uid": "1", "name": "x"}, {"uid": "2", "name": "y"}],
        },
        "spec": {
            "containers": [
                {"name": "web", "image": "nginx:1", "env": [{"name": "A", "value": "1"}]},
                {"name": "side", "image": "busybox"},
            ],
            "tolerations": [{"key": "t1"}],
        },
    }
    patch = {
        "metadata": {
            "finalizers": ["c", "a"],
            "ownerReferences": [{"uid": "2", "name": "renamed"}],
            "$deleteFromPrimitiveList/finalizers": ["b"],
        },
        "spec": {
            "containers": [
                {"name": "web", "image": "nginx:2", "env": [{"name": "B", "value": "2"}]},
                {"name": "side", "$patch": "delete"},
                {"name": "new", "image": "alpine"},
            ],
            "tolerations": [{"key": "t2"}],
        },
    }
    out = strategic_merge_patch(original, patch, POD_PATCH_SCHEMA)
    assert out["metadata"]["finalizers"] == ["a", "c"]
    assert out["metadata"]["ownerReferences"] == [
        {"uid": "1", "name": "x"},
        {"uid": "2", "name": "renamed"},
    ]
    assert out["spec"]["containers"] == [
        {
            "name": "web",
            "image": "nginx:2",
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
        },
        {"name": "new", "image": "alpine"},
    ]
    assert out["spec"]["tolerations"] == [{"key": "t2"}]  # no strategy: replaced


def test_strategic_merge_patch_directives() -> None:
    schema = {"items": ListStrategy("name")}
    original = {"items": [{"name": "a"}, {"name": "b"}], "map": {"x": 1, "y": 2}, "gone": {"k": 1}}
    out = strategic_merge_patch(
        original,
        {
            "$setElementOrder/items": [{"name": "b"}, {"name": "a"}],
            "items": [{"name": "a", "v": 1}],
            "map": {"$patch": "replace", "z": 3},
            "gone": {"$patch": "delete"},
        },
        schema,
    )
    assert out == {"items": [{"name": "b"}, {"name": "a", "v": 1}], "map": {"z": 3}}
    replaced = strategic_merge_patch(
        original, {"items": [{"$patch": "replace"}, {"name": "only"}]}, schema
    )
    assert replaced["items"] == [{"name": "only"}]
    with pytest.raises(PatchError):
        strategic_merge_patch(original, {"items": [{"v": 1}]}, schema)


async def test_merge_patch_over_http(http: httpx.AsyncClient) -> None:
    await http.post(PODS, json=pod("p", labels={"keep": "1", "drop": "1"}))
    r = await http.patch(
        f"{PODS}/p",
        headers=MERGE,
        json={"metadata": {"labels": {"drop": None, "add": "2"}, "annotations": {"a": "b"}}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["metadata"]["labels"] == {"keep": "1", "add": "2"}
    assert r.json()["metadata"]["annotations"] == {"a": "b"}
    missing = await http.patch(f"{PODS}/none", headers=MERGE, json={})
    assert missing.status_code == 404


async def test_strategic_merge_patch_over_http(http: httpx.AsyncClient) -> None:
    body = pod("smp")
    body["metadata"]["finalizers"] = ["example.com/a"]
    await http.post(PODS, json=body)
    r = await http.patch(
        f"{PODS}/smp",
        headers=SMP,
        json={
            "metadata": {"finalizers": ["example.com/b"]},
            "spec": {"containers": [{"name": "app", "image": "busybox:1.37"}]},
        },
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["metadata"]["finalizers"] == ["example.com/a", "example.com/b"]
    assert [c["image"] for c in out["spec"]["containers"]] == ["busybox:1.37"]
    assert out["spec"]["containers"][0]["terminationMessagePath"] == "/dev/termination-log"
    # the same patch as a JSON merge patch replaces the lists
    r2 = await http.patch(
        f"{PODS}/smp", headers=MERGE, json={"metadata": {"finalizers": ["example.com/c"]}}
    )
    assert r2.json()["metadata"]["finalizers"] == ["example.com/c"]


async def test_json_patch_over_http(http: httpx.AsyncClient) -> None:
    await http.post(PODS, json=pod("jp", labels={"a": "1"}))
    r = await http.patch(
        f"{PODS}/jp",
        headers=JSONPATCH,
        json=[{"op": "add", "path": "/metadata/labels/b", "value": "2"}],
    )
    assert r.json()["metadata"]["labels"] == {"a": "1", "b": "2"}
    failed = await http.patch(
        f"{PODS}/jp",
        headers=JSONPATCH,
        json=[{"op": "test", "path": "/metadata/labels/a", "value": "9"}],
    )
    assert failed.status_code == 422


async def test_patch_with_stale_resource_version_conflicts(http: httpx.AsyncClient) -> None:
    created = (await http.post(PODS, json=pod("rv"))).json()
    await http.patch(f"{PODS}/rv", headers=MERGE, json={"metadata": {"labels": {"a": "1"}}})
    r = await http.patch(
        f"{PODS}/rv",
        headers=MERGE,
        json={
            "metadata": {
                "resourceVersion": created["metadata"]["resourceVersion"],
                "labels": {"b": "2"},
            }
        },
    )
    assert r.status_code == 409
    assert r.json()["reason"] == "Conflict"


async def test_unsupported_patch_type(http: httpx.AsyncClient) -> None:
    await http.post(PODS, json=pod("ct"))
    r = await http.patch(f"{PODS}/ct", headers={"Content-Type": "application/json"}, json={})
    assert r.status_code == 415
    assert r.json()["reason"] == "UnsupportedMediaType"
