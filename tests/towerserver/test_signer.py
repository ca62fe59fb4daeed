"""The hooks' signing service (signer.py) over HTTP: the shared key, input checks and the
keys, JWTs and creds it hands back to the hooks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from nats_tower_operator.towerserver import jwt
from nats_tower_operator.towerserver.push import PushQueue
from nats_tower_operator.towerserver.signer import Signer, build_app

KEY = "signer-key-for-tests"
NOW = 1_700_000_000
ENDPOINTS = (
    "/v1/operator",
    "/v1/account",
    "/v1/role",
    "/v1/user",
    "/v1/account/update",
    "/v1/push",
)


class Service:
    def __init__(self, client: TestClient[Any, Any], queue: PushQueue) -> None:
        self.client = client
        self.queue = queue

    async def post(
        self, path: str, body: Any, *, key: str | None = KEY
    ) -> tuple[int, dict[str, Any]]:
        headers = {} if key is None else {"X-Signer-Key": key}
        response = await self.client.post(path, json=body, headers=headers)
        return response.status, await response.json()

    async def ok(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        status, answer = await self.post(path, body)
        assert status in (200, 202), answer
        return answer


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    queue = PushQueue()  # never started: pushes stay queued
    app = build_app(Signer(queue, clock=lambda: NOW + 0.7), key=KEY)
    async with TestClient(TestServer(app)) as client:
        yield Service(client, queue)
    await queue.close()


async def _operator(service: Service) -> dict[str, Any]:
    return await service.ok("/v1/operator", {"name": "main"})


async def _account(service: Service, **extra: Any) -> dict[str, Any]:
    operator = await _operator(service)
    body = {"operator_sign_seed": operator["sign_seed"], "name": "app", **extra}
    return {"operator": operator, **await service.ok("/v1/account", body)}


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("key", [None, "", "wrong", KEY + "x"])
async def test_a_missing_or_wrong_signer_key_is_403(
    service: Service, path: str, key: str | None
) -> None:
    body = {
        "urls": "nats://127.0.0.1:4222",
        "creds": "c",
        "account_public_key": "A",
        "jwt": "j",
    }
    status, answer = await service.post(path, body, key=key)
    assert status == 403 and answer == {"message": "forbidden"}
    assert service.queue.pending == 0


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/v1/account", {"operator_sign_seed": "SONOTASEED", "name": "a"}, "operator_sign_seed"),
        ("/v1/account", {"name": "a"}, "operator_sign_seed"),
        ("/v1/user", {"signing_seed": "bad", "account_public_key": "A", "name": "u"}, "signing"),
        (
            "/v1/account/update",
            {"operator_sign_seed": "SOBAD", "jwt": "x.y.z"},
            "operator_sign_seed",
        ),
    ],
)
async def test_bad_seeds_are_400_naming_the_field(
    service: Service, path: str, body: dict[str, Any], message: str
) -> None:
    status, answer = await service.post(path, body)
    assert status == 400
    assert message in answer["message"]


async def test_malformed_requests_are_400(service: Service) -> None:
    account = await _account(service)
    seed = account["sign_seed"]
    user = {"signing_seed": seed, "account_public_key": account["public_key"], "name": "u"}
    cases: list[tuple[str, Any]] = [
        ("/v1/user", [1, 2]),
        ("/v1/user", "text"),
        ("/v1/user", {**user, "name": ""}),
        ("/v1/user", {**user, "account_public_key": 5}),
        ("/v1/user", {**user, "ttl": -1}),
        ("/v1/user", {**user, "ttl": "60"}),
        ("/v1/user", {**user, "ttl": True}),
        ("/v1/account/update", {"operator_sign_seed": seed, "jwt": "not-a-jwt"}),
        ("/v1/account/update", {"operator_sign_seed": seed, "jwt": account["jwt"], "scope": 1}),
        ("/v1/account/update", {"operator_sign_seed": seed, "jwt": account["jwt"], "revoke": "U"}),
        ("/v1/push", {"urls": "nats://x:1", "creds": "c", "account_public_key": "A"}),
    ]
    for path, body in cases:
        status, answer = await service.post(path, body)
        assert status == 400, (path, body, answer)
        assert answer["message"]
    response = await service.client.post(
        "/v1/user", data=b"{not json", headers={"X-Signer-Key": KEY}
    )
    assert response.status == 400
    assert service.queue.pending == 0


async def test_operator_gets_keys_and_a_self_signed_jwt_with_its_signing_key(
    service: Service,
) -> None:
    answer = await _operator(service)
    for prefix in ("", "sign_"):
        key = jwt.nkey_from_seed(answer[f"{prefix}seed"])
        assert key.public_key == answer[f"{prefix}public_key"]
        assert key.public_key.startswith("O")
        assert answer[f"{prefix}private_key"] == jwt.private_key(key.seed)
    claims = jwt.verify_jwt(answer["jwt"])
    assert claims["iss"] == claims["sub"] == answer["public_key"]
    assert claims["iat"] == NOW and claims["name"] == "main"
    assert claims["nats"]["signing_keys"] == [answer["sign_public_key"]]
    unnamed = jwt.decode_jwt((await service.ok("/v1/operator", {}))["jwt"])
    assert unnamed["name"] == unnamed["sub"]


async def test_account_jwt_is_signed_by_the_operator_signing_key(service: Service) -> None:
    account = await _account(service)
    assert account["public_key"].startswith("A") and account["seed"].startswith("SA")
    claims = jwt.verify_jwt(account["jwt"])
    assert claims["iss"] == account["operator"]["sign_public_key"]
    assert claims["sub"] == account["public_key"] and claims["name"] == "app"
    assert claims["nats"]["signing_keys"] == [account["sign_public_key"]]
    assert "exports" not in claims["nats"]
    system = await _account(service, system=True)
    assert jwt.decode_jwt(system["jwt"])["nats"]["exports"]


async def test_role_is_a_fresh_account_type_key(service: Service) -> None:
    first, second = await service.ok("/v1/role", {}), await service.ok("/v1/role", {})
    assert first["public_key"].startswith("A") and first["seed"].startswith("SA")
    assert jwt.nkey_from_seed(first["seed"]).public_key == first["public_key"]
    assert first["public_key"] != second["public_key"]


async def test_user_fields_jwt_and_creds(service: Service) -> None:
    account = await _account(service)
    user = await service.ok(
        "/v1/user",
        {
            "signing_seed": account["sign_seed"],
            "account_public_key": account["public_key"],
            "name": "svc",
        },
    )
    assert set(user) == {"public_key", "private_key", "seed", "jwt", "creds"}
    assert jwt.nkey_from_seed(user["seed"]).public_key == user["public_key"]
    assert user["public_key"].startswith("U")
    assert user["private_key"] == jwt.private_key(user["seed"])
    assert user["creds"] == jwt.format_user_creds(user["jwt"], user["seed"])
    claims = jwt.verify_jwt(user["jwt"])
    assert claims["iss"] == account["sign_public_key"]
    assert claims["sub"] == user["public_key"] and claims["name"] == "svc"
    assert claims["iat"] == NOW and "exp" not in claims
    assert claims["nats"]["issuer_account"] == account["public_key"]
    assert claims["nats"]["pub"] == {} and claims["nats"]["subs"] == -1


async def test_scoped_user_with_ttl_expires_and_has_no_permissions(service: Service) -> None:
    account = await _account(service)
    role = await service.ok("/v1/role", {})
    user = await service.ok(
        "/v1/user",
        {
            "signing_seed": role["seed"],
            "account_public_key": account["public_key"],
            "name": "w",
            "scoped": True,
            "ttl": 300,
        },
    )
    claims = jwt.verify_jwt(user["jwt"])
    assert claims["iss"] == role["public_key"]
    assert claims["exp"] == NOW + 300
    assert claims["nats"] == {
        "issuer_account": account["public_key"],
        "type": "user",
        "version": 2,
    }


async def test_account_update_revokes_scopes_renames_and_disables(service: Service) -> None:
    account = await _account(service)
    seed = account["operator"]["sign_seed"]
    role = await service.ok("/v1/role", {})
    scope = {"key": role["public_key"], "role": "r", "publish": ["a.>"], "subscribe": []}
    updated = await service.ok(
        "/v1/account/update",
        {
            "operator_sign_seed": seed,
            "jwt": account["jwt"],
            "revoke": ["UONE", ""],
            "scope": scope,
            "name": "renamed",
        },
    )
    claims = jwt.verify_jwt(updated["jwt"])
    assert claims["iss"] == account["operator"]["sign_public_key"]
    assert claims["name"] == "renamed"
    assert claims["nats"]["revocations"] == {"UONE": NOW}
    assert claims["nats"]["signing_keys"][1]["key"] == role["public_key"]

    removed = await service.ok(
        "/v1/account/update",
        {
            "operator_sign_seed": seed,
            "jwt": updated["jwt"],
            "remove_key": role["public_key"],
            "disabled": True,
        },
    )
    claims = jwt.verify_jwt(removed["jwt"])
    assert claims["nats"]["signing_keys"] == [account["sign_public_key"]]
    assert claims["nats"]["limits"]["conn"] == 0
    assert claims["nats"]["revocations"] == {"UONE": NOW, "*": NOW}


async def test_push_answers_202_and_queues_the_latest_jwt_per_account(service: Service) -> None:
    body = {
        "urls": " nats://a:4222 , nats://b:4222,",
        "creds": "creds",
        "account_public_key": "AACCOUNT",
        "jwt": "first",
    }
    status, answer = await service.post("/v1/push", body)
    assert (status, answer) == (202, {"queued": True})
    await service.ok("/v1/push", {**body, "jwt": "second"})
    await service.ok("/v1/push", {**body, "account_public_key": "AOTHER"})
    assert service.queue.pending == 2
    health = await service.client.get("/v1/health")
    assert await health.json() == {"pending_pushes": 2}


async def test_push_without_any_url_is_accepted_but_not_queued(service: Service) -> None:
    body = {"urls": " , ", "creds": "c", "account_public_key": "A", "jwt": "j"}
    status, answer = await service.post("/v1/push", body)
    assert (status, answer) == (202, {"queued": False})
    assert service.queue.pending == 0
