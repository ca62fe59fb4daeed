"""CredentialIssuer: the request economy of a burst, negative caching, races, roles."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from nats_tower_operator.tower import (
    AccessNotAllowed,
    AccountNotFound,
    CredentialIssuer,
    CredentialSpec,
    InstallationNotFound,
    RoleNotFound,
    RoleSpec,
    TowerBadRequest,
    TowerClient,
)

from .fakepb import TOKEN, FakeTower, pb_error

CLUSTER = "cluster-1"
USERS = "nats_auth_users"
ROLES = "nats_auth_signing_keys"


class World:
    def __init__(self, fake: FakeTower) -> None:
        self.fake = fake
        self.inst = fake.add_installation()
        self.acct = fake.add_account(self.inst["id"], "orders")
        fake.add_access(self.acct["id"], CLUSTER, "team-a")

    def spec(self, user: str, *, namespace: str = "team-a", **over: Any) -> CredentialSpec:
        fields: dict[str, Any] = {
            "installation": self.inst["public_key"],
            "account": "orders",
            "namespace": namespace,
            "user_name": user,
            "description": f"secret {user}",
        }
        fields.update(over)
        return CredentialSpec(**fields)

    def requests(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for seen in self.fake.seen:
            key = f"{seen.method} {seen.collection}"
            counts[key] = counts.get(key, 0) + 1
        return counts


@pytest.fixture
def world(fake: FakeTower) -> World:
    fake.delay = 0.002  # every request takes a little time, like a real server
    return World(fake)


@pytest.fixture
async def issuer(client: TowerClient) -> AsyncIterator[CredentialIssuer]:
    yield CredentialIssuer(client, cluster_id=CLUSTER)


async def test_burst_of_50_new_users_costs_50_creates_and_a_handful(
    world: World, issuer: CredentialIssuer
) -> None:
    creds = await asyncio.gather(*(issuer.issue(world.spec(f"app-{i}")) for i in range(50)))
    assert all(c.created for c in creds)
    assert len({c.user_id for c in creds}) == 50
    counts = world.requests()
    assert counts.pop("GET nats_auth_operators") == 1
    assert counts.pop("GET nats_auth_accounts") == 1
    assert counts.pop("GET nats_auth_k8s_access") == 1
    assert counts.pop(f"GET {USERS}") <= 3
    assert counts.pop(f"POST {USERS}") == 50
    assert counts == {}
    first = creds[0]
    assert first.urls == ("nats://a:4222", "nats://b:4222")
    assert first.account_name == "orders" and first.account_id == world.acct["id"]
    assert first.installation == world.inst["public_key"]
    stored = {u["id"]: u for u in world.fake.items(USERS)}
    assert first.creds == stored[first.user_id]["creds"]
    assert first.user_public_key == stored[first.user_id]["public_key"]
    assert not any(c.role_mismatch for c in creds)


async def test_burst_of_100_existing_users_costs_3_finds(
    world: World, issuer: CredentialIssuer
) -> None:
    for i in range(100):
        world.fake.add_user(world.acct["id"], f"app-{i}")
    creds = await asyncio.gather(*(issuer.issue(world.spec(f"app-{i}")) for i in range(100)))
    assert not any(c.created for c in creds)
    counts = world.requests()
    assert counts[f"GET {USERS}"] == 3
    assert f"POST {USERS}" not in counts
    assert sum(counts.values()) == 6


async def test_lookups_are_cached_until_invalidated(world: World, issuer: CredentialIssuer) -> None:
    await issuer.issue(world.spec("a"))
    await issuer.issue(world.spec("b"))
    assert await issuer.access_allowed(world.inst["public_key"], "orders", "team-a")
    assert await issuer.installation_urls(world.inst["public_key"]) == (
        "nats://a:4222",
        "nats://b:4222",
    )
    counts = world.requests()
    assert counts["GET nats_auth_operators"] == 1
    assert counts["GET nats_auth_k8s_access"] == 1
    issuer.invalidate()
    await issuer.issue(world.spec("c"))
    counts = world.requests()
    assert counts["GET nats_auth_operators"] == 2
    assert counts["GET nats_auth_accounts"] == 2
    assert counts["GET nats_auth_k8s_access"] == 2


async def test_caching_off_goes_to_tower_every_time(world: World, client: TowerClient) -> None:
    issuer = CredentialIssuer(client, cluster_id=CLUSTER, caching=False)
    await asyncio.gather(*(issuer.issue(world.spec(f"app-{i}")) for i in range(10)))
    counts = world.requests()
    for key in ("GET nats_auth_operators", "GET nats_auth_accounts", "GET nats_auth_k8s_access"):
        assert counts[key] == 10
    assert counts[f"GET {USERS}"] == 10 and counts[f"POST {USERS}"] == 10


async def test_access_denied_is_cached_briefly_then_link_takes_effect(
    world: World, client: TowerClient
) -> None:
    issuer = CredentialIssuer(client, cluster_id=CLUSTER, negative_ttl=0.3)
    spec = world.spec("app", namespace="team-b")
    with pytest.raises(AccessNotAllowed) as info:
        await issuer.issue(spec)
    message = str(info.value)
    assert "team-b" in message and CLUSTER in message and "orders" in message
    assert (info.value.cluster, info.value.namespace, info.value.account) == (
        CLUSTER,
        "team-b",
        "orders",
    )
    world.fake.add_access(world.acct["id"], CLUSTER, "team-b")
    with pytest.raises(AccessNotAllowed):
        await issuer.issue(spec)  # the "no" is still cached
    assert world.requests()["GET nats_auth_k8s_access"] == 1
    assert f"GET {USERS}" not in world.requests()  # no user lookup for a denied namespace
    await asyncio.sleep(0.31)
    cred = await issuer.issue(spec)
    assert cred.created
    assert world.requests()["GET nats_auth_k8s_access"] == 2


async def test_access_of_another_cluster_does_not_count(
    world: World, issuer: CredentialIssuer
) -> None:
    world.fake.add_access(world.acct["id"], "cluster-2", "team-c")
    with pytest.raises(AccessNotAllowed):
        await issuer.issue(world.spec("app", namespace="team-c"))
    assert not await issuer.access_allowed(world.inst["public_key"], "orders", "team-c")


async def test_unknown_installation_and_account(world: World, issuer: CredentialIssuer) -> None:
    for _ in range(3):
        with pytest.raises(InstallationNotFound):
            await issuer.issue(world.spec("app", installation="ONOPE"))
    assert world.requests()["GET nats_auth_operators"] == 1  # "not found" is cached briefly
    with pytest.raises(AccountNotFound) as info:
        await issuer.issue(world.spec("app", account="billing"))
    assert world.inst["public_key"] in str(info.value)
    with pytest.raises(AccountNotFound):
        await issuer.issue(world.spec("app", account="billing"))
    assert world.requests()["GET nats_auth_accounts"] == 1


async def test_concurrent_creator_wins_and_we_reuse_its_user(
    world: World, issuer: CredentialIssuer
) -> None:
    winner: dict[str, Any] = {}

    def other_replica_creates_first(request: httpx.Request) -> httpx.Response:
        winner.update(world.fake.add_user(world.acct["id"], "app"))
        return pb_error(
            400,
            "Failed to create record.",
            {"name": {"code": "validation_not_unique", "message": "x"}},
        )

    world.fake.fail(other_replica_creates_first, method="POST", collection=USERS)
    cred = await issuer.issue(world.spec("app"))
    assert cred.user_id == winner["id"] and cred.creds == winner["creds"]
    assert cred.created is False
    counts = world.requests()
    assert counts[f"POST {USERS}"] == 1 and counts[f"GET {USERS}"] == 2
    assert len(world.fake.items(USERS)) == 1


async def test_lost_create_answer_is_retried_without_a_duplicate(
    world: World, issuer: CredentialIssuer
) -> None:
    world.fake.fail(httpx.ReadTimeout("answer lost"), method="POST", collection=USERS, after=True)
    cred = await issuer.issue(world.spec("app"))
    users = world.fake.items(USERS)
    assert len(users) == 1 and cred.user_id == users[0]["id"]
    assert world.requests()[f"POST {USERS}"] == 2


async def test_other_bad_requests_are_not_swallowed(world: World, issuer: CredentialIssuer) -> None:
    world.fake.fail(
        pb_error(400, "bad", {"name": {"code": "validation_invalid_format", "message": "x"}}),
        method="POST",
    )
    with pytest.raises(TowerBadRequest) as info:
        await issuer.issue(world.spec("app"))
    assert info.value.field_errors == {"name": "validation_invalid_format"}
    assert world.requests()[f"GET {USERS}"] == 1


async def test_existing_role_is_reused(world: World, issuer: CredentialIssuer) -> None:
    role = world.fake.add_role(world.acct["id"], "reader", [], ["orders.>"])
    specs = [
        world.spec(f"app-{i}", role=RoleSpec("reader", subscribe=("other.>",))) for i in range(5)
    ]
    creds = await asyncio.gather(*(issuer.issue(s) for s in specs))
    assert {u["signing_key"] for u in world.fake.items(USERS)} == {role["id"]}
    assert not any(c.role_mismatch for c in creds)
    counts = world.requests()
    assert counts[f"GET {ROLES}"] == 1 and f"POST {ROLES}" not in counts
    assert world.fake.items(ROLES)[0]["subscribe"] == ["orders.>"]  # annotations do not edit it


async def test_missing_role_is_created_once_for_a_burst(
    world: World, issuer: CredentialIssuer
) -> None:
    role = RoleSpec("writer", publish=("orders.new",), subscribe=("_INBOX.>",))
    await asyncio.gather(*(issuer.issue(world.spec(f"app-{i}", role=role)) for i in range(20)))
    roles = world.fake.items(ROLES)
    assert len(roles) == 1
    assert (roles[0]["publish"], roles[0]["subscribe"]) == (["orders.new"], ["_INBOX.>"])
    assert {u["signing_key"] for u in world.fake.items(USERS)} == {roles[0]["id"]}
    counts = world.requests()
    assert counts[f"GET {ROLES}"] == 1 and counts[f"POST {ROLES}"] == 1


async def test_role_created_by_someone_else_meanwhile(
    world: World, issuer: CredentialIssuer
) -> None:
    def other_creates_role(request: httpx.Request) -> httpx.Response:
        world.fake.add_role(world.acct["id"], "writer", ["a"], [])
        return pb_error(400, "x", {"role": {"code": "validation_not_unique", "message": "x"}})

    world.fake.fail(other_creates_role, method="POST", collection=ROLES)
    cred = await issuer.issue(world.spec("app", role=RoleSpec("writer", publish=("a",))))
    assert cred.created and not cred.role_mismatch
    assert len(world.fake.items(ROLES)) == 1


async def test_missing_role_without_subjects(world: World, issuer: CredentialIssuer) -> None:
    with pytest.raises(RoleNotFound) as info:
        await issuer.issue(world.spec("app", role=RoleSpec("ghost")))
    assert "ghost" in str(info.value) and "orders" in str(info.value)
    assert world.fake.items(USERS) == [] and world.fake.items(ROLES) == []


async def test_role_mismatch_is_reported(world: World, issuer: CredentialIssuer) -> None:
    a = world.fake.add_role(world.acct["id"], "a", ["x"], [])
    world.fake.add_role(world.acct["id"], "b", ["y"], [])
    world.fake.add_user(world.acct["id"], "signed-by-a", signing_key=a["id"])
    world.fake.add_user(world.acct["id"], "plain")
    assert not (await issuer.issue(world.spec("signed-by-a", role=RoleSpec("a")))).role_mismatch
    assert (await issuer.issue(world.spec("signed-by-a", role=RoleSpec("b")))).role_mismatch
    assert (await issuer.issue(world.spec("signed-by-a"))).role_mismatch
    assert (await issuer.issue(world.spec("plain", role=RoleSpec("a")))).role_mismatch
    assert not (await issuer.issue(world.spec("plain"))).role_mismatch
    # a found user never makes the issuer create a role
    assert (
        await issuer.issue(world.spec("plain", role=RoleSpec("new", publish=("z",))))
    ).role_mismatch
    assert len(world.fake.items(ROLES)) == 2


async def test_revoke_and_lookup(world: World, issuer: CredentialIssuer) -> None:
    cred = await issuer.issue(world.spec("app"))
    user = await issuer.lookup_user(cred.user_id)
    assert user is not None and user.creds == cred.creds
    assert await issuer.revoke(cred.user_id) is True
    assert await issuer.lookup_user(cred.user_id) is None
    assert await issuer.revoke(cred.user_id) is False
    again = await issuer.issue(world.spec("app"))  # users are never cached
    assert again.created and again.user_id != cred.user_id


def test_cluster_id_required(client: TowerClient) -> None:
    with pytest.raises(ValueError):
        CredentialIssuer(client, cluster_id="")


async def test_secrets_not_in_reprs_or_errors(world: World, issuer: CredentialIssuer) -> None:
    cred = await issuer.issue(world.spec("app"))
    stored = world.fake.items(USERS)[0]
    assert stored["seed"] not in repr(cred) and stored["jwt"] not in repr(cred)
    assert TOKEN not in repr(issuer) + repr(issuer._client)
