"""CustomResourceDefinitions: serving, schema pruning/validation, status, cleanup."""

from __future__ import annotations

from typing import Any

import httpx

from nats_tower_operator.emulator import Emulator, load_nack_accounts_crd

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
WIDGETS = "/apis/example.com/v1/namespaces/default/widgets"
MERGE = {"Content-Type": "application/merge-patch+json"}


def widget_crd() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets", "shortNames": ["wd"]},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "selectableFields": [{"jsonPath": ".spec.color"}],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "required": ["size"],
                                    "properties": {
                                        "size": {"type": "integer", "minimum": 1},
                                        "color": {
                                            "type": "string",
                                            "enum": ["red", "blue"],
                                            "default": "red",
                                        },
                                        "free": {
                                            "type": "object",
                                            "x-kubernetes-preserve-unknown-fields": True,
                                        },
                                    },
                                },
                                "status": {
                                    "type": "object",
                                    "properties": {"ready": {"type": "boolean"}},
                                },
                            },
                        }
                    },
                },
                {
                    "name": "v1beta1",
                    "served": True,
                    "storage": False,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                },
            ],
        },
    }


def widget(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": spec,
    }


async def test_registering_a_crd_serves_its_resource(http: httpx.AsyncClient) -> None:
    assert (await http.get(WIDGETS)).status_code == 404
    r = await http.post(CRDS, json=widget_crd())
    assert r.status_code == 201, r.text
    crd = r.json()
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    assert crd["status"]["acceptedNames"]["listKind"] == "WidgetList"
    group = (await http.get("/apis/example.com")).json()
    assert group["preferredVersion"]["version"] == "v1"
    resources = (await http.get("/apis/example.com/v1")).json()["resources"]
    assert {
        "name": "widgets",
        "kind": "Widget",
        "namespaced": True,
        "shortNames": ["wd"],
    }.items() <= resources[0].items()
    assert resources[1]["name"] == "widgets/status"
    created = await http.post(WIDGETS, json=widget("w", size=2))
    assert created.status_code == 201
    assert created.json()["metadata"]["generation"] == 1
    beta = (await http.get("/apis/example.com/v1beta1/namespaces/default/widgets/w")).json()
    assert beta["apiVersion"] == "example.com/v1beta1"  # one storage, served in every version
    listed = (await http.get(WIDGETS)).json()
    assert listed["kind"] == "WidgetList"
    assert listed["items"][0]["kind"] == "Widget"  # custom resource list items keep kind


async def test_schema_prunes_defaults_and_validates(http: httpx.AsyncClient) -> None:
    await http.post(CRDS, json=widget_crd())
    body = widget("w", size=1, unknown="dropped", free={"anything": {"goes": 1}})
    body["extra"] = "dropped too"
    created = (await http.post(WIDGETS, json=body)).json()
    assert created["spec"] == {"size": 1, "color": "red", "free": {"anything": {"goes": 1}}}
    assert "extra" not in created
    bad = await http.post(WIDGETS, json=widget("bad", size="big", color="green"))
    assert bad.status_code == 422
    causes = {c["field"]: c for c in bad.json()["details"]["causes"]}
    assert causes["spec.size"]["reason"] == "FieldValueTypeInvalid"
    assert (
        causes["spec.color"]["message"]
        == 'Unsupported value: "green": supported values: "red", "blue"'
    )
    assert bad.json()["message"].startswith('Widget.example.com "bad" is invalid: [')
    missing = await http.post(WIDGETS, json=widget("missing"))
    assert missing.json()["details"]["causes"] == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.size"}
    ]


