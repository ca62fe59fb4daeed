"""Secrets and ConfigMaps: base64 data, stringData merged into data, key and type rules."""

from __future__ import annotations

import base64

import httpx

from .conftest import secret

SECRETS = "/api/v1/namespaces/default/secrets"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def test_string_data_is_merged_into_data_and_dropped(http: httpx.AsyncClient) -> None:
    r = await http.post(
        SECRETS,
        json=secret(
            "creds",
            data={"a": b64("from-data"), "b": b64("old")},
            stringData={"b": "new", "nats.creds": "-----BEGIN"},
        ),
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert "stringData" not in body
    assert body["type"] == "Opaque"
    assert body["data"] == {"a": b64("from-data"), "b": b64("new"), "nats.creds": b64("-----BEGIN")}
    stored = (await http.get(f"{SECRETS}/creds")).json()
    assert stored["data"] == body["data"] and "stringData" not in stored
    # stringData on update merges as well
    stored["stringData"] = {"a": "replaced"}
    updated = (await http.put(f"{SECRETS}/creds", json=stored)).json()
    assert updated["data"]["a"] == b64("replaced")


async def test_data_must_be_base64(http: httpx.AsyncClient) -> None:
    r = await http.post(SECRETS, json=secret("bad", data={"k": "not base64!"}))
    assert r.status_code == 400
    body = r.json()
    assert body["reason"] == "BadRequest"
    assert body["message"] == (
        'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 3'
    )
    assert (await http.get(f"{SECRETS}/bad")).status_code == 404
    padded = await http.post(SECRETS, json=secret("pad", data={"k": "YQ"}))  # missing padding
    assert padded.status_code == 400


async def test_key_names_and_type_rules(http: httpx.AsyncClient) -> None:
    r = await http.post(SECRETS, json=secret("keys", stringData={"bad key": "x"}))
    assert r.status_code == 422
    cause = r.json()["details"]["causes"][0]
    assert cause["field"] == "data[bad key]"
    assert cause["reason"] == "FieldValueInvalid"
    tls = await http.post(
        SECRETS, json=secret("tls", type="kubernetes.io/tls", stringData={"tls.crt": "c"})
    )
    assert tls.status_code == 422
    assert tls.json()["details"]["causes"][0]["field"] == "data[tls.key]"
    ok = (await http.post(SECRETS, json=secret("typed", type="Opaque"))).json()
    ok["type"] = "kubernetes.io/basic-auth"
    changed = await http.put(f"{SECRETS}/typed", json=ok)
    assert changed.status_code == 422
    assert changed.json()["details"]["causes"][0] == {
        "reason": "FieldValueInvalid",
        "message": 'Invalid value: "kubernetes.io/basic-auth": field is immutable',
        "field": "type",
    }


async def test_immutable_secret_data_cannot_change(http: httpx.AsyncClient) -> None:
    created = (
        await http.post(SECRETS, json=secret("frozen", immutable=True, stringData={"a": "1"}))
    ).json()
    created["data"] = {"a": b64("2")}
    r = await http.put(f"{SECRETS}/frozen", json=created)
    assert r.status_code == 422
    assert "field is immutable when `immutable` is set" in r.json()["message"]


async def test_config_maps(http: httpx.AsyncClient) -> None:
    path = "/api/v1/namespaces/default/configmaps"
    ok = await http.post(
        path,
        json={
            "metadata": {"name": "cm"},
            "data": {"installations.yaml": "a: 1"},
            "binaryData": {"bin": b64("x")},
        },
    )
    assert ok.status_code == 201
    bad = await http.post(path, json={"metadata": {"name": "cm2"}, "binaryData": {"bin": "%%%"}})
    assert bad.status_code == 400
    clash = await http.post(
        path, json={"metadata": {"name": "cm3"}, "data": {"k": "v"}, "binaryData": {"k": b64("v")}}
    )
    assert clash.status_code == 422
