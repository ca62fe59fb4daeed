"""The stand-in's hooks, seen through PocketBase's own records API (as any Tower client sees
them): keys, JWTs and creds on create, revocation on delete, role scopes, NATS Tower's API
rules and unique indexes."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from nats_tower_operator.towerserver.jwt import decode_jwt, nkey_from_seed, verify_jwt
from nats_tower_operator.towerserver.standin import TowerStandIn

from .conftest import (
    ACCESS,
    ACCOUNTS,
    LIMITS,
    OPERATORS,
    PLACEHOLDER_URL,
    ROLES,
    TOKEN,
    USERS,
    Record,
    records,
)


async def _post(client: httpx.AsyncClient, collection: str, body: dict[str, Any]) -> Record:
    response = await client.post(records(collection), json=body)
    assert response.status_code == 200, response.text
    result: Record = response.json()
    return result


async def _get(client: httpx.AsyncClient, collection: str, record_id: str) -> Record:
    response = await client.get(records(collection, record_id))
    assert response.status_code == 200, response.text
    result: Record = response.json()
    return result


async def _list(client: httpx.AsyncClient, collection: str, filter: str = "") -> list[Record]:
    params: dict[str, str | int] = {"perPage": 1000}
    if filter:
        params["filter"] = filter
    response = await client.get(records(collection), params=params)
    assert response.status_code == 200, response.text
    items: list[Record] = response.json()["items"]
    return items


async def _account_jwt(client: httpx.AsyncClient, account_id: str) -> dict[str, Any]:
    return verify_jwt((await _get(client, ACCOUNTS, account_id))["jwt"])


def _check_keypair(record: Record, prefix: str, public_letter: str) -> None:
    """``{prefix}public_key``/``seed``/``private_key`` are one real nkey pair."""
    public = record[f"{prefix}public_key"]
    seed = record[f"{prefix}seed"]
    assert public.startswith(public_letter) and len(public) == 56
    assert seed.startswith("S" + public_letter)
    assert nkey_from_seed(seed).public_key == public
    assert record[f"{prefix}private_key"].startswith("P")


@pytest.fixture
async def operator(client: httpx.AsyncClient) -> Record:
    return await _post(client, OPERATORS, {"url": PLACEHOLDER_URL, "description": "main"})


@pytest.fixture
async def account(client: httpx.AsyncClient, operator: Record) -> Record:
    return await _post(client, ACCOUNTS, {"operator": operator["id"], "name": "app"})


async def test_installation_create_makes_keys_jwt_default_limit_sys_account_and_sys_user(
    client: httpx.AsyncClient, operator: Record
) -> None:
    _check_keypair(operator, "", "O")
    _check_keypair(operator, "sign_", "O")
    claims = verify_jwt(operator["jwt"])
    assert claims["iss"] == claims["sub"] == operator["public_key"]
    assert claims["name"] == "main"
    assert claims["nats"]["type"] == "operator"
    assert claims["nats"]["signing_keys"] == [operator["sign_public_key"]]

    limits = await _list(client, LIMITS, f"operator = '{operator['id']}'")
    assert [(lim["name"], lim["default"], lim["max_connections"]) for lim in limits] == [
        ("default", True, -1)
    ]

    accounts = await _list(client, ACCOUNTS, f"operator = '{operator['id']}'")
    assert [a["name"] for a in accounts] == ["SYS"]
    sys_account = accounts[0]
    assert sys_account["limits"] == limits[0]["id"]
    sys_claims = verify_jwt(sys_account["jwt"])
    assert sys_claims["iss"] == operator["sign_public_key"]
    assert sys_claims["sub"] == sys_account["public_key"]
    assert {e["subject"] for e in sys_claims["nats"]["exports"]} == {
        "$SYS.REQ.ACCOUNT.*.*",
        "$SYS.ACCOUNT.*.>",
    }

    sys_users = await _list(client, USERS, f"account = '{sys_account['id']}'")
    assert [u["name"] for u in sys_users] == ["sys"]
    sys_user = sys_users[0]
    assert sys_user["jwt"] in sys_user["creds"] and sys_user["seed"] in sys_user["creds"]
    assert verify_jwt(sys_user["jwt"])["nats"]["issuer_account"] == sys_account["public_key"]


async def test_without_a_valid_token_nothing_is_visible_and_nothing_changes(
    tower: TowerStandIn, client: httpx.AsyncClient, account: Record
) -> None:
    link = await _post(client, ACCESS, {"account": account["id"], "cluster": "c", "namespace": "n"})
    async with httpx.AsyncClient(base_url=tower.url, timeout=10) as anon:
        for headers in ({}, {"X-Token": "wrong"}, {"X-Token": ""}, {"X-Token": TOKEN + "x"}):
            for collection in (OPERATORS, ACCOUNTS, USERS, ACCESS):
                listed = await anon.get(records(collection), headers=headers)
                assert listed.status_code == 200, (headers, collection)
                assert listed.json()["items"] == [] and listed.json()["totalItems"] == 0
            viewed = await anon.get(records(ACCOUNTS, account["id"]), headers=headers)
            patched = await anon.patch(
                records(ACCOUNTS, account["id"]), json={"description": "x"}, headers=headers
            )
            deleted = await anon.delete(records(ACCESS, link["id"]), headers=headers)
            for response in (viewed, patched, deleted):
                assert response.status_code == 404, response.text
            created = await anon.post(
                records(ACCESS),
                json={"account": account["id"], "cluster": "c", "namespace": "other"},
                headers=headers,
            )
            assert created.status_code == 400
            assert created.json() == {
                "data": {},
                "message": "Failed to create record.",
                "status": 400,
            }
    assert [r["id"] for r in await _list(client, ACCESS)] == [link["id"]]
    assert (await _get(client, ACCOUNTS, account["id"]))["description"] == ""


async def test_sys_account_is_listed_for_the_token_but_hidden_from_logged_in_users(
    tower: TowerStandIn, client: httpx.AsyncClient, account: Record
) -> None:
    # A valid X-Token bypasses `name != 'SYS'` (SQL precedence of Tower's rule) ...
    with_token = await _list(client, ACCOUNTS)
    assert sorted(a["name"] for a in with_token) == ["SYS", "app"]
    # ... while a PocketBase user (Tower's UI login) never sees the SYS account.
    async with httpx.AsyncClient(base_url=tower.url, timeout=10) as anon:
        admin = await anon.post(
            "/api/collections/_superusers/auth-with-password",
            json={"identity": tower.superuser.email, "password": tower.superuser.password},
        )
        member = {"email": "member@tower.local", "password": "member-password-1"}
        created = await anon.post(
            "/api/collections/users/records",
            json={**member, "passwordConfirm": member["password"]},
            headers={"Authorization": admin.json()["token"]},
        )
        assert created.status_code == 200, created.text
        login = await anon.post(
            "/api/collections/users/auth-with-password",
            json={"identity": member["email"], "password": member["password"]},
        )
        as_member = await anon.get(
            records(ACCOUNTS), headers={"Authorization": login.json()["token"]}
        )
    assert as_member.status_code == 200
    assert [a["name"] for a in as_member.json()["items"]] == ["app"]


async def test_account_create_makes_keys_and_a_jwt_signed_by_the_operator_signing_key(
    client: httpx.AsyncClient, operator: Record, account: Record
) -> None:
    _check_keypair(account, "", "A")
    _check_keypair(account, "sign_", "A")
    claims = verify_jwt(account["jwt"])
    assert claims["iss"] == operator["sign_public_key"] != operator["public_key"]
    assert claims["sub"] == account["public_key"]
    assert claims["name"] == "app"
    assert claims["nats"]["type"] == "account"
    assert claims["nats"]["signing_keys"] == [account["sign_public_key"]]
    assert "exports" not in claims["nats"] and "revocations" not in claims["nats"]
    default = await _list(client, LIMITS, f"operator = '{operator['id']}' && default = true")
    assert account["limits"] == default[0]["id"]


async def test_user_create_returns_creds_signed_by_the_account_signing_key_without_expiry(
    client: httpx.AsyncClient, account: Record
) -> None:
    user = await _post(client, USERS, {"account": account["id"], "name": "svc", "description": "d"})
    _check_keypair(user, "", "U")
    assert user["creds"].startswith("-----BEGIN NATS USER JWT-----\n" + user["jwt"] + "\n")
    assert f"-----BEGIN USER NKEY SEED-----\n{user['seed']}\n" in user["creds"]
    claims = verify_jwt(user["jwt"])
    assert claims["iss"] == account["sign_public_key"]
    assert claims["sub"] == user["public_key"]
    assert claims["name"] == "svc"
    assert "exp" not in claims
    assert claims["nats"]["issuer_account"] == account["public_key"]
    assert claims["nats"]["type"] == "user"
    assert claims["nats"]["pub"] == {} and claims["nats"]["sub"] == {}
    assert await _get(client, USERS, user["id"]) == user

    # A PATCH keeps the issued credentials (Tower does not re-issue on update).
    patched = await client.patch(records(USERS, user["id"]), json={"description": "new"})
    assert patched.status_code == 200
    assert patched.json()["description"] == "new"
    assert (patched.json()["jwt"], patched.json()["creds"]) == (user["jwt"], user["creds"])


async def test_user_with_a_role_is_signed_by_the_role_key_and_carries_no_permissions(
    client: httpx.AsyncClient, account: Record
) -> None:
    role = await _post(
        client, ROLES, {"account": account["id"], "role": "writer", "publish": ["orders.>"]}
    )
    _check_keypair(role, "", "A")
    user = await _post(
        client, USERS, {"account": account["id"], "name": "w", "signing_key": role["id"]}
    )
    assert user["signing_key"] == role["id"]
    claims = verify_jwt(user["jwt"])
    assert claims["iss"] == role["public_key"]
    assert "exp" not in claims
    # nats-server refuses scoped users that carry permissions or limits of their own.
    assert claims["nats"] == {
        "issuer_account": account["public_key"],
        "type": "user",
        "version": 2,
    }


async def test_a_role_of_another_account_is_refused(
    client: httpx.AsyncClient, operator: Record, account: Record
) -> None:
    other = await _post(client, ACCOUNTS, {"operator": operator["id"], "name": "other"})
    foreign = await _post(client, ROLES, {"account": other["id"], "role": "r"})
    response = await client.post(
        records(USERS), json={"account": account["id"], "name": "u", "signing_key": foreign["id"]}
    )
    assert response.status_code == 400
    assert "does not belong" in response.json()["message"]
    assert await _list(client, USERS, f"account = '{account['id']}'") == []


async def test_role_create_update_and_delete_change_the_scope_in_the_account_jwt(
    client: httpx.AsyncClient, account: Record
) -> None:
    role = await _post(
        client,
        ROLES,
        {"account": account["id"], "role": "rw", "publish": ["a.>"], "subscribe": ["_INBOX.>"]},
    )
    keys = (await _account_jwt(client, account["id"]))["nats"]["signing_keys"]
    assert keys[0] == account["sign_public_key"]
    assert keys[1] == {
        "kind": "user_scope",
        "key": role["public_key"],
        "role": "rw",
        "template": {
            "pub": {"allow": ["a.>"]},
            "sub": {"allow": ["_INBOX.>"]},
            "subs": -1,
            "data": -1,
            "payload": -1,
        },
    }

    patched = await client.patch(records(ROLES, role["id"]), json={"publish": ["b.>"]})
    assert patched.status_code == 200, patched.text
    keys = (await _account_jwt(client, account["id"]))["nats"]["signing_keys"]
    assert len(keys) == 2
    assert keys[1]["template"]["pub"] == {"allow": ["b.>"]}

    assert (await client.delete(records(ROLES, role["id"]))).status_code == 204
    keys = (await _account_jwt(client, account["id"]))["nats"]["signing_keys"]
    assert keys == [account["sign_public_key"]]


async def test_a_role_with_users_cannot_be_deleted(
    client: httpx.AsyncClient, account: Record
) -> None:
    role = await _post(client, ROLES, {"account": account["id"], "role": "r"})
    user = await _post(
        client, USERS, {"account": account["id"], "name": "u", "signing_key": role["id"]}
    )
    refused = await client.delete(records(ROLES, role["id"]))
    assert refused.status_code == 400
    assert "still has users" in refused.json()["message"]
    assert (await _get(client, ROLES, role["id"]))["public_key"] == role["public_key"]
    scopes = (await _account_jwt(client, account["id"]))["nats"]["signing_keys"]
    assert role["public_key"] in [k["key"] for k in scopes if isinstance(k, dict)]

    assert (await client.delete(records(USERS, user["id"]))).status_code == 204
    assert (await client.delete(records(ROLES, role["id"]))).status_code == 204


async def test_user_delete_adds_a_revocation_to_the_account_jwt(
    client: httpx.AsyncClient, account: Record
) -> None:
    gone = await _post(client, USERS, {"account": account["id"], "name": "gone"})
    stays = await _post(client, USERS, {"account": account["id"], "name": "stays"})
    assert (await client.delete(records(USERS, gone["id"]))).status_code == 204
    assert (await client.get(records(USERS, gone["id"]))).status_code == 404

    claims = await _account_jwt(client, account["id"])
    revoked = claims["nats"]["revocations"]
    assert list(revoked) == [gone["public_key"]]
    assert revoked[gone["public_key"]] >= verify_jwt(gone["jwt"])["iat"]
    assert stays["public_key"] not in revoked
    # Everything else of the account JWT is kept, re-signed by the operator signing key.
    before = decode_jwt(account["jwt"])
    assert claims["iss"] == before["iss"] and claims["sub"] == before["sub"]
    assert claims["nats"]["signing_keys"] == before["nats"]["signing_keys"]


async def test_concurrent_deletes_of_many_users_of_one_account_all_end_up_revoked(
    client: httpx.AsyncClient, account: Record
) -> None:
    users = await asyncio.gather(
        *(_post(client, USERS, {"account": account["id"], "name": f"u{i}"}) for i in range(40))
    )
    responses = await asyncio.gather(*(client.delete(records(USERS, u["id"])) for u in users))
    assert {r.status_code for r in responses} == {204}
    revoked = (await _account_jwt(client, account["id"]))["nats"]["revocations"]
    assert set(revoked) == {u["public_key"] for u in users}


@pytest.mark.parametrize(
    ("collection", "fields"),
    [
        (OPERATORS, {"url"}),
        (ACCOUNTS, {"name", "operator"}),
        (USERS, {"name", "account"}),
        (ROLES, {"role", "account"}),
        (ACCESS, {"account", "cluster", "namespace"}),
    ],
)
async def test_unique_violations_answer_400_validation_not_unique(
    client: httpx.AsyncClient,
    operator: Record,
    account: Record,
    collection: str,
    fields: set[str],
) -> None:
    body = {
        OPERATORS: {"url": operator["url"]},
        ACCOUNTS: {"operator": operator["id"], "name": "app"},
        USERS: {"account": account["id"], "name": "dup"},
        ROLES: {"account": account["id"], "role": "dup"},
        ACCESS: {"account": account["id"], "cluster": "c", "namespace": "n"},
    }[collection]
    if collection not in (OPERATORS, ACCOUNTS):
        await _post(client, collection, body)
    before = await _list(client, collection)

    duplicate = await client.post(records(collection), json=body)
    assert duplicate.status_code == 400
    answer = duplicate.json()
    assert answer["message"] == "Failed to create record."
    assert set(answer["data"]) == fields
    assert {error["code"] for error in answer["data"].values()} == {"validation_not_unique"}
    assert await _list(client, collection) == before


async def test_the_same_names_are_fine_in_another_account(
    client: httpx.AsyncClient, operator: Record, account: Record
) -> None:
    other = await _post(client, ACCOUNTS, {"operator": operator["id"], "name": "other"})
    for acc in (account, other):
        await _post(client, USERS, {"account": acc["id"], "name": "same"})
        await _post(client, ROLES, {"account": acc["id"], "role": "same"})
        await _post(client, ACCESS, {"account": acc["id"], "cluster": "c", "namespace": "n"})
    assert len(await _list(client, USERS, "name = 'same'")) == 2


async def test_account_delete_cascades_to_its_users_roles_and_links_only(
    client: httpx.AsyncClient, operator: Record, account: Record
) -> None:
    other = await _post(client, ACCOUNTS, {"operator": operator["id"], "name": "other"})
    for acc in (account, other):
        role = await _post(client, ROLES, {"account": acc["id"], "role": "r"})
        await _post(client, USERS, {"account": acc["id"], "name": "u", "signing_key": role["id"]})
        await _post(client, USERS, {"account": acc["id"], "name": "plain"})
        await _post(client, ACCESS, {"account": acc["id"], "cluster": "c", "namespace": "n"})

    assert (await client.delete(records(ACCOUNTS, account["id"]))).status_code == 204
    assert (await client.get(records(ACCOUNTS, account["id"]))).status_code == 404
    for collection in (USERS, ROLES, ACCESS):
        assert await _list(client, collection, f"account = '{account['id']}'") == []
        assert len(await _list(client, collection, f"account = '{other['id']}'")) >= 1
    assert len(await _list(client, USERS, f"account = '{other['id']}'")) == 2


async def test_user_jwt_ttl_option_gives_users_of_that_account_an_expiry(
    client: httpx.AsyncClient, operator: Record, account: Record
) -> None:
    short = await _post(client, ACCOUNTS, {"operator": operator["id"], "name": "short"})
    await _post(client, "standin_account_options", {"account": short["id"], "user_jwt_ttl": 600})
    expiring = verify_jwt(
        (await _post(client, USERS, {"account": short["id"], "name": "u"}))["jwt"]
    )
    assert expiring["exp"] == expiring["iat"] + 600
    lasting = verify_jwt(
        (await _post(client, USERS, {"account": account["id"], "name": "u"}))["jwt"]
    )
    assert "exp" not in lasting


async def test_creates_missing_a_required_field_or_relation_are_400_and_store_nothing(
    client: httpx.AsyncClient, account: Record
) -> None:
    missing_url = await client.post(records(OPERATORS), json={"description": "no url"})
    assert missing_url.status_code == 400
    assert missing_url.json()["data"]["url"]["code"] == "validation_required"
    for body in (
        {"account": account["id"]},
        {"account": account["id"], "name": ""},
        {"account": "nosuchaccount00", "name": "a"},
        {"name": "no-account"},
    ):
        response = await client.post(records(USERS), json=body)
        assert response.status_code == 400, (body, response.text)
        if not body.get("name"):
            # As in Tower: PocketBase's own validation answers, not the signing hook.
            assert response.json()["data"]["name"]["code"] == "validation_required"
    assert await _list(client, USERS, f"account = '{account['id']}'") == []
    assert len(await _list(client, OPERATORS)) == 1


async def test_the_system_account_cannot_be_deleted(
    client: httpx.AsyncClient, account: Record
) -> None:
    (system,) = await _list(client, ACCOUNTS, f"operator = '{account['operator']}' && name = 'SYS'")
    response = await client.delete(records(ACCOUNTS, system["id"]))
    assert response.status_code == 400
    assert "system account" in response.json()["message"]
    assert await _list(client, ACCOUNTS, f"id = '{system['id']}'") != []
