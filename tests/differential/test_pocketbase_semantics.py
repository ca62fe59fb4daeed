"""What PocketBase (serving NATS Tower's collections and rules) answers, and how we read it.

Each test sends raw HTTP requests (httpx, none of our client code) to a running stand-in,
the real PocketBase binary, and asserts what the server answered; then it puts our
client, or its parsing and filter helpers, in the same situation and asserts that it
reads the answer correctly. After a PocketBase upgrade, the failing raw assertions say
what changed on the server, the failing client assertions what that breaks for us.

Measured on PocketBase 0.39.8: a filter may be 3,500 UTF-8 *bytes* long and hold 200
comparisons; more is a 400.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from nats_tower_operator.tower import (
    AccountNotFound,
    FilterTooLong,
    FilterValueError,
    InstallationNotFound,
    InvalidRecordId,
    TowerBadRequest,
    TowerClient,
    TowerNotFound,
    TowerUnauthorized,
    UserSummary,
    and_,
    eq,
    or_,
    quote,
)
from nats_tower_operator.tower.filter import (
    MAX_COMPARISONS,
    MAX_FILTER_BYTES,
    any_of_chunks,
    check_limits,
)
from nats_tower_operator.tower.models import jwt_claims
from nats_tower_operator.towerserver.standin import TowerStandIn

pytestmark = pytest.mark.asyncio(loop_scope="module")

TOKEN = "differential-token-3"
WRONG = "wrong-token"
CLUSTER = "cluster-d"

OPERATORS = "nats_auth_operators"
ACCOUNTS = "nats_auth_accounts"
USERS = "nats_auth_users"
ROLES = "nats_auth_signing_keys"
ACCESS = "nats_auth_k8s_access"

NOT_FOUND = {"data": {}, "message": "The requested resource wasn't found.", "status": 404}
CREATE_FAILED = {"data": {}, "message": "Failed to create record.", "status": 400}
BAD_REQUEST = {
    "data": {},
    "message": "Something went wrong while processing your request.",
    "status": 400,
}

Record = dict[str, Any]


def records(collection: str, record_id: str = "") -> str:
    path = f"/api/collections/{collection}/records"
    return f"{path}/{record_id}" if record_id else path


def literal(value: str) -> str:
    """A single-quoted fexpr literal, written out here independently of our filter module."""
    return "'" + value.replace("'", "\\'") + "'"


def headers(token: str | None) -> dict[str, str]:
    return {"X-Token": token} if token is not None else {}


def unique_url() -> str:
    """A unique NATS URL that refuses at once (the stand-in's account pushes fail fast)."""
    a, b, c = secrets.token_bytes(3)
    return f"nats://127.{a}.{b}.{max(c, 1)}:1"


@dataclass
class World:
    """An installation with account ``orders`` (linked to CLUSTER/team-a) and user ``alice``."""

    tower: TowerStandIn
    http: httpx.AsyncClient
    inst: Record
    acct: Record
    user: Record

    async def create(self, collection: str, data: Record) -> Record:
        response = await self.http.post(records(collection), json=data, headers=headers(TOKEN))
        assert response.status_code == 200, response.text
        result: Record = response.json()
        return result

    async def create_user(self, name: str, account: Record | None = None) -> Record:
        return await self.create(USERS, {"account": (account or self.acct)["id"], "name": name})

    async def query(self, collection: str, expr: str, **params: Any) -> httpx.Response:
        return await self.http.get(
            records(collection), params={"filter": expr, **params}, headers=headers(TOKEN)
        )

    async def names(self, expr: str, collection: str = USERS) -> list[str]:
        response = await self.query(collection, expr, perPage=1000)
        assert response.status_code == 200, (expr[:100], response.text)
        return sorted(str(item["name"]) for item in response.json()["items"])

    def of_account(self, expr: str = "") -> str:
        mine = f"account = '{self.acct['id']}'"
        return f"{mine} && ({expr})" if expr else mine


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def tower(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TowerStandIn]:
    async with TowerStandIn.running(
        data_dir=tmp_path_factory.mktemp("tower"), token=TOKEN
    ) as standin:
        yield standin


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def http(tower: TowerStandIn) -> AsyncIterator[httpx.AsyncClient]:
    """A raw HTTP client of the stand-in; each request says which token (if any) it sends."""
    async with httpx.AsyncClient(base_url=tower.url, timeout=30) as client:
        yield client


async def make_world(tower: TowerStandIn, http: httpx.AsyncClient) -> World:
    created = await http.post(
        records(OPERATORS), json={"url": unique_url()}, headers=headers(TOKEN)
    )
    assert created.status_code == 200, created.text
    inst = created.json()
    acct = await tower.admin.create_account(inst["public_key"], "orders")
    await tower.admin.link(inst["public_key"], "orders", cluster=CLUSTER, namespace="team-a")
    world = World(tower=tower, http=http, inst=inst, acct=acct, user={})
    world.user = await world.create_user("alice")
    return world


@pytest_asyncio.fixture(loop_scope="module")
async def world(tower: TowerStandIn, http: httpx.AsyncClient) -> World:
    return await make_world(tower, http)


class Attempts(Counter[str]):
    """A :class:`RequestObserver` counting HTTP attempts as ``"METHOD collection"``."""

    def __call__(self, method: str, collection: str, status: int | None, seconds: float) -> None:
        self[f"{method} {collection}"] += 1


@pytest.fixture
def attempts() -> Attempts:
    """What ``client`` sent, through its ``observer`` (the seam metrics use)."""
    return Attempts()


@pytest_asyncio.fixture(loop_scope="module")
async def client(tower: TowerStandIn, attempts: Attempts) -> AsyncIterator[TowerClient]:
    async with TowerClient(tower.url, TOKEN, backoff_base=0.01, observer=attempts) as c:
        yield c


class Recording(httpx.AsyncBaseTransport):
    """The real transport, remembering every request's URL."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.urls: list[httpx.URL] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.urls.append(request.url)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


# =================================================================== authentication


@pytest.mark.parametrize("token", [None, WRONG], ids=["no-token", "wrong-token"])
async def test_without_the_token_lists_are_200_and_empty_never_401(
    world: World, tower: TowerStandIn, token: str | None
) -> None:
    for collection in (OPERATORS, ACCOUNTS, USERS, ACCESS):
        for params in ({}, {"filter": "id != ''"}):
            response = await world.http.get(
                records(collection), params=params, headers=headers(token)
            )
            assert response.status_code == 200
            assert response.json() == {
                "items": [],
                "page": 1,
                "perPage": 30,
                "totalItems": 0,
                "totalPages": 0,
            }
    # our client: the token sees no installation, and a listing is just empty
    async with TowerClient(tower.url, token or "") as c:
        assert await c.token_works() is False
        assert await c.list_records(USERS) == []


@pytest.mark.parametrize("token", [None, WRONG], ids=["no-token", "wrong-token"])
async def test_without_the_token_view_patch_and_delete_are_404(
    world: World, tower: TowerStandIn, token: str | None
) -> None:
    path = records(USERS, world.user["id"])
    calls: list[tuple[str, dict[str, Any]]] = [
        ("GET", {}),
        ("PATCH", {"json": {"description": "x"}}),
        ("DELETE", {}),
    ]
    for method, kwargs in calls:
        response = await world.http.request(method, path, headers=headers(token), **kwargs)
        assert (response.status_code, response.json()) == (404, NOT_FOUND), method
    still = await world.http.get(path, headers=headers(TOKEN))
    assert still.status_code == 200 and still.json()["description"] == ""
    # our client: not "gone", not "already deleted": the token is wrong
    async with TowerClient(tower.url, token or "") as c:
        with pytest.raises(TowerUnauthorized):
            await c.get_user(world.user["id"])
        with pytest.raises(TowerUnauthorized):
            await c.delete_user(world.user["id"])
        with pytest.raises(TowerUnauthorized):
            await c.update_record(USERS, world.user["id"], {"description": "x"})
    assert (await world.http.get(path, headers=headers(TOKEN))).status_code == 200


@pytest.mark.parametrize("token", [None, WRONG], ids=["no-token", "wrong-token"])
async def test_without_the_token_a_create_is_400_with_empty_data(
    world: World, tower: TowerStandIn, token: str | None
) -> None:
    body = {"account": world.acct["id"], "name": "bob"}
    response = await world.http.post(records(USERS), json=body, headers=headers(token))
    assert (response.status_code, response.json()) == (400, CREATE_FAILED)
    async with TowerClient(tower.url, token or "") as c:
        with pytest.raises(TowerUnauthorized):
            await c.create_user(world.acct["id"], name="bob", description="", signing_key_id=None)
    assert await world.names(world.of_account()) == ["alice"]


async def test_client_turns_every_unproven_negative_answer_into_unauthorized(
    world: World, tower: TowerStandIn
) -> None:
    async with TowerClient(tower.url, WRONG) as c:
        calls: list[Callable[[], Awaitable[object]]] = [
            lambda: c.get_installation(world.inst["public_key"]),
            lambda: c.get_account(world.inst["id"], "orders"),
            lambda: c.has_access(world.acct["id"], CLUSTER, "team-a"),
            lambda: c.get_user(world.user["id"]),
            lambda: c.delete_user(world.user["id"]),
            lambda: c.find_role(world.acct["id"], "reader"),
            lambda: c.create_user(world.acct["id"], name="x", description="", signing_key_id=None),
        ]
        for call in calls:
            with pytest.raises(TowerUnauthorized):
                await call()


async def test_client_believes_negative_answers_once_the_token_is_proven(
    world: World, client: TowerClient
) -> None:
    gone = await world.create_user("gone")
    deleted = await world.http.delete(records(USERS, gone["id"]), headers=headers(TOKEN))
    assert deleted.status_code == 204 and not deleted.content
    with pytest.raises(InstallationNotFound):
        await client.get_installation("O" + "Z" * 55)
    with pytest.raises(AccountNotFound):
        await client.get_account(world.inst["id"], "billing")
    assert await client.has_access(world.acct["id"], CLUSTER, "team-b") is False
    assert await client.get_user(gone["id"]) is None
    assert await client.delete_user(gone["id"]) is False
    assert await client.find_role(world.acct["id"], "nobody") is None
    # Tower's hook refuses an unknown account with 400 and no field errors, like a wrong
    # token's create; the token is proven, so it stays a bad request
    raw = await world.http.post(
        records(USERS), json={"account": "zzzzzzzzzzzzzzz", "name": "x"}, headers=headers(TOKEN)
    )
    assert raw.status_code == 400 and raw.json()["data"] == {}
    with pytest.raises(TowerBadRequest) as info:
        await client.create_user("zzzzzzzzzzzzzzz", name="x", description="", signing_key_id=None)
    assert not isinstance(info.value, TowerUnauthorized)


async def test_a_tower_without_installations_cannot_tell_a_right_token_from_a_wrong_one(
    tmp_path: Path,
) -> None:
    async with TowerStandIn.running(data_dir=tmp_path / "empty", token=TOKEN) as empty:
        async with httpx.AsyncClient(base_url=empty.url) as raw:
            right = await raw.get(records(OPERATORS), headers=headers(TOKEN))
            wrong = await raw.get(records(OPERATORS), headers=headers(WRONG))
            assert right.json() == wrong.json()
            assert right.json()["items"] == []
        async with TowerClient(empty.url, TOKEN) as c:
            assert await c.token_works() is False
            with pytest.raises(TowerUnauthorized):
                await c.get_installation("O" + "A" * 55)


# =================================================================== errors


async def test_error_bodies_are_status_message_data(world: World, client: TowerClient) -> None:
    missing = await world.http.get(records(USERS, "zzzzzzzzzzzzzzz"), headers=headers(TOKEN))
    assert missing.json() == NOT_FOUND
    duplicate = await world.http.post(
        records(USERS), json={"account": world.acct["id"], "name": "alice"}, headers=headers(TOKEN)
    )
    answer = duplicate.json()
    assert set(answer) == {"status", "message", "data"} and answer["status"] == 400
    assert "code" not in answer
    for detail in answer["data"].values():
        assert {"code", "message"} <= set(detail)
    # our client: the server's message in the error, field codes in field_errors
    with pytest.raises(TowerNotFound, match="wasn't found"):
        await client.get_record(USERS, "zzzzzzzzzzzzzzz")
    with pytest.raises(TowerBadRequest, match="Failed to create record") as info:
        await client.create_user(
            world.acct["id"], name="alice", description="", signing_key_id=None
        )
    assert info.value.status == 400
    assert set(info.value.field_errors) == set(answer["data"])


# =================================================================== filters


QUOTED = [
    "it's",
    'say "hi"',
    "back\\slash",
    "a\\'b",
    "\\'",
    "''",
    "x\\\\y",
    "x' || name != '",
    "%",
    "é'ü",
]


async def test_single_quoted_literals_escape_only_the_single_quote(
    world: World, client: TowerClient
) -> None:
    for value in QUOTED:
        await world.create_user(value)
    for value in QUOTED:
        # only \' is an escape; every other backslash stays part of the value
        assert await world.names(world.of_account(f"name = {literal(value)}")) == [value], value
        assert quote(value) == literal(value)
    found = await client.find_users(world.acct["id"], [*QUOTED, "nobody"])
    assert sorted(found) == sorted(QUOTED)
    assert all(found[v].name == v for v in QUOTED)


async def test_double_quoted_literals_escape_only_the_double_quote(world: World) -> None:
    await world.create_user("it's")
    await world.create_user('say "hi"')
    assert await world.names(world.of_account('name = "it\'s"')) == ["it's"]
    assert await world.names(world.of_account('name = "say \\"hi\\""')) == ['say "hi"']
    assert await world.names(world.of_account('name = "it\\\'s"')) == []  # \' kept as is
    assert eq("name", 'say "hi"') == "name = 'say \"hi\"'"  # we always use single quotes


async def test_a_value_ending_in_a_backslash_is_a_400_and_never_sent_by_the_client(
    world: World, client: TowerClient, attempts: Attempts
) -> None:
    await world.create_user("a\\")
    for expr in (
        "name = 'a\\'",  # the quote is escaped: the literal never ends
        "name = 'a\\\\'",  # \\ is no escape: the same
        "(name = 'a\\')",
        "account = 'x' && (name = 'b' || name = 'a\\')",
    ):
        response = await world.query(USERS, expr)
        assert (response.status_code, response.json()) == (400, BAD_REQUEST), expr
    with pytest.raises(FilterValueError):
        quote("a\\")
    for call in (
        lambda: client.find_users(world.acct["id"], ["ok", "a\\"]),
        lambda: client.get_account(world.inst["id"], "a\\"),
        lambda: client.has_access(world.acct["id"], CLUSTER, "a\\"),
        lambda: client.find_role(world.acct["id"], "a\\"),
    ):
        with pytest.raises(FilterValueError):
            await call()
    assert attempts == {}


async def test_and_binds_tighter_than_or_and_our_builders_never_depend_on_it(
    world: World,
) -> None:
    for name in ("b", "c"):
        await world.create_user(name)
    a, b, c = (f"name = {literal(n)}" for n in ("alice", "b", "c"))
    # a || (b && c), not (a || b) && c: SQL precedence, not left to right
    assert await world.names(world.of_account(f"{a} || {b} && {c}")) == ["alice"]
    assert await world.names(world.of_account(f"({a} || {b}) && {c}")) == []
    assert await world.names(world.of_account(f"{c} && {b} || {a}")) == ["alice"]
    built = and_(eq("account", world.acct["id"]), or_(eq("name", "alice"), eq("name", "b")))
    assert await world.names(built) == ["alice", "b"]


async def test_like_is_a_case_insensitive_contains_unless_the_value_holds_a_percent(
    world: World,
) -> None:
    for name in ("c1/ns1/a", "C1/NS1/b", "xc1/ns1/c", "c1xns1/d", "p%1/ns/a", "p%1/ns/"):
        await world.create_user(name)
    contains = await world.names(world.of_account("name ~ 'c1/ns1/'"))
    assert contains == ["C1/NS1/b", "c1/ns1/a", "xc1/ns1/c"]  # contains, any case
    assert await world.names(world.of_account("name ~ 'c1_ns1'")) == []  # _ is literal
    # a value with % is used as the raw LIKE pattern: anchored at both ends
    assert await world.names(world.of_account("name ~ 'p%1/ns/'")) == ["p%1/ns/"]
    assert await world.names(world.of_account("name ~ 'p%1/ns/%'")) == ["p%1/ns/", "p%1/ns/a"]


async def test_our_prefix_listing_drops_what_like_matched_too_much(
    world: World, client: TowerClient
) -> None:
    for name in ("c1/ns1/a", "C1/NS1/b", "xc1/ns1/c", "c1/ns10/d"):
        await world.create_user(name)
    names = await client.list_user_names(world.acct["id"], name_prefix="c1/ns1/")
    assert sorted(names) == ["c1/ns1/a"]


async def test_our_prefix_listing_with_a_percent_in_the_prefix_finds_every_user(
    world: World, client: TowerClient
) -> None:
    for name in ("p%1/ns/a", "p%1/ns/b"):
        await world.create_user(name)
    assert sorted(await client.list_user_names(world.acct["id"], name_prefix="p%1/ns/")) == [
        "p%1/ns/a",
        "p%1/ns/b",
    ]
    summaries = await client.list_users(world.acct["id"], name_prefix="p%1/ns/")
    assert sorted(s.name for s in summaries) == ["p%1/ns/a", "p%1/ns/b"]


# =================================================================== limits


async def _accepted(world: World, expr: str) -> bool:
    """Whether the server accepts ``expr`` (probes match a record: an empty answer to a
    filter can be throttled, see the last test)."""
    response = await world.query(USERS, expr, perPage=1)
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert response.json() == BAD_REQUEST
    return response.status_code == 200


async def _largest_accepted(world: World, make: Callable[[int], str], low: int, high: int) -> int:
    """The largest n in [low, high) whose filter ``make(n)`` the server accepts."""
    assert await _accepted(world, make(low)) and not await _accepted(world, make(high))
    while high - low > 1:
        middle = (low + high) // 2
        if await _accepted(world, make(middle)):
            low = middle
        else:
            high = middle
    return low


def _sized(n: int, char: str = "x") -> str:
    """``name != '...'`` of n characters (ASCII) or with n copies of ``char``."""
    return "name != '" + char * (n - 10 if char == "x" else n) + "'"


async def test_filter_length_limit_is_3500_bytes(world: World) -> None:
    limit = await _largest_accepted(world, _sized, 100, 20_000)
    assert limit == 3500, f"PocketBase's filter length limit is now {limit}"
    assert len(_sized(limit)) == limit
    # our client never builds a longer one
    assert limit >= MAX_FILTER_BYTES
    assert check_limits(_sized(limit)) == _sized(limit)
    with pytest.raises(FilterTooLong):
        check_limits(_sized(limit + 1))


async def test_filter_length_limit_counts_utf8_bytes_not_characters(world: World) -> None:
    most = await _largest_accepted(world, lambda n: _sized(n, "é"), 10, 5_000)
    accepted, refused = _sized(most, "é"), _sized(most + 1, "é")
    assert len(accepted.encode()) <= 3500 < len(refused.encode())
    assert len(refused) < 3500  # far fewer characters than the limit


async def test_client_refuses_a_non_ascii_filter_the_server_refuses(world: World) -> None:
    expr = _sized(1800, "é")
    assert not await _accepted(world, expr)
    with pytest.raises(FilterTooLong):
        check_limits(expr)


async def test_comparison_limit_is_200(world: World) -> None:
    def ors(k: int) -> str:
        return " || ".join(["name != 'x'"] * k)

    def grouped(k: int) -> str:  # parentheses are not comparisons
        return "id != '' && (" + " || ".join(["(name != 'x')"] * (k - 1)) + ")"

    limit = await _largest_accepted(world, ors, 1, 300)
    assert limit == 200, f"PocketBase's comparison limit is now {limit}"
    assert await _largest_accepted(world, grouped, 2, 300) == 200
    for op, value in (("=", "alice"), ("~", "LIC"), ("!~", "x")):
        assert await _accepted(world, "&&".join([f"name{op}'{value}'"] * 200)), op
        assert not await _accepted(world, "&&".join([f"name{op}'{value}'"] * 201)), op
    assert limit >= MAX_COMPARISONS
    assert check_limits(ors(limit)) == ors(limit)
    with pytest.raises(FilterTooLong):
        check_limits(ors(limit + 1))


async def test_any_of_chunks_for_100_long_names_yields_only_filters_the_server_accepts(
    world: World, client: TowerClient
) -> None:
    names = [f"{i:03d}-" + ('it\'s "q" \\ ' * 60)[: 300 + 3 * i] + "!" for i in range(100)]
    for name in names[::3]:
        await world.create_user(name)
    base = eq("account", world.acct["id"])
    chunks = list(any_of_chunks(base, "name", names))
    assert [n for _, chunk in chunks for n in chunk] == names
    found: list[str] = []
    for expr, _ in chunks:
        response = await world.query(USERS, expr, perPage=1000)
        assert response.status_code == 200, (len(expr), response.text)
        found += [item["name"] for item in response.json()["items"]]
    assert sorted(found) == sorted(names[::3])
    users = await client.find_users(world.acct["id"], names)
    assert sorted(users) == sorted(names[::3])


async def test_find_users_with_long_non_ascii_names_stays_within_the_limit(
    world: World, client: TowerClient
) -> None:
    names = [f"{i:03d}-" + "é" * 400 for i in range(20)]
    await world.create_user(names[0])
    assert list(await client.find_users(world.acct["id"], names)) == [names[0]]


# =================================================================== pagination


async def test_per_page_is_capped_at_1000(world: World, client: TowerClient) -> None:
    response = await world.query(USERS, world.of_account(), perPage=5000)
    assert response.json()["perPage"] == 1000
    assert response.json()["totalItems"] == 1
    assert len(await client.list_records(USERS, per_page=5000, filter=world.of_account())) == 1


async def test_skip_total_answers_minus_one_totals(world: World, client: TowerClient) -> None:
    response = await world.query(USERS, world.of_account(), skipTotal=1)
    answer = response.json()
    assert (answer["totalItems"], answer["totalPages"]) == (-1, -1)
    assert len(answer["items"]) == 1
    fields = await world.http.get(
        records(OPERATORS),
        params={"perPage": 1, "skipTotal": 1, "fields": "id"},
        headers=headers(TOKEN),
    )
    assert [set(item) for item in fields.json()["items"]] == [{"id"}]
    # our token proof asks for exactly that, and reads it
    assert await client.token_works() is True


async def test_list_records_all_pages_returns_every_record_exactly_once(
    world: World, client: TowerClient, attempts: Attempts
) -> None:
    for i in range(24):
        await world.create(
            ACCESS, {"account": world.acct["id"], "cluster": "p", "namespace": f"{i}"}
        )
    mine = f"account = '{world.acct['id']}' && cluster = 'p'"
    pages = []
    for page in range(1, 6):
        response = await world.query(ACCESS, mine, perPage=7, page=page)
        answer = response.json()
        assert (answer["totalItems"], answer["totalPages"]) == (24, 4)
        pages.append([item["id"] for item in answer["items"]])
    assert [len(p) for p in pages] == [7, 7, 7, 3, 0]
    assert len({i for p in pages for i in p}) == 24
    listed = await client.list_records(ACCESS, filter=mine, per_page=7, all_pages=True)
    assert sorted(r["id"] for r in listed) == sorted(i for p in pages for i in p)
    assert attempts[f"GET {ACCESS}"] == 4
    links = await client.list_access("p")
    assert len([a for a in links if a.account_id == world.acct["id"]]) == 24


# =================================================================== unique violations


@pytest.mark.parametrize(
    ("collection", "fields"),
    [
        (USERS, {"account", "name"}),
        (ACCESS, {"account", "cluster", "namespace"}),
        (ROLES, {"account", "role"}),
        (ACCOUNTS, {"name", "operator"}),
        (OPERATORS, {"url"}),
    ],
)
async def test_a_unique_violation_names_every_field_of_the_index(
    world: World, client: TowerClient, attempts: Attempts, collection: str, fields: set[str]
) -> None:
    data = {
        USERS: {"account": world.acct["id"], "name": "alice"},
        ACCESS: {"account": world.acct["id"], "cluster": CLUSTER, "namespace": "team-a"},
        ROLES: {"account": world.acct["id"], "role": "dup", "publish": ["a"]},
        ACCOUNTS: {"operator": world.inst["id"], "name": "orders"},
        OPERATORS: {"url": world.inst["url"]},
    }[collection]
    if collection == ROLES:
        await world.create(ROLES, data)
    response = await world.http.post(records(collection), json=data, headers=headers(TOKEN))
    assert response.status_code == 400
    answer = response.json()
    assert answer["message"] == "Failed to create record."
    assert {k: v["code"] for k, v in answer["data"].items()} == dict.fromkeys(
        fields, "validation_not_unique"
    )
    with pytest.raises(TowerBadRequest) as info:
        await client.create_record(collection, data)
    assert info.value.not_unique
    assert info.value.field_errors == dict.fromkeys(fields, "validation_not_unique")
    assert attempts[f"GET {OPERATORS}"] == 0  # field errors need no token proof


async def test_other_validation_errors_are_not_unique_violations(
    world: World, client: TowerClient
) -> None:
    body = {"account": world.acct["id"], "name": "long", "description": "d" * 5001}
    response = await world.http.post(records(USERS), json=body, headers=headers(TOKEN))
    assert response.status_code == 400
    assert response.json()["data"]["description"]["code"] == "validation_max_text_constraint"
    with pytest.raises(TowerBadRequest) as info:
        await client.create_user(
            world.acct["id"], name="long", description="d" * 5001, signing_key_id=None
        )
    assert not info.value.not_unique


# =================================================================== cascades


async def test_deleting_an_account_deletes_its_users_roles_and_links(
    world: World, client: TowerClient
) -> None:
    role = await world.create(ROLES, {"account": world.acct["id"], "role": "r", "publish": ["a"]})
    signed = await world.create(
        USERS, {"account": world.acct["id"], "name": "signed", "signing_key": role["id"]}
    )
    deleted = await world.http.delete(records(ACCOUNTS, world.acct["id"]), headers=headers(TOKEN))
    assert deleted.status_code == 204
    for collection in (USERS, ROLES, ACCESS):
        assert (await world.query(collection, world.of_account())).json()["items"] == []
    for user in (world.user, signed):
        gone = await world.http.get(records(USERS, user["id"]), headers=headers(TOKEN))
        assert gone.status_code == 404
    # our client: the user is gone (proven), the account and its link too
    assert await client.get_user(world.user["id"]) is None
    assert await client.has_access(world.acct["id"], CLUSTER, "team-a") is False
    with pytest.raises(AccountNotFound):
        await client.get_account(world.inst["id"], "orders")


async def test_deleting_an_installation_deletes_its_accounts(
    world: World, tower: TowerStandIn, client: TowerClient
) -> None:
    keeper = await make_world(tower, world.http)  # the token stays provable
    mine = f"operator = '{world.inst['id']}'"
    assert await world.names(mine, ACCOUNTS) == ["SYS", "orders"]
    deleted = await world.http.delete(records(OPERATORS, world.inst["id"]), headers=headers(TOKEN))
    assert deleted.status_code == 204
    assert await world.names(mine, ACCOUNTS) == []
    assert await world.names(world.of_account()) == []
    with pytest.raises(InstallationNotFound):
        await client.get_installation(world.inst["public_key"])
    assert (await client.get_installation(keeper.inst["public_key"])).id == keeper.inst["id"]


# =================================================================== the SYS account


async def test_the_sys_account_is_hidden_by_the_rule_yet_visible_with_the_x_token(
    world: World, client: TowerClient
) -> None:
    email = f"{secrets.token_hex(4)}@example.com"
    password = secrets.token_hex(8)
    signup = await world.http.post(
        records("users"), json={"email": email, "password": password, "passwordConfirm": password}
    )
    assert signup.status_code == 200, signup.text
    auth = await world.http.post(
        "/api/collections/users/auth-with-password",
        json={"identity": email, "password": password},
    )
    bearer = {"Authorization": auth.json()["token"]}
    mine = {"filter": f"operator = '{world.inst['id']}'"}
    as_user = await world.http.get(records(ACCOUNTS), params=mine, headers=bearer)
    assert [a["name"] for a in as_user.json()["items"]] == ["orders"]
    as_token = await world.query(ACCOUNTS, mine["filter"])
    assert sorted(a["name"] for a in as_token.json()["items"]) == ["SYS", "orders"]
    sys_account = await client.get_account(world.inst["id"], "SYS")
    assert sys_account.name == "SYS" and sys_account.public_key.startswith("A")


# =================================================================== no created field


async def test_there_is_no_created_field_so_sorting_by_it_is_a_400(
    world: World, client: TowerClient
) -> None:
    response = await world.query(USERS, world.of_account(), sort="-created")
    assert (response.status_code, response.json()) == (400, BAD_REQUEST)
    assert (await world.query(USERS, "created != ''")).status_code == 400
    assert (await world.query(USERS, world.of_account(), sort="-name")).status_code == 200
    view = await world.http.get(records(USERS, world.user["id"]), headers=headers(TOKEN))
    assert "created" not in view.json() and "updated" not in view.json()
    with pytest.raises(TowerBadRequest):
        await client.list_records(USERS, sort="-created")


async def test_a_created_user_carries_creds_and_a_jwt_whose_iat_says_when(
    world: World, client: TowerClient
) -> None:
    before = time.time()
    response = await world.http.post(
        records(USERS), json={"account": world.acct["id"], "name": "carol"}, headers=headers(TOKEN)
    )
    after = time.time()
    created = response.json()
    assert created["creds"].startswith("-----BEGIN NATS USER JWT-----\n" + created["jwt"])
    payload = created["jwt"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["sub"] == created["public_key"] and "exp" not in claims
    assert int(before) - 1 <= claims["iat"] <= after + 1
    # our client: the same claims, and the listing's issue time is the iat
    assert jwt_claims(created["jwt"]) == claims
    summaries = await client.list_users(world.acct["id"], name_prefix="carol")
    assert summaries == [
        UserSummary(
            id=created["id"],
            account_id=world.acct["id"],
            name="carol",
            issued_at=float(claims["iat"]),
        )
    ]


# =================================================================== record ids in paths


async def test_a_record_id_like_dotdot_leaves_the_records_api_and_our_client_refuses_it(
    world: World, client: TowerClient, attempts: Attempts
) -> None:
    # httpx (like any URL library) resolves dot segments: ".." is another endpoint
    up = await world.http.get(records(USERS, ".."), headers=headers(TOKEN))
    assert up.request.url.path == f"/api/collections/{USERS}"
    assert up.status_code == 401  # the collection's schema API, for superusers only
    across = await world.http.get(
        records(USERS, "../../nats_auth_operators/records"), headers=headers(TOKEN)
    )
    assert across.request.url.path == records(OPERATORS)
    assert across.status_code == 200 and "seed" in across.json()["items"][0]  # not a user!
    for bad in ("..", "../../nats_auth_operators/records", "%2e%2e", "Alice", ""):
        with pytest.raises(InvalidRecordId):
            await client.get_record(USERS, bad)
        with pytest.raises(InvalidRecordId):
            await client.delete_user(bad)
        with pytest.raises(InvalidRecordId):
            await client.get_user(bad)
    assert attempts == {}


# =================================================================== throttling


async def test_empty_filtered_lists_are_throttled_but_our_token_proof_is_not_filtered(
    world: World, tower: TowerStandIn
) -> None:
    """PocketBase delays an empty, filtered list by a random 0-500 ms once a client made
    more than 3 of them within 3 s on a collection (against filter timing attacks).
    Negative lookups pay that; the token proof lists without a filter and never does."""
    seconds = []
    for i in range(10):
        started = time.monotonic()
        response = await world.query(ROLES, f"role = 'none-{i}'")
        seconds.append(time.monotonic() - started)
        assert response.json()["items"] == []
    assert max(seconds[4:]) >= 0.05  # all six under 50 ms: chance 1e-6 if throttled
    recording = Recording()
    async with TowerClient(tower.url, TOKEN, transport=recording) as c:
        assert await c.token_works()
        with pytest.raises(InstallationNotFound):
            await c.get_installation("O" + "Q" * 55)
    lookup, proof = recording.urls[-2:]
    assert "filter" in lookup.params
    assert "filter" not in proof.params and proof.params["perPage"] == "1"