async def test_status_subresource_generation_and_patch_types(http: httpx.AsyncClient) -> None:
    await http.post(CRDS, json=widget_crd())
    body = widget("s", size=1)
    body["status"] = {"ready": True}
    created = (await http.post(WIDGETS, json=body)).json()
    assert "status" not in created  # status is ignored on create with a status subresource
    status = await http.patch(
        f"{WIDGETS}/s/status", headers=MERGE, json={"status": {"ready": True}, "spec": {"size": 9}}
    )
    assert status.json()["status"] == {"ready": True} and status.json()["spec"]["size"] == 1
    assert status.json()["metadata"]["generation"] == 1
    spec = await http.patch(f"{WIDGETS}/s", headers=MERGE, json={"spec": {"size": 3}})
    assert spec.json()["metadata"]["generation"] == 2
    smp = await http.patch(
        f"{WIDGETS}/s", headers={"Content-Type": "application/strategic-merge-patch+json"}, json={}
    )
    assert smp.status_code == 415


async def test_selectable_fields(http: httpx.AsyncClient) -> None:
    await http.post(CRDS, json=widget_crd())
    await http.post(WIDGETS, json=widget("r", size=1, color="red"))
    await http.post(WIDGETS, json=widget("b", size=1, color="blue"))
    r = await http.get(WIDGETS, params={"fieldSelector": "spec.color=blue"})
    assert [i["metadata"]["name"] for i in r.json()["items"]] == ["b"]


async def test_invalid_crd_is_rejected(http: httpx.AsyncClient) -> None:
    crd = widget_crd()
    crd["metadata"]["name"] = "wrong.example.com"
    crd["spec"]["versions"][1]["storage"] = True
    r = await http.post(CRDS, json=crd)
    assert r.status_code == 422
    fields = {c["field"] for c in r.json()["details"]["causes"]}
    assert fields == {"metadata.name", "spec.versions"}


async def test_deleting_the_crd_removes_resources_and_stops_serving(
    http: httpx.AsyncClient,
) -> None:
    await http.post(CRDS, json=widget_crd())
    await http.post(WIDGETS, json=widget("plain", size=1))
    held = widget("held", size=1)
    held["metadata"]["finalizers"] = ["example.com/hold"]
    await http.post(WIDGETS, json=held)
    r = await http.delete(f"{CRDS}/widgets.example.com")
    assert r.status_code == 200
    assert r.json()["metadata"]["deletionTimestamp"]
    assert (await http.get(f"{WIDGETS}/plain")).status_code == 404
    assert (await http.get(f"{WIDGETS}/held")).json()["metadata"]["deletionTimestamp"]
    refused = await http.post(WIDGETS, json=widget("new", size=1))
    assert refused.status_code == 405
    await http.patch(f"{WIDGETS}/held", headers=MERGE, json={"metadata": {"finalizers": None}})
    assert (await http.get(f"{CRDS}/widgets.example.com")).status_code == 404
    assert (await http.get(WIDGETS)).status_code == 404
    assert (await http.get("/apis/example.com/v1")).status_code == 404
    assert "example.com" not in [g["name"] for g in (await http.get("/apis")).json()["groups"]]


async def test_nack_accounts_crd(emu: Emulator, http: httpx.AsyncClient) -> None:
    crd = load_nack_accounts_crd()
    assert crd["metadata"]["name"] == "accounts.jetstream.nats.io"
    emu.register_crd(crd)
    resources = (await http.get("/apis/jetstream.nats.io/v1beta2")).json()["resources"]
    account = resources[0]
    assert (account["name"], account["kind"], account["namespaced"]) == (
        "accounts",
        "Account",
        True,
    )
    assert "shortNames" not in account
    body = {
        "apiVersion": "jetstream.nats.io/v1beta2",
        "kind": "Account",
        "metadata": {"name": "operator"},
        "spec": {
            "name": "operator",
            "servers": ["nats://nats:4222"],
            "creds": {"secret": {"name": "nack"}, "file": "nats.creds"},
            "future": 1,
        },
    }
    created = await http.post(
        "/apis/jetstream.nats.io/v1beta2/namespaces/default/accounts", json=body
    )
    assert created.status_code == 201
    assert created.json()["spec"]["future"] == 1  # unknown fields preserved
    assert emu.store.read("accounts.jetstream.nats.io", "operator", "default") is not None
    emu.register_crd(crd)  # registering again replaces, keeps objects
    assert emu.store.read("accounts.jetstream.nats.io", "operator", "default") is not None
