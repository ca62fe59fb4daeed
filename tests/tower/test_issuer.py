"""CredentialIssuer against the real PocketBase: request economy, caching, races, roles.

Races and lost answers are played at exact moments by ``FaultTransport`` (a second
replica creating the same user just before our create, a create whose answer is lost
after the server stored it); the unique violations are the real server's.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from nats_tower_operator.tower import (
    AccessNotAllowed,
    AccountNotFound,
    CredentialIssuer,
    InstallationNotFound,
    RoleNotFound,
    RoleSpec,
    TowerBadRequest,
    TowerClient,
    TowerUnauthorized,
)
from nats_tower_operator.towerserver.standin import TowerStandIn

from .conftest import (
    ACCESS,
    ACCOUNTS,
    CLUSTER,
    OPERATORS,
    ROLES,
    TOKEN,
    USERS,
    Fault,
    FaultTransport,
    World,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module")
async def issuer(client: TowerClient) -> AsyncIterator[CredentialIssuer]:
    yield CredentialIssuer(client, cluster_id=CLUSTER)


def requests(faults: FaultTransport) -> Counter[str]:
    """The client's HTTP requests so far, as ``"METHOD collection"``, seen at its transport."""
    return Counter(f"{method} {collection}" for method, collection in faults.sent)


def name(i: int, namespace: str = "team-a") -> str:
    """A user name as the operator makes them: cluster/namespace/secret."""
    return f"{CLUSTER}/{namespace}/app-{i}"


# ------------------------------------------------------------------ request economy


async def test_burst_of_50_new_users_costs_50_creates_and_a_handful(
    world: World, faults: FaultTransport, issuer: CredentialIssuer
) -> None:
    creds = await asyncio.gather(*(issuer.issue(world.spec(f"app-{i}")) for i in range(50)))
    assert all(c.created for c in creds)
    assert len({c.user_id for c in creds}) == 50
    counts = requests(faults)
    assert counts.pop(f"GET {OPERATORS}") == 1
    assert counts.pop(f"GET {ACCOUNTS}") == 1
    assert counts.pop(f"GET {ACCESS}") == 1
    assert counts.pop(f"GET {USERS}") <= 3
    assert counts.pop(f"POST {USERS}") == 50
    assert counts == {}
    first = creds[0]
    assert first.urls == tuple(u.strip() for u in world.inst["url"].split(","))
    assert first.account_name == "orders" and first.account_id == world.acct["id"]
    assert first.installation == world.key
    stored = {u["id"]: u for u in await world.users()}
    assert first.creds == stored[first.user_id]["creds"]
    assert first.creds.startswith("-----BEGIN NATS USER JWT-----")
    assert first.user_public_key == stored[first.user_id]["public_key"]
    assert not any(c.role_mismatch for c in creds)


async def test_burst_of_100_existing_users_costs_3_finds(
    world: World, faults: FaultTransport, issuer: CredentialIssuer
) -> None:
    for i in range(100):
        await world.user(f"app-{i}")
    creds = await asyncio.gather(*(issuer.issue(world.spec(f"app-{i}")) for i in range(100)))
    assert not any(c.created for c in creds)
    counts = requests(faults)
    assert counts[f"GET {USERS}"] == 3
    assert f"POST {USERS}" not in counts
    assert sum(counts.values()) == 6


