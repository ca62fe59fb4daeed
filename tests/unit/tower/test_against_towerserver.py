"""The client and issuer against the project's Tower-compatible server over real loopback HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from nats_tower_operator.tower import (
    AccessNotAllowed,
    AccountNotFound,
    CredentialIssuer,
    CredentialSpec,
    InstallationNotFound,
    RoleSpec,
    TowerBadRequest,
    TowerClient,
    TowerUnauthorized,
)

towerserver = pytest.importorskip("nats_tower_operator.towerserver.server")

TOKEN = "client-test-token-42"
CLUSTER = "cluster-x"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Any]:
    async with towerserver.TowerServer.running(
        db_path=tmp_path / "tower.db", token=TOKEN, push=False
    ) as srv:
        yield srv


@pytest.fixture
async def tower(server: Any) -> AsyncIterator[TowerClient]:
    async with TowerClient(server.url, TOKEN, backoff_base=0.01, backoff_cap=0.05) as client:
        yield client


@pytest.fixture
async def setup(server: Any) -> dict[str, Any]:
    inst = await server.create_installation("main", "nats://n1:4222,nats://n2:4222")
    acct = await server.create_account(inst["id"], "orders")
    await server.link_k8s(acct["id"], cluster=CLUSTER, namespace="team-a")
    return {"inst": inst, "acct": acct}


def spec(setup: dict[str, Any], user: str, **over: Any) -> CredentialSpec:
    fields: dict[str, Any] = {
        "installation": setup["inst"]["public_key"],
        "account": "orders",
        "namespace": "team-a",
        "user_name": user,
        "description": "test",
    }
    fields.update(over)
    return CredentialSpec(**fields)


async def test_issue_burst_and_revoke(
    server: Any, tower: TowerClient, setup: dict[str, Any]
) -> None:
    issuer = CredentialIssuer(tower, cluster_id=CLUSTER)
    creds = await asyncio.gather(*(issuer.issue(spec(setup, f"team-a-app-{i}")) for i in range(30)))
    assert all(c.created for c in creds)
    assert creds[0].urls == ("nats://n1:4222", "nats://n2:4222")
    assert creds[0].creds.startswith("-----BEGIN NATS USER JWT-----")
    assert "USER NKEY SEED" in creds[0].creds
    assert tower.stats["POST nats_auth_users"] == 30
    assert tower.stats["GET nats_auth_users"] <= 2
    assert sum(tower.stats.values()) <= 30 + 5

    again = await issuer.issue(spec(setup, "team-a-app-0"))
    assert not again.created and again.user_id == creds[0].user_id
    assert again.creds == creds[0].creds

    names = [
        u.name for u in await tower.list_users(setup["acct"]["id"], name_prefix="team-a-app-1")
    ]
    assert sorted(names) == sorted(["team-a-app-1"] + [f"team-a-app-1{i}" for i in range(10)])
    assert await issuer.revoke(creds[0].user_id) is True
    assert await issuer.lookup_user(creds[0].user_id) is None
    assert await issuer.revoke(creds[0].user_id) is False


async def test_two_issuers_racing_make_one_user(tower: TowerClient, setup: dict[str, Any]) -> None:
    a = CredentialIssuer(tower, cluster_id=CLUSTER)
    b = CredentialIssuer(tower, cluster_id=CLUSTER)
    results = await asyncio.gather(*(i.issue(spec(setup, "shared")) for i in (a, b, a, b)))
    assert len({r.user_id for r in results}) == 1
    users = await tower.find_users(setup["acct"]["id"], ["shared"])
    assert list(users) == ["shared"]


async def test_not_unique_is_reported_as_field_code(
    tower: TowerClient, setup: dict[str, Any]
) -> None:
    acct_id = setup["acct"]["id"]
    await tower.create_user(acct_id, name="dup", description="", signing_key_id=None)
    with pytest.raises(TowerBadRequest) as info:
        await tower.create_user(acct_id, name="dup", description="", signing_key_id=None)
    assert info.value.not_unique, info.value.field_errors


async def test_roles_access_and_lookups(
    server: Any, tower: TowerClient, setup: dict[str, Any]
) -> None:
    issuer = CredentialIssuer(tower, cluster_id=CLUSTER)
    role = RoleSpec("writer", publish=("orders.>",), subscribe=("_INBOX.>",))
    first = await issuer.issue(spec(setup, "w1", role=role))
    second = await issuer.issue(spec(setup, "w2", role=role))
    found = await tower.find_role(setup["acct"]["id"], "writer")
    assert found is not None and found.publish == ("orders.>",)
    for cred in (first, second):
        user = await tower.get_user(cred.user_id)
        assert user is not None and user.signing_key_id == found.id
    assert tower.stats["POST nats_auth_signing_keys"] == 1

    with pytest.raises(AccessNotAllowed):
        await issuer.issue(spec(setup, "x", namespace="team-b"))
    with pytest.raises(InstallationNotFound):
        await issuer.issue(spec(setup, "x", installation="O" + "A" * 55))
    with pytest.raises(AccountNotFound):
        await issuer.issue(spec(setup, "x", account="nope"))
    links = await tower.list_access(CLUSTER)
    assert [(a.namespace, a.account_id) for a in links] == [("team-a", setup["acct"]["id"])]


@pytest.mark.parametrize(
    "hostile",
    ["orders' || name != '", 'orders" || name != "', "orders\\", "x') || (name != 'y", "%"],
)
async def test_hostile_values_match_nothing(
    tower: TowerClient, setup: dict[str, Any], hostile: str
) -> None:
    with pytest.raises(AccountNotFound):
        await tower.get_account(setup["inst"]["id"], hostile)
    assert not await tower.has_access(setup["acct"]["id"], CLUSTER, hostile)
    assert await tower.find_users(setup["acct"]["id"], [hostile, "nobody"]) == {}


async def test_wrong_token(server: Any) -> None:
    async with TowerClient(server.url, "not-the-token") as client:
        with pytest.raises(TowerUnauthorized) as info:
            await client.list_records("nats_auth_users")
    assert "not-the-token" not in str(info.value)
