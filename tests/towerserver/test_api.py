"""The PocketBase records API over real HTTP: shapes, auth, validation, filters, secrets."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from nats_tower_operator.towerserver.filter import quote
from nats_tower_operator.towerserver.jwt import decode_jwt
from nats_tower_operator.towerserver.server import TowerServer

from .conftest import TOKEN

OPS = "/api/collections/nats_auth_operators/records"
ACCOUNTS = "/api/collections/nats_auth_accounts/records"
USERS = "/api/collections/nats_auth_users/records"
ROLES = "/api/collections/nats_auth_signing_keys/records"
ACCESS = "/api/collections/nats_auth_k8s_access/records"
NOT_FOUND = {"code": 404, "message": "The requested resource wasn't found.", "data": {}}
SECRETS = {"sign_seed", "system_user_creds"}


async def _post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(path, json=body)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
async def account(tower: TowerServer) -> dict[str, Any]:
    operator = await tower.create_installation("inst")
    return await tower.create_account(operator["id"], "app")


async def test_health_and_openapi_need_no_token(tower: TowerServer) -> None:
    async with httpx.AsyncClient(base_url=tower.url) as anon:
        health = await anon.get("/api/health")
        assert health.status_code == 200 and health.json()["code"] == 200
        doc = (await anon.get("/api/openapi.json")).json()
    assert doc["openapi"].startswith("3.0")
    assert f"{USERS}/{{id}}" in doc["paths"]
    assert doc["components"]["securitySchemes"]["token"]["name"] == "X-Token"


async def test_auth_missing_401_wrong_403_and_nothing_changes(
    tower: TowerServer, client: httpx.AsyncClient, account: dict[str, Any]
) -> None:
    link = await tower.link_k8s(account["id"], cluster="c", namespace="n")
    async with httpx.AsyncClient(base_url=tower.url) as anon:
        for headers, status in (({}, 401), ({"X-Token": "wrong"}, 403), ({"X-Token": ""}, 401)):
            created = await anon.post(
                ACCESS,
                json={"account": account["id"], "cluster": "x", "namespace": "y"},
                headers=headers,
            )
            deleted = await anon.delete(f"{ACCESS}/{link['id']}", headers=headers)
            listed = await anon.get(ACCESS, headers=headers)
            unknown = await anon.get("/api/collections/nope/records", headers=headers)
            for response in (created, deleted, listed, unknown):
                assert response.status_code == status
                body = response.json()
                assert body["code"] == status and body["data"] == {}
            stats = await anon.get("/api/_stats", headers=headers)
            assert stats.status_code == status
        odd = await anon.get(ACCESS, headers={"X-Token": b"\xff\xfe t\xe9"})
        assert odd.status_code == 403 and odd.json()["code"] == 403
    records = (await client.get(ACCESS)).json()["items"]
    assert [r["id"] for r in records] == [link["id"]]


def test_package_exports() -> None:
    import nats_tower_operator.towerserver as pkg

    for name in pkg.__all__:
        assert getattr(pkg, name) is not None


async def test_stored_nt_token_is_accepted(tower: TowerServer) -> None:
    token = await tower.service.create_api_token(name="ci")
    assert token.startswith("nt_")
    async with httpx.AsyncClient(base_url=tower.url) as anon:
        assert (await anon.get(OPS, headers={"X-Token": token})).status_code == 200
        assert (await anon.get(OPS, headers={"X-Token": token + "x"})).status_code == 403


async def test_record_lifecycle_and_shapes(
    client: httpx.AsyncClient, account: dict[str, Any]
) -> None:
    user = await _post(client, USERS, {"account": account["id"], "name": "svc", "x": 1})
    assert len(user["id"]) == 15 and user["id"].isalnum() and user["id"].islower()
    assert user["collectionName"] == "nats_auth_users"
    assert user["created"].endswith("Z") and len(user["created"]) == len("2024-01-01 12:00:00.000Z")
    assert user["signing_key"] == "" and user["description"] == ""

    got = await client.get(f"{USERS}/{user['id']}")
    assert got.json() == user

    listed = (
        await client.get(USERS, params={"filter": f"account = {quote(account['id'])}"})
    ).json()
    assert listed == {"page": 1, "perPage": 30, "totalItems": 1, "totalPages": 1, "items": [user]}

    patched = await client.patch(f"{USERS}/{user['id']}", json={"description": "new"})
    assert patched.status_code == 200
    assert patched.json()["description"] == "new"
    assert patched.json()["creds"] == user["creds"]

    assert (await client.delete(f"{USERS}/{user['id']}")).status_code == 204
    for response in (
        await client.get(f"{USERS}/{user['id']}"),
        await client.delete(f"{USERS}/{user['id']}"),
        await client.patch(f"{USERS}/{user['id']}", json={"name": "x"}),
        await client.get("/api/collections/unknown/records"),
        await client.post("/api/collections/unknown/records", json={}),
    ):
        assert response.status_code == 404
        assert response.json() == NOT_FOUND


async def test_validation_errors_have_pocketbase_shape(
    client: httpx.AsyncClient, account: dict[str, Any]
) -> None:
    await _post(client, USERS, {"account": account["id"], "name": "dup"})
    duplicate = await client.post(USERS, json={"account": account["id"], "name": "dup"})
    assert duplicate.status_code == 400
    assert duplicate.json() == {
        "code": 400,
        "message": "Failed to create record.",
        "data": {"name": {"code": "validation_not_unique", "message": "Value must be unique."}},
    }
    role = await _post(client, ROLES, {"account": account["id"], "role": "r"})
    dup_role = await client.post(ROLES, json={"account": account["id"], "role": "r"})
    assert dup_role.status_code == 400
    assert dup_role.json()["data"]["role"]["code"] == "validation_not_unique"

    missing = await client.post(USERS, json={"account": account["id"]})
    assert missing.status_code == 400
    assert missing.json()["data"]["name"]["code"] == "validation_required"
    no_account = await client.post(USERS, json={"account": "nosuchaccount00", "name": "a"})
    assert no_account.json()["data"]["account"]["code"] == "validation_missing_rel_records"
    bad_role = await client.post(
        USERS, json={"account": account["id"], "name": "b", "signing_key": "zzz"}
    )
    assert bad_role.json()["data"]["signing_key"]["code"] == "validation_missing_rel_records"
    surrogate = await client.post(
        USERS,
        content=b'{"account": "%s", "name": "bad\\ud800"}' % account["id"].encode(),
        headers={"Content-Type": "application/json"},
    )
    assert surrogate.status_code == 400 and "name" in surrogate.json()["data"]
    for body in (
        {"account": account["id"], "name": ["list"]},
        {"account": account["id"], "name": {"o": 1}},
        {"account": account["id"], "name": "x" * 300},
    ):
        response = await client.post(USERS, json=body)
        assert response.status_code == 400, body
        assert "name" in response.json()["data"]
    bad_subjects = await client.post(
        ROLES, json={"account": account["id"], "role": "s", "publish": ["has space"]}
    )
    assert bad_subjects.json()["data"]["publish"]["code"] == "validation_invalid_subject"
    bad_ttl = await client.post(
        ACCOUNTS, json={"operator": account["operator"], "name": "t", "user_jwt_ttl": "1"}
    )
    assert bad_ttl.status_code == 400 and "user_jwt_ttl" in bad_ttl.json()["data"]
    # A role still used by a user cannot be deleted.
    await _post(client, USERS, {"account": account["id"], "name": "ru", "signing_key": role["id"]})
    refused = await client.delete(f"{ROLES}/{role['id']}")
    assert refused.status_code == 400 and refused.json()["code"] == 400


async def test_malformed_bodies_are_4xx(client: httpx.AsyncClient, account: dict[str, Any]) -> None:
    for content in (b"{not json", b"[1, 2]", b'"text"', b"[" * 100_000):
        response = await client.post(
            USERS, content=content, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, content[:20]
        assert response.json()["message"] == (
            "Failed to load the submitted data due to invalid formatting."
        )
    huge = await client.post(USERS, content=b'{"name": "' + b"a" * (2 * 1024 * 1024) + b'"}')
    assert huge.status_code == 413
    assert huge.json()["code"] == 413
    users = (await client.get(USERS)).json()
    assert users["totalItems"] == 0


async def test_secrets_are_never_returned(
    tower: TowerServer, client: httpx.AsyncClient, account: dict[str, Any]
) -> None:
    await _post(client, ROLES, {"account": account["id"], "role": "r"})

    def read_secrets(tx: Any) -> list[str]:
        out = []
        for table in ("nats_auth_operators", "nats_auth_accounts", "nats_auth_signing_keys"):
            for row in tx.find(table):
                out.append(row["sign_seed"])
                if row.get("system_user_creds"):
                    out.append(row["system_user_creds"].split("SEED-----\n")[1][:58])
        return out

    secrets = await tower.service.store.read(read_secrets)
    assert len(secrets) == 5 and all(s.startswith("S") for s in secrets)
    fields = "id,sign_seed,system_user_creds,public_key"
    for path in (OPS, ACCOUNTS, ROLES):
        for params in ({}, {"fields": fields}, {"fields": "*"}):
            listed = await client.get(path, params=params)
            items = listed.json()["items"]
            assert items
            texts = [listed.text]
            for item in items:
                assert not SECRETS & item.keys()
                single = await client.get(f"{path}/{item['id']}", params=params)
                assert not SECRETS & single.json().keys()
                texts.append(single.text)
            assert not any(secret in text for secret in secrets for text in texts)
        only = (await client.get(path, params={"fields": fields})).json()["items"][0]
        assert set(only) == {"id", "public_key"}
    hidden_filter = await client.get(ACCOUNTS, params={"filter": "sign_seed ~ 'S'"})
    assert hidden_filter.status_code == 400


async def test_list_paging_sorting_fields(
    client: httpx.AsyncClient, account: dict[str, Any]
) -> None:
    for i in range(5):
        await _post(
            client, ACCESS, {"account": account["id"], "cluster": "c", "namespace": f"ns{i}"}
        )
    page3 = (await client.get(ACCESS, params={"perPage": 2, "page": 3})).json()
    assert (page3["page"], page3["perPage"], page3["totalItems"], page3["totalPages"]) == (
        3,
        2,
        5,
        3,
    )
    assert [r["namespace"] for r in page3["items"]] == ["ns4"]
    desc = (await client.get(ACCESS, params={"sort": "-namespace", "fields": "namespace"})).json()
    assert desc["items"] == [{"namespace": f"ns{i}"} for i in (4, 3, 2, 1, 0)]
    skip = (await client.get(ACCESS, params={"skipTotal": "true", "perPage": 1})).json()
    assert skip["totalItems"] == -1 and skip["totalPages"] == -1 and len(skip["items"]) == 1
    clamp = (await client.get(ACCESS, params={"perPage": 100000, "page": "x"})).json()
    assert clamp["perPage"] == 500 and clamp["page"] == 1
    bad_sort = await client.get(ACCESS, params={"sort": "nope"})
    assert bad_sort.status_code == 400
    by_relation = (await client.get(ACCESS, params={"filter": "account.name = 'app'"})).json()
    assert by_relation["totalItems"] == 5
    assert (await client.get(ACCESS, params={"filter": "account.name = 'zzz'"})).json()[
        "totalItems"
    ] == 0


@pytest.mark.parametrize(
    "filter_text", ["name = 'x", "name = 'a' ||", "nope = 'a'", "((name = 'a')", "name = 'a' ) ("]
)
async def test_malformed_filter_is_400(
    client: httpx.AsyncClient, account: dict[str, Any], filter_text: str
) -> None:
    response = await client.get(USERS, params={"filter": filter_text})
    assert response.status_code == 400
    assert response.json() == {"code": 400, "message": "Invalid filter parameters.", "data": {}}


NASTY_NAMES = [
    "plain",
    "it's",
    'say "hi"',
    "back\\slash",
    "trailing\\",
    "x' || name != 'x",
    "p) || (name != ''",
    "a\\' || '1'='1",
    "50%_wild",
]


async def test_filter_injection_returns_only_the_named_record(
    client: httpx.AsyncClient, account: dict[str, Any]
) -> None:
    created = {}
    for name in NASTY_NAMES:
        created[name] = await _post(client, USERS, {"account": account["id"], "name": name})
    probes = [*NASTY_NAMES, "x", "p", "a\\", "' || '' = '", "50%", "%"]
    for probe in probes:
        filt = f"account = {quote(account['id'])} && name = {quote(probe)}"
        items = (await client.get(USERS, params={"filter": filt})).json()["items"]
        expected = [created[probe]["id"]] if probe in created else []
        assert [i["id"] for i in items] == expected, probe
        contains = (await client.get(USERS, params={"filter": f"name ~ {quote(probe)}"})).json()
        assert all(probe in item["name"] for item in contains["items"]), probe


async def test_patch_role_and_operator_resign(
    client: httpx.AsyncClient, account: dict[str, Any]
) -> None:
    role = await _post(client, ROLES, {"account": account["id"], "role": "r", "publish": "a.>, b"})
    assert role["publish"] == ["a.>", "b"]
    before = (await client.get(f"{ACCOUNTS}/{account['id']}")).json()["jwt"]
    patched = await client.patch(f"{ROLES}/{role['id']}", json={"publish": ["c.>"]})
    assert patched.status_code == 200 and patched.json()["publish"] == ["c.>"]
    after = (await client.get(f"{ACCOUNTS}/{account['id']}")).json()["jwt"]
    assert after != before
    scope = decode_jwt(after)["nats"]["signing_keys"][0]
    assert scope["template"]["pub"] == {"allow": ["c.>"]}
    op = await client.patch(f"{OPS}/{account['operator']}", json={"url": "nats://a:1,nats://b:2"})
    assert op.json()["url"] == "nats://a:1,nats://b:2"
    renamed = await client.patch(f"{ACCOUNTS}/{account['id']}", json={"name": "renamed"})
    assert decode_jwt(renamed.json()["jwt"])["name"] == "renamed"


async def test_account_delete_cascades(client: httpx.AsyncClient, account: dict[str, Any]) -> None:
    role = await _post(client, ROLES, {"account": account["id"], "role": "r"})
    await _post(client, USERS, {"account": account["id"], "name": "u", "signing_key": role["id"]})
    await _post(client, ACCESS, {"account": account["id"], "cluster": "c", "namespace": "n"})
    assert (await client.delete(f"{ACCOUNTS}/{account['id']}")).status_code == 204
    for path in (USERS, ROLES, ACCESS):
        assert (await client.get(path)).json()["totalItems"] == 0
    operator = (await client.get(f"{OPS}/{account['operator']}")).json()
    refused = await client.delete(f"{ACCOUNTS}/{operator['system_account']}")
    assert refused.status_code == 400


async def test_stats_count_requests_per_method_and_collection(
    client: httpx.AsyncClient, account: dict[str, Any]
) -> None:
    assert (await client.delete("/api/_stats")).status_code == 204
    await client.get(USERS)
    await client.get(USERS)
    await client.post(ACCESS, json={"account": account["id"], "cluster": "c", "namespace": "n"})
    async with httpx.AsyncClient(base_url=str(client.base_url)) as anon:
        await anon.get(USERS)
    stats = (await client.get("/api/_stats", headers={"X-Token": TOKEN})).json()
    assert stats["requests"] == {"GET nats_auth_users": 3, "POST nats_auth_k8s_access": 1}
    assert stats["total"] == 4