async def test_pipelined_burst_of_our_names_costs_one_listing_and_one_create_each(
    world: World, faults: FaultTransport, issuer: CredentialIssuer
) -> None:
    """Reconciles do not start together, so batching by time window leaves most lookups
    alone; one light listing per (account, namespace) serves the whole burst instead."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(60):
        queue.put_nowait(i)

    async def worker() -> None:  # like the operator's workers: one key after another
        while not queue.empty():
            await issuer.issue(world.spec(name(queue.get_nowait())))

    await asyncio.gather(*(worker() for _ in range(8)))
    counts = requests(faults)
    assert counts[f"POST {USERS}"] == 60
    assert counts[f"GET {USERS}"] == 1
    assert sum(counts.values()) == 60 + 1 + 3  # + installation, account, access


async def test_an_existing_user_is_found_through_the_listing(
    world: World, faults: FaultTransport, issuer: CredentialIssuer
) -> None:
    existing = await world.user(name(1))
    await world.user("someone-else/team-a/app-1")
    cred = await issuer.issue(world.spec(name(1)))
    assert not cred.created and cred.user_id == existing["id"]
    assert cred.creds == existing["creds"]
    again = await issuer.issue(world.spec(name(2)))
    assert again.created
    assert requests(faults)[f"GET {USERS}"] == 2  # one listing + one get of the hit


async def test_a_user_deleted_after_the_listing_is_created_again(
    world: World, issuer: CredentialIssuer
) -> None:
    first = await issuer.issue(world.spec(name(1)))
    assert first.created
    await world.tower.admin.delete(USERS, first.user_id)  # deleted in Tower meanwhile
    second = await issuer.issue(world.spec(name(1)))
    assert second.created and second.user_id != first.user_id


async def test_the_listing_is_per_namespace(world: World, issuer: CredentialIssuer) -> None:
    await world.link("team-b")
    await world.user(name(1, "team-b"))
    a = await issuer.issue(world.spec(name(1, "team-a")))
    b = await issuer.issue(world.spec(name(1, "team-b"), namespace="team-b"))
    assert a.created and not b.created


async def test_lookups_are_cached_until_invalidated(
    world: World, faults: FaultTransport, issuer: CredentialIssuer
) -> None:
    await issuer.issue(world.spec("a"))
    await issuer.issue(world.spec("b"))
    assert await issuer.access_allowed(world.key, "orders", "team-a")
    assert await issuer.installation_urls(world.key) == tuple(
        u.strip() for u in world.inst["url"].split(",")
    )
    counts = requests(faults)
    assert counts[f"GET {OPERATORS}"] == 1
    assert counts[f"GET {ACCESS}"] == 1
    issuer.invalidate()
    await issuer.issue(world.spec("c"))
    counts = requests(faults)
    assert counts[f"GET {OPERATORS}"] == 2
    assert counts[f"GET {ACCOUNTS}"] == 2
    assert counts[f"GET {ACCESS}"] == 2


async def test_caching_off_goes_to_tower_every_time(
    world: World, client: TowerClient, faults: FaultTransport
) -> None:
    issuer = CredentialIssuer(client, cluster_id=CLUSTER, caching=False)
    await asyncio.gather(*(issuer.issue(world.spec(f"app-{i}")) for i in range(10)))
    counts = requests(faults)
    for key in (f"GET {OPERATORS}", f"GET {ACCOUNTS}", f"GET {ACCESS}"):
        assert counts[key] == 10
    assert counts[f"GET {USERS}"] == 10 and counts[f"POST {USERS}"] == 10


# ------------------------------------------------------------------ negative answers


async def test_access_denied_is_cached_briefly_then_a_link_takes_effect(
    world: World, client: TowerClient, faults: FaultTransport
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
    await world.link("team-b")
    with pytest.raises(AccessNotAllowed):
        await issuer.issue(spec)  # the "no" is still cached
    counts = requests(faults)
    assert counts[f"GET {ACCESS}"] == 1
    assert counts[f"GET {OPERATORS}"] == 2  # the lookup, and the proof of the "no"
    assert f"GET {USERS}" not in counts  # no user lookup for a denied namespace
    await asyncio.sleep(0.31)  # at least the negative TTL
    cred = await issuer.issue(spec)
    assert cred.created
    assert requests(faults)[f"GET {ACCESS}"] == 2


async def test_access_of_another_cluster_does_not_count(
    world: World, issuer: CredentialIssuer
) -> None:
    await world.link("team-c", cluster="cluster-2")
    with pytest.raises(AccessNotAllowed):
        await issuer.issue(world.spec("app", namespace="team-c"))
    assert not await issuer.access_allowed(world.key, "orders", "team-c")


async def test_unknown_installation_and_account_are_proven_then_cached(
    world: World, faults: FaultTransport, issuer: CredentialIssuer
) -> None:
    for _ in range(3):
        with pytest.raises(InstallationNotFound):
            await issuer.issue(world.spec("app", installation="O" + "N" * 55))
    assert requests(faults)[f"GET {OPERATORS}"] == 2  # lookup + proof, then cached briefly
    with pytest.raises(AccountNotFound) as info:
        await issuer.issue(world.spec("app", account="billing"))
    assert world.key in str(info.value)
    with pytest.raises(AccountNotFound):
        await issuer.issue(world.spec("app", account="billing"))
    assert requests(faults)[f"GET {ACCOUNTS}"] == 1


async def test_a_wrong_token_is_never_taken_for_not_found_or_not_allowed(
    world: World, tower: TowerStandIn
) -> None:
    async with TowerClient(tower.url, "wrong-" + TOKEN) as wrong:
        issuer = CredentialIssuer(wrong, cluster_id=CLUSTER)
        for spec in (
            world.spec("app"),
            world.spec("app", namespace="team-b"),
            world.spec("app", account="billing"),
        ):
            with pytest.raises(TowerUnauthorized):
                await issuer.issue(spec)
        with pytest.raises(TowerUnauthorized):
            await issuer.confirm_unlinked(world.key, "orders", "team-b")
        with pytest.raises(TowerUnauthorized):
            await issuer.revoke((await world.user("victim"))["id"])
    assert [u["name"] for u in await world.users()] == ["victim"]


async def test_confirm_unlinked_reads_tower_afresh(
    world: World, client: TowerClient, issuer: CredentialIssuer
) -> None:
    assert await issuer.access_allowed(world.key, "orders", "team-a")
    assert await issuer.confirm_unlinked(world.key, "orders", "team-a") is False
    await world.tower.admin.unlink(world.key, "orders", cluster=CLUSTER, namespace="team-a")
    assert await issuer.access_allowed(world.key, "orders", "team-a")  # cached "yes"
    assert await issuer.confirm_unlinked(world.key, "orders", "team-a") is True


# ------------------------------------------------------------------ races and unique violations


async def test_a_concurrent_creator_wins_and_we_reuse_its_user(
    world: World, faults: FaultTransport, issuer: CredentialIssuer
) -> None:
    winner: dict[str, Any] = {}

    async def other_replica_creates_first(request: httpx.Request) -> None:
        winner.update(await world.user("app"))

    faults.inject(Fault("POST", USERS, before=other_replica_creates_first))
    cred = await issuer.issue(world.spec("app"))
    assert cred.user_id == winner["id"] and cred.creds == winner["creds"]
    assert cred.created is False
    counts = requests(faults)
    assert counts[f"POST {USERS}"] == 1 and counts[f"GET {USERS}"] == 2
    assert counts[f"GET {OPERATORS}"] == 1  # a unique violation needs no token proof
    assert len(await world.users()) == 1


async def test_a_lost_create_answer_is_retried_without_a_duplicate(
    world: World, faults: FaultTransport, issuer: CredentialIssuer
) -> None:
    faults.inject(Fault("POST", USERS, lose_answer=True))
    cred = await issuer.issue(world.spec("app"))
    users = await world.users()
    assert len(users) == 1 and cred.user_id == users[0]["id"]
    assert cred.created is False  # the retry found the user its first attempt made
    assert requests(faults)[f"POST {USERS}"] == 2


async def test_two_issuers_racing_make_one_user(world: World, client: TowerClient) -> None:
    a = CredentialIssuer(client, cluster_id=CLUSTER)
    b = CredentialIssuer(client, cluster_id=CLUSTER)
    results = await asyncio.gather(*(i.issue(world.spec("shared")) for i in (a, b, a, b)))
    assert len({r.user_id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert [u["name"] for u in await world.users()] == ["shared"]


async def test_other_bad_requests_are_not_swallowed(
    world: World, faults: FaultTransport, issuer: CredentialIssuer
) -> None:
    with pytest.raises(TowerBadRequest) as info:
        await issuer.issue(world.spec("app", description="d" * 5001))
    assert info.value.field_errors == {"description": "validation_max_text_constraint"}
    assert requests(faults)[f"GET {USERS}"] == 1
    assert await world.users() == []


# ------------------------------------------------------------------ roles


async def test_an_existing_role_is_reused_and_never_edited(
    world: World, faults: FaultTransport, issuer: CredentialIssuer
) -> None:
    role = await world.role("reader", [], ["orders.>"])
    specs = [
        world.spec(f"app-{i}", role=RoleSpec("reader", subscribe=("other.>",))) for i in range(5)
    ]
    creds = await asyncio.gather(*(issuer.issue(s) for s in specs))
    assert {u["signing_key"] for u in await world.users()} == {role["id"]}
    assert not any(c.role_mismatch for c in creds)
    counts = requests(faults)
    assert counts[f"GET {ROLES}"] == 1 and f"POST {ROLES}" not in counts
    assert (await world.roles())[0]["subscribe"] == ["orders.>"]  # annotations do not edit it


async def test_a_missing_role_is_created_once_for_a_burst(
    world: World, faults: FaultTransport, issuer: CredentialIssuer
) -> None:
    role = RoleSpec("writer", publish=("orders.new",), subscribe=("_INBOX.>",))
    await asyncio.gather(*(issuer.issue(world.spec(f"app-{i}", role=role)) for i in range(20)))
    roles = await world.roles()
    assert len(roles) == 1
    assert (roles[0]["publish"], roles[0]["subscribe"]) == (["orders.new"], ["_INBOX.>"])
    assert {u["signing_key"] for u in await world.users()} == {roles[0]["id"]}
    counts = requests(faults)
    assert counts[f"GET {ROLES}"] == 1 and counts[f"POST {ROLES}"] == 1


async def test_a_role_created_by_someone_else_meanwhile_is_used(
    world: World, client: TowerClient, faults: FaultTransport, issuer: CredentialIssuer
) -> None:
    async def other_creates_role(request: httpx.Request) -> None:
        await world.role("writer", ["a"], [])

    faults.inject(Fault("POST", ROLES, before=other_creates_role))
    cred = await issuer.issue(world.spec("app", role=RoleSpec("writer", publish=("a",))))
    assert cred.created and not cred.role_mismatch
    roles = await world.roles()
    assert len(roles) == 1
    assert (await world.users())[0]["signing_key"] == roles[0]["id"]


async def test_a_missing_role_without_subjects_is_an_error(
    world: World, issuer: CredentialIssuer
) -> None:
    with pytest.raises(RoleNotFound) as info:
        await issuer.issue(world.spec("app", role=RoleSpec("ghost")))
    assert "ghost" in str(info.value) and "orders" in str(info.value)
    assert await world.users() == [] and await world.roles() == []


async def test_role_mismatch_is_reported(world: World, issuer: CredentialIssuer) -> None:
    await world.role("a", ["x"], [])
    await world.role("b", ["y"], [])
    await world.user("signed-by-a", role="a")
    await world.user("plain")
    assert not (await issuer.issue(world.spec("signed-by-a", role=RoleSpec("a")))).role_mismatch
    assert (await issuer.issue(world.spec("signed-by-a", role=RoleSpec("b")))).role_mismatch
    assert (await issuer.issue(world.spec("signed-by-a"))).role_mismatch
    assert (await issuer.issue(world.spec("plain", role=RoleSpec("a")))).role_mismatch
    assert not (await issuer.issue(world.spec("plain"))).role_mismatch
    # A found user under another role: the wanted role is made now (it is needed for the
    # user that replaces this one), and the mismatch is reported.
    assert (
        await issuer.issue(world.spec("plain", role=RoleSpec("new", publish=("z",))))
    ).role_mismatch
    assert len(await world.roles()) == 3
    # A wanted role that is missing and cannot be made is an error before anything changes:
    # the found user is kept (the Secret keeps working until the role exists).
    with pytest.raises(RoleNotFound):
        await issuer.issue(world.spec("plain", role=RoleSpec("ghost")))


# ------------------------------------------------------------------ revoke, lookups, sweep


async def test_revoke_and_lookup(world: World, issuer: CredentialIssuer) -> None:
    cred = await issuer.issue(world.spec("app"))
    user = await issuer.lookup_user(cred.user_id)
    assert user is not None and user.creds == cred.creds
    assert await issuer.revoke(cred.user_id) is True
    assert await issuer.lookup_user(cred.user_id) is None
    assert await issuer.revoke(cred.user_id) is False
    again = await issuer.issue(world.spec("app"))  # users are never cached
    assert again.created and again.user_id != cred.user_id


async def test_users_named_lists_our_users_with_their_issue_time(
    world: World, issuer: CredentialIssuer
) -> None:
    made = [await issuer.issue(world.spec(name(i))) for i in range(3)]
    await world.user(f"x{CLUSTER}/team-a/app-9")
    users = await issuer.users_named(world.key, "orders", f"{CLUSTER}/team-a/")
    assert {u.id for u in users} == {c.user_id for c in made}
    assert all(u.issued_at is not None for u in users)


async def test_cluster_id_required(client: TowerClient) -> None:
    with pytest.raises(ValueError):
        CredentialIssuer(client, cluster_id="")


async def test_secrets_not_in_reprs(world: World, issuer: CredentialIssuer) -> None:
    cred = await issuer.issue(world.spec("app"))
    stored = (await world.users())[0]
    assert stored["seed"] not in repr(cred) and stored["jwt"] not in repr(cred)
    assert cred.creds not in repr(cred)
    assert TOKEN not in repr(issuer) + repr(issuer._client)
