"""TowerClient's domain calls against the real PocketBase serving NATS Tower's rules.

A wrong token is never a 401 on Tower: every negative answer must be proven with the same
token, and every domain call must turn an unproven one into TowerUnauthorized. Filters
built from hostile values match exactly what they name; prefix listings and chunked
lookups return every matching user and nothing else.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from nats_tower_operator.tower import (
    AccountNotFound,
    FilterValueError,
    InstallationNotFound,
    TowerBadRequest,
    TowerClient,
    TowerNotFound,
    TowerUnauthorized,
    and_,
    eq,
)
from nats_tower_operator.tower.readiness import TowerReadiness
from nats_tower_operator.towerserver.standin import TowerStandIn

from .conftest import (
    ACCESS,
    ACCOUNTS,
    CLUSTER,
    OPERATORS,
    TOKEN,
    USERS,
    FaultTransport,
    World,
    fresh_tower,
    make_world,
    unique_url,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


def sent(faults: FaultTransport) -> Counter[str]:
    """The client's HTTP requests so far, as ``"METHOD collection"``, seen at its transport."""
    return Counter(f"{method} {collection}" for method, collection in faults.sent)


Call = Callable[[TowerClient, World, dict[str, Any]], Awaitable[object]]

DOMAIN_CALLS: dict[str, Call] = {
    "get_installation": lambda c, w, r: c.get_installation(w.key),
    "get_account": lambda c, w, r: c.get_account(w.inst["id"], "orders"),
    "has_access": lambda c, w, r: c.has_access(w.acct["id"], CLUSTER, "team-a"),
    "get_user": lambda c, w, r: c.get_user(r["user"]["id"]),
    "delete_user": lambda c, w, r: c.delete_user(r["user"]["id"]),
    "find_role": lambda c, w, r: c.find_role(w.acct["id"], "reader"),
    "create_user": lambda c, w, r: c.create_user(
        w.acct["id"], name="new-user", description="", signing_key_id=None
    ),
    "create_role": lambda c, w, r: c.create_role(
        w.acct["id"], role="new-role", publish=["a"], subscribe=[]
    ),
    "get_record": lambda c, w, r: c.get_record(ACCESS, r["link"]["id"]),
    "update_record": lambda c, w, r: c.update_record(
        ACCESS, r["link"]["id"], {"namespace": "moved"}
    ),
    "delete_record": lambda c, w, r: c.delete_record(ACCESS, r["link"]["id"]),
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def untouchable(tower: TowerStandIn) -> tuple[World, dict[str, Any]]:
    """A world with a role, a user and a link that only wrong-token calls are made on."""
    world = await make_world(tower)
    await world.role("reader", [], ["orders.>"])
    user = await world.user("existing")
    links = await tower.admin.list(ACCESS, f"account = '{world.acct['id']}'")
    return world, {"user": user, "link": links[0]}


@pytest.mark.parametrize("call", list(DOMAIN_CALLS))
async def test_every_domain_call_with_a_wrong_token_raises_unauthorized(
    untouchable: tuple[World, dict[str, Any]], wrong: TowerClient, call: str
) -> None:
    world, records = untouchable
    with pytest.raises(TowerUnauthorized) as info:
        await DOMAIN_CALLS[call](wrong, world, records)
    assert "not-" + TOKEN not in str(info.value)
    assert "installation" in str(info.value)  # says why it believes the token is wrong
    # nothing was changed with the wrong token
    users = await world.users()
    assert [u["name"] for u in users] == ["existing"]
    assert len(await world.roles()) == 1
    link = await world.tower.admin.get(ACCESS, records["link"]["id"])
    assert link["namespace"] == "team-a"


async def test_negative_answers_with_the_right_token_are_proven_once_then_believed(
    world: World, client: TowerClient, faults: FaultTransport
) -> None:
    gone = await world.user("gone")
    await world.tower.admin.delete(USERS, gone["id"])
    with pytest.raises(InstallationNotFound):
        await client.get_installation("O" + "A" * 55)
    with pytest.raises(AccountNotFound):
        await client.get_account(world.inst["id"], "billing")
    assert await client.has_access(world.acct["id"], CLUSTER, "team-b") is False
    assert await client.has_access(world.acct["id"], "cluster-2", "team-a") is False
    assert await client.get_user(gone["id"]) is None
    assert await client.delete_user(gone["id"]) is False
    assert await client.find_role(world.acct["id"], "nobody") is None
    with pytest.raises(TowerNotFound):
        await client.update_record(USERS, gone["id"], {"description": "x"})
    # one lookup and one proof (a list of installations) per negative answer
    assert sent(faults)[f"GET {OPERATORS}"] == 1 + 8


async def test_positive_answers_need_no_proof(
    world: World, client: TowerClient, faults: FaultTransport
) -> None:
    user = await world.user("present")
    inst = await client.get_installation(world.key)
    assert inst.id == world.inst["id"]
    assert inst.urls == (world.inst["url"].split(", ")[0], "nats://127.0.0.1:1")
    account = await client.get_account(inst.id, "orders")
    assert account.id == world.acct["id"] and account.installation_id == inst.id
    assert await client.has_access(account.id, CLUSTER, "team-a") is True
    found = await client.get_user(user["id"])
    assert found is not None and found.creds == user["creds"] and found.jwt == user["jwt"]
    assert sent(faults)[f"GET {OPERATORS}"] == 1  # the lookup itself, no proof


async def test_a_create_refused_with_field_errors_needs_no_proof(
    world: World, client: TowerClient, faults: FaultTransport
) -> None:
    await world.user("dup")
    with pytest.raises(TowerBadRequest) as info:
        await client.create_user(world.acct["id"], name="dup", description="", signing_key_id=None)
    assert info.value.not_unique
    assert info.value.field_errors == {
        "account": "validation_not_unique",
        "name": "validation_not_unique",
    }
    with pytest.raises(TowerBadRequest) as info:
        await client.create_user(
            world.acct["id"], name="long", description="d" * 5001, signing_key_id=None
        )
    assert info.value.field_errors == {"description": "validation_max_text_constraint"}
    assert not info.value.not_unique
    assert sent(faults)[f"GET {OPERATORS}"] == 0


async def test_a_create_refused_without_field_errors_is_proven_then_a_bad_request(
    world: World, client: TowerClient, faults: FaultTransport
) -> None:
    """An account id that does not exist: Tower's hook answers 400 with no field errors,
    which is what a wrong token gets too; the token is proven, so it is a bad request."""
    with pytest.raises(TowerBadRequest) as info:
        await client.create_user("zzzzzzzzzzzzzzz", name="x", description="", signing_key_id=None)
    assert not isinstance(info.value, TowerUnauthorized)
    assert info.value.field_errors == {}
    assert sent(faults)[f"GET {OPERATORS}"] == 1


async def test_listings_with_a_wrong_token_are_empty_not_errors(
    world: World, wrong: TowerClient
) -> None:
    """Listings prove nothing: callers act on them only after a positive answer."""
    await world.user("c1/team-a/app")
    assert await wrong.token_works() is False
    assert await wrong.find_users(world.acct["id"], ["c1/team-a/app"]) == {}
    assert await wrong.list_users(world.acct["id"], name_prefix="c1/") == []
    assert await wrong.list_user_names(world.acct["id"], name_prefix="c1/") == {}
    assert await wrong.list_access(CLUSTER) == []


# ------------------------------------------------------------------ hostile values

HOSTILE = [
    "orders' || name != '",
    'orders" || name != "',
    "x') || (name != 'y",
    "' || '1' = '1",
    "it\\'s",
    "\\'",
    "a\\b",
    "%",
    "_",
    "or%ers",
    "ORDERS",
    "orders ",
    "é'ü",
]


async def test_hostile_values_match_exactly_what_they_name(
    world: World, client: TowerClient
) -> None:
    other = await world.tower.admin.create_account(world.key, "other")
    await world.user("app")
    await world.user("app", account=other)
    # absent: nothing else matches (each of these is also throttled by PocketBase, see
    # tests/differential, so only a few)
    for hostile in HOSTILE[:3]:
        with pytest.raises(AccountNotFound):
            await client.get_account(world.inst["id"], hostile)
        assert await client.find_users(world.acct["id"], [hostile, "nobody"]) == {}, hostile
    for hostile in HOSTILE:
        await world.tower.admin.create_account(world.key, hostile)
        await world.link(hostile)
        await world.user(hostile)
        await world.role(hostile, ["a"], [])
    for hostile in HOSTILE:
        # present: exactly that record, and the server's answer holds nothing else
        account = await client.get_account(world.inst["id"], hostile)
        assert account.name == hostile
        raw = await client.list_records(
            ACCOUNTS, filter=and_(eq("operator", world.inst["id"]), eq("name", hostile))
        )
        assert [r["name"] for r in raw] == [hostile]
        assert await client.has_access(world.acct["id"], CLUSTER, hostile), hostile
        raw = await client.list_records(ACCESS, filter=eq("namespace", hostile))
        assert [r["namespace"] for r in raw] == [hostile]
        found = await client.find_users(world.acct["id"], [hostile, "app", "nobody"])
        assert sorted(found) == sorted([hostile, "app"]), hostile
        raw = await client.list_records(
            USERS, filter=and_(eq("account", world.acct["id"]), eq("name", hostile))
        )
        assert [r["name"] for r in raw] == [hostile]
        role = await client.find_role(world.acct["id"], hostile)
        assert role is not None and role.role == hostile


@pytest.mark.parametrize("value", ["\\", "orders\\", "it's\\"])
async def test_values_ending_in_a_backslash_are_refused_before_any_request(
    world: World, client: TowerClient, faults: FaultTransport, value: str
) -> None:
    for call in (
        lambda: client.get_installation(value),
        lambda: client.get_account(world.inst["id"], value),
        lambda: client.has_access(world.acct["id"], CLUSTER, value),
        lambda: client.find_users(world.acct["id"], ["ok", value]),
        lambda: client.find_role(world.acct["id"], value),
        lambda: client.list_access(value),
    ):
        with pytest.raises(FilterValueError):
            await call()
    assert faults.sent == []


# ------------------------------------------------------------------ listings


async def test_list_user_names_and_list_users_by_prefix(world: World, client: TowerClient) -> None:
    other = await world.tower.admin.create_account(world.key, "other")
    mine = {}
    for name in ("c1/ns1/a", "c1/ns1/b", "c1/ns1/b#2"):
        mine[name] = (await world.user(name))["id"]
    # "~" is "contains" and case-insensitive: these match it, and must be dropped
    for name in ("xc1/ns1/c", "C1/NS1/upper", "c1/ns10/a", "c1/ns2/a", "c1/ns1"):
        await world.user(name)
    await world.user("c1/ns1/foreign", account=other)
    started = time.time()
    assert await client.list_user_names(world.acct["id"], name_prefix="c1/ns1/") == mine
    summaries = await client.list_users(world.acct["id"], name_prefix="c1/ns1/")
    assert {s.name: s.id for s in summaries} == mine
    for summary in summaries:
        assert summary.account_id == world.acct["id"]
        # Tower's users have no created field: the JWT's iat says when it was issued
        assert summary.issued_at is not None
        assert started - 120 <= summary.issued_at <= time.time() + 5
    everything = await client.list_users(world.acct["id"])
    assert len(everything) == 3 + 5
    underscored = await client.list_user_names(world.acct["id"], name_prefix="c1_ns1")
    assert underscored == {}  # "_" is a literal there, not a one-character wildcard


async def test_find_users_asks_40_names_per_request_and_only_this_account(
    world: World, client: TowerClient, faults: FaultTransport
) -> None:
    other = await world.tower.admin.create_account(world.key, "other")
    expected = {}
    for i in range(0, 100, 2):
        expected[f"user-{i}"] = (await world.user(f"user-{i}"))["id"]
    await world.user("user-1", account=other)
    names = [f"user-{i}" for i in range(100)] + ["user-0"]
    found = await client.find_users(world.acct["id"], names)
    assert {n: u.id for n, u in found.items()} == expected
    assert sent(faults)[f"GET {USERS}"] == 3  # 100 distinct names in chunks of 40


async def test_find_users_with_long_quoted_names_splits_within_the_limits(
    world: World, client: TowerClient, faults: FaultTransport
) -> None:
    names = [f"{i:02d}-" + 'it\'s "quoted" \\ ' * 30 for i in range(30)]  # ~500 chars each
    for name in names[::2]:
        await world.user(name)
    found = await client.find_users(world.acct["id"], names)
    assert sorted(found) == sorted(names[::2])
    # ~530 characters per comparison once quoted: at most 6 per 3,500-character filter
    assert sent(faults)[f"GET {USERS}"] >= 5


async def test_list_access_of_a_cluster(world: World, client: TowerClient) -> None:
    await world.link("team-b")
    await world.link("team-a", cluster="cluster-2")
    await world.link("team-c", cluster=CLUSTER + "x")
    mine = {(a.namespace, a.cluster) for a in await client.list_access(CLUSTER)}
    assert {("team-a", CLUSTER), ("team-b", CLUSTER)} <= mine
    assert all(cluster == CLUSTER for _, cluster in mine)
    one = await client.list_access("cluster-2", "team-a")
    assert [(a.account_id, a.namespace) for a in one if a.account_id == world.acct["id"]] == [
        (world.acct["id"], "team-a")
    ]


async def test_record_round_trip(world: World, client: TowerClient) -> None:
    created = await client.create_record(
        ACCESS, {"account": world.acct["id"], "cluster": "c", "namespace": "n"}
    )
    got = await client.get_record(ACCESS, created["id"], fields="id,namespace")
    assert got == {"id": created["id"], "namespace": "n"}
    updated = await client.update_record(ACCESS, created["id"], {"namespace": "m"})
    assert updated["namespace"] == "m"
    assert await client.delete_record(ACCESS, created["id"]) is True
    assert await client.delete_record(ACCESS, created["id"]) is False
    with pytest.raises(TowerNotFound):
        await client.get_record(ACCESS, created["id"])
    accounts = await client.list_records(ACCOUNTS, filter=f"operator = '{world.inst['id']}'")
    assert sorted(a["name"] for a in accounts) == ["SYS", "orders"]


# ------------------------------------------------------------------ token and readiness


async def test_token_works_only_with_the_right_token(
    client: TowerClient, wrong: TowerClient, world: World
) -> None:
    assert await client.token_works() is True
    assert await wrong.token_works() is False
    assert await wrong.token_works(TOKEN) is True  # an explicit token is used as given


async def test_readiness_follows_a_token_rotation_and_missing_installations(
    tmp_path: Path,
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    tower: TowerStandIn = await fresh_tower(tmp_path)
    try:
        async with TowerClient(tower.url, token_file.read_text) as c:
            # a Tower without installations: a right token cannot be told from a wrong one
            ready = TowerReadiness(c, [], interval=0)
            ok, why = await ready()
            assert not ok and "API token" in why
            inst = await tower.admin.create_installation(unique_url())
            assert await ready() == (True, "")
            ready_for_two = TowerReadiness(c, [inst["public_key"], "O" + "B" * 55], interval=0)
            ok, why = await ready_for_two()
            assert not ok and "O" + "B" * 55 in why and "does not exist" in why
            await tower.rotate_token("rotated-token")
            ok, why = await ready()
            assert not ok and "API token" in why
            with pytest.raises(TowerUnauthorized):
                await c.get_installation(inst["public_key"])
            token_file.write_text("rotated-token")  # the new token is read per request
            assert await ready() == (True, "")
            assert (await c.get_installation(inst["public_key"])).id == inst["id"]
    finally:
        await tower.stop()
