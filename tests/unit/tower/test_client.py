"""TowerClient: retries and backoff, error translation, parsing, paging, domain requests."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from nats_tower_operator.tower import (
    AccountNotFound,
    InstallationNotFound,
    TowerBadRequest,
    TowerBadResponse,
    TowerClient,
    TowerError,
    TowerNotFound,
    TowerUnauthorized,
    TowerUnavailable,
)

from .fakepb import TOKEN, FakeTower, parse, pb_error

USERS = "nats_auth_users"


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the client's backoff sleeps instead of waiting (asyncio.sleep is a library call)."""
    recorded: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(delay: float, result: Any = None) -> Any:
        recorded.append(delay)
        return await real_sleep(0, result)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    return recorded


def seeded(fake: FakeTower) -> tuple[dict[str, Any], dict[str, Any]]:
    inst = fake.add_installation()
    acct = fake.add_account(inst["id"], "orders")
    return inst, acct


# ------------------------------------------------------------------ retries


async def test_retries_500_then_succeeds(fake: FakeTower, client: TowerClient) -> None:
    inst, _ = seeded(fake)
    fake.fail(pb_error(500, "boom"), method="GET", times=3)
    found = await client.get_installation(inst["public_key"])
    assert found.id == inst["id"]
    assert client.stats["GET nats_auth_operators"] == 4
    assert fake.count("GET", "nats_auth_operators") == 4


async def test_gives_up_after_max_retries(fake: FakeTower, client: TowerClient) -> None:
    seeded(fake)
    fake.fail(pb_error(503, "down"), times=100)
    with pytest.raises(TowerUnavailable) as info:
        await client.get_installation("OXYZ")
    assert info.value.status == 503
    assert info.value.retryable
    assert client.stats["GET nats_auth_operators"] == 5  # 1 + max_retries(4)


async def test_backoff_is_capped_full_jitter(fake: FakeTower, sleeps: list[float]) -> None:
    fake.fail(pb_error(500, "boom"), times=1000)
    async with TowerClient(
        "http://tower.test",
        TOKEN,
        max_retries=8,
        backoff_base=0.01,
        backoff_cap=0.05,
        transport=fake.transport(),
    ) as c:
        for _ in range(20):
            with pytest.raises(TowerUnavailable):
                await c.list_records(USERS)
    assert len(sleeps) == 20 * 8
    for i, delay in enumerate(sleeps):
        attempt = i % 8
        assert 0.0 <= delay <= min(0.05, 0.01 * 2**attempt)
    late = [d for i, d in enumerate(sleeps) if i % 8 >= 3]
    assert len(set(late)) > 1  # jittered, not a fixed delay
    assert max(late) > 0.025  # and the cap (not the base) bounds the late attempts


async def test_timeouts_are_retried_for_get(fake: FakeTower, client: TowerClient) -> None:
    inst, _ = seeded(fake)
    fake.fail(httpx.ReadTimeout("slow"), method="GET", times=2)
    assert (await client.get_installation(inst["public_key"])).id == inst["id"]
    assert client.stats["GET nats_auth_operators"] == 3


async def test_connect_errors_exhaust_into_unavailable(
    fake: FakeTower, client: TowerClient
) -> None:
    fake.fail(httpx.ConnectError("refused"), times=100)
    with pytest.raises(TowerUnavailable, match="ConnectError") as info:
        await client.list_records(USERS)
    assert info.value.status is None
    assert isinstance(info.value.__cause__, httpx.ConnectError)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
async def test_no_retry_on_4xx(fake: FakeTower, client: TowerClient, status: int) -> None:
    fake.fail(pb_error(status, "nope"), times=10)
    with pytest.raises(TowerError) as info:
        await client.get_record(USERS, "abc")
    assert not isinstance(info.value, TowerUnavailable)
    assert info.value.status == status
    assert client.stats[f"GET {USERS}"] == 1


async def test_retry_after_is_honoured(fake: FakeTower) -> None:
    seeded(fake)
    fake.fail(httpx.Response(429, headers={"Retry-After": "0.3"}, json={}), times=1)
    async with TowerClient(
        "http://tower.test",
        TOKEN,
        backoff_base=0.001,
        backoff_cap=0.001,
        transport=fake.transport(),
    ) as c:
        started = time.monotonic()
        await c.list_records(USERS)
        elapsed = time.monotonic() - started
    assert elapsed >= 0.29
    assert fake.count("GET", USERS) == 2


async def test_retry_after_http_date_and_cap(
    fake: FakeTower, client: TowerClient, sleeps: list[float]
) -> None:
    fake.fail(
        httpx.Response(503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}), times=1
    )
    fake.fail(httpx.Response(429, headers={"Retry-After": "3600"}), times=1)
    fake.fail(httpx.Response(429, headers={"Retry-After": "soon"}), times=1)
    await client.list_records(USERS)
    assert sleeps[0] == 0.0  # a date in the past: no wait
    assert sleeps[1] == 60.0  # capped
    assert 0.0 <= sleeps[2] <= 0.004  # unparseable: normal backoff


async def test_post_not_retried_after_it_may_have_been_processed(
    fake: FakeTower, client: TowerClient
) -> None:
    _, acct = seeded(fake)
    # the server creates the user, then the answer is lost
    fake.fail(httpx.ReadTimeout("lost"), method="POST", after=True)
    with pytest.raises(TowerUnavailable):
        await client.create_user(acct["id"], name="u", description="", signing_key_id=None)
    assert client.stats[f"POST {USERS}"] == 1
    assert len(fake.items(USERS)) == 1
    # a 500 on POST is not retried either
    fake.fail(pb_error(500, "boom"), method="POST")
    with pytest.raises(TowerUnavailable):
        await client.create_user(acct["id"], name="v", description="", signing_key_id=None)
    assert client.stats[f"POST {USERS}"] == 2


async def test_post_retried_when_connection_never_established(
    fake: FakeTower, client: TowerClient
) -> None:
    _, acct = seeded(fake)
    fake.fail(httpx.ConnectError("refused"), method="POST", times=2)
    user = await client.create_user(acct["id"], name="u", description="d", signing_key_id=None)
    assert user.name == "u"
    assert client.stats[f"POST {USERS}"] == 3
    assert len(fake.items(USERS)) == 1


async def test_post_retried_when_caller_marks_it_safe(fake: FakeTower, client: TowerClient) -> None:
    _, acct = seeded(fake)
    fake.fail(httpx.ReadTimeout("lost"), method="POST", after=True)
    # the retry reaches a server that already has the user: it says "not unique"
    with pytest.raises(TowerBadRequest) as info:
        await client.create_user(
            acct["id"], name="u", description="", signing_key_id=None, retry_safe=True
        )
    assert info.value.not_unique
    assert info.value.field_errors == {"name": "validation_not_unique"}
    assert client.stats[f"POST {USERS}"] == 2
    assert len(fake.items(USERS)) == 1


# ------------------------------------------------------------------ errors


async def test_wrong_token_is_unauthorized_without_leaking_it(fake: FakeTower) -> None:
    async with TowerClient("http://tower.test", "wrong-token-123", transport=fake.transport()) as c:
        with pytest.raises(TowerUnauthorized) as info:
            await c.list_records(USERS)
    assert info.value.status == 401
    assert "wrong-token-123" not in str(info.value)
    assert c.stats[f"GET {USERS}"] == 1


async def test_error_messages_never_contain_token_or_secrets(
    fake: FakeTower, client: TowerClient
) -> None:
    secret_seed = "SUAIBDPBAUTWCWBKIO6XHQNINK5FWJW4OHLXC3HQ2KFE4PEJUA44CNHTAM"
    jwt = "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJVIn0.c2ln"
    echo = f"token {TOKEN} rejected; seed {secret_seed} jwt {jwt}"
    for status in (400, 401, 403, 404, 418, 500):
        fake.faults.clear()
        fake.fail(
            pb_error(status, echo, {"name": {"code": "validation_x", "message": echo}}), times=10
        )
        with pytest.raises(TowerError) as info:
            await client.list_records(USERS)
        text = str(info.value) + repr(info.value)
        assert TOKEN not in text and secret_seed not in text and jwt not in text
        assert str(status) in text


async def test_token_callable_is_read_per_request(fake: FakeTower) -> None:
    tokens = iter(["old-token", TOKEN + "\n"])
    async with TowerClient(
        "http://tower.test", lambda: next(tokens), transport=fake.transport()
    ) as c:
        with pytest.raises(TowerUnauthorized):
            await c.list_records(USERS)
        assert await c.list_records(USERS) == []  # rotated token (trailing newline stripped)


async def test_unreadable_token_file(fake: FakeTower) -> None:
    def read() -> str:
        raise FileNotFoundError(2, "No such file", "/var/run/token")

    async with TowerClient("http://tower.test", read, transport=fake.transport()) as c:
        with pytest.raises(TowerUnauthorized, match="token"):
            await c.list_records(USERS)


def test_base_url_must_be_http() -> None:
    for bad in ("tower:8090", "ftp://x", "/relative"):
        with pytest.raises(ValueError):
            TowerClient(bad, TOKEN)


# ------------------------------------------------------------------ bad answers


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, content=b"<html>proxy</html>"),
        httpx.Response(200, content=b"\xff\xfe"),
        httpx.Response(200, json=[1, 2]),
        httpx.Response(200, json={"page": 1}),
        httpx.Response(200, json={"items": [1, "x"]}),
        httpx.Response(200, json={"items": None}),
    ],
)
async def test_bad_list_answers(
    fake: FakeTower, client: TowerClient, response: httpx.Response
) -> None:
    fake.fail(response)
    with pytest.raises(TowerBadResponse):
        await client.get_installation("OABC")


async def test_records_missing_fields_are_bad_responses(
    fake: FakeTower, client: TowerClient
) -> None:
    fake.fail(httpx.Response(200, json={"items": [{"id": "u1", "account": "a1"}], "totalPages": 1}))
    with pytest.raises(TowerBadResponse, match="nats_auth_users"):
        await client.find_users("a1", ["x"])
    fake.fail(httpx.Response(200, json={"id": "u1"}))
    with pytest.raises(TowerBadResponse):
        await client.get_user("u1")
    fake.fail(httpx.Response(200, content=b"not json"), method="POST")
    with pytest.raises(TowerBadResponse):
        await client.create_user("a1", name="x", description="", signing_key_id=None)


async def test_records_not_matching_the_filter_are_ignored(
    fake: FakeTower, client: TowerClient
) -> None:
    """A server that ignores the filter can never hand back another account's records."""
    _, acct = seeded(fake)
    other = fake.add_account(acct["operator"], "other")
    fake.add_user(other["id"], "app")
    everything = {"items": fake.items(USERS), "totalPages": 1}
    fake.fail(httpx.Response(200, json=everything))
    assert await client.find_users(acct["id"], ["app"]) == {}
    fake.fail(
        httpx.Response(200, json={"items": fake.items("nats_auth_accounts"), "totalPages": 1})
    )
    with pytest.raises(AccountNotFound):
        await client.get_account(acct["operator"], "missing")


# ------------------------------------------------------------------ records and paging


async def test_paging_follows_all_pages(fake: FakeTower, client: TowerClient) -> None:
    for i in range(25):
        fake.add(USERS, account="a1", name=f"n{i:02d}")
    one = await client.list_records(USERS, per_page=10)
    assert [r["name"] for r in one] == [f"n{i:02d}" for i in range(10)]
    page3 = await client.list_records(USERS, per_page=10, page=3)
    assert [r["name"] for r in page3] == [f"n{i:02d}" for i in range(20, 25)]
    everything = await client.list_records(USERS, per_page=10, all_pages=True)
    assert [r["name"] for r in everything] == [f"n{i:02d}" for i in range(25)]
    assert [s.params["page"] for s in fake.seen[-3:]] == ["1", "2", "3"]


async def test_paging_without_total_pages_stops_on_short_page(
    fake: FakeTower, client: TowerClient
) -> None:
    pages = [
        {"items": [{"id": "1"}, {"id": "2"}]},
        {"items": [{"id": "2"}, {"id": "3"}]},  # "2" shifted onto this page
        {"items": [{"id": "4"}]},
    ]
    for page in pages:
        fake.fail(httpx.Response(200, json=page))
    records = await client.list_records(USERS, per_page=2, all_pages=True)
    assert [r["id"] for r in records] == ["1", "2", "3", "4"]
    assert client.stats[f"GET {USERS}"] == 3


async def test_crud_round_trip(fake: FakeTower, client: TowerClient) -> None:
    created = await client.create_record(
        "nats_auth_k8s_access", {"account": "a", "cluster": "c", "namespace": "n"}
    )
    got = await client.get_record("nats_auth_k8s_access", created["id"], fields="id,namespace")
    assert got == {"id": created["id"], "namespace": "n"}
    updated = await client.update_record("nats_auth_k8s_access", created["id"], {"namespace": "m"})
    assert updated["namespace"] == "m"
    assert await client.delete_record("nats_auth_k8s_access", created["id"]) is True
    assert await client.delete_record("nats_auth_k8s_access", created["id"]) is False
    with pytest.raises(TowerNotFound):
        await client.get_record("nats_auth_k8s_access", created["id"])
    assert client.stats == {
        "POST nats_auth_k8s_access": 1,
        "GET nats_auth_k8s_access": 2,
        "PATCH nats_auth_k8s_access": 1,
        "DELETE nats_auth_k8s_access": 2,
    }


async def test_record_ids_are_path_escaped(fake: FakeTower, client: TowerClient) -> None:
    assert await client.get_user("../../operators/x?y=1") is None
    assert fake.seen[-1].collection == USERS
    with pytest.raises(ValueError):
        await client.get_record(USERS, "")
    with pytest.raises(ValueError):
        await client.list_records("users/../x")


# ------------------------------------------------------------------ domain methods


async def test_domain_lookups_send_escaped_filters(fake: FakeTower, client: TowerClient) -> None:
    inst, acct = seeded(fake)
    assert (await client.get_installation(inst["public_key"])).urls == (
        "nats://a:4222",
        "nats://b:4222",
    )
    assert fake.seen[-1].params["filter"] == f"public_key = '{inst['public_key']}'"
    assert "sign_seed" not in fake.seen[-1].params["fields"]
    with pytest.raises(InstallationNotFound):
        await client.get_installation("O' || public_key != '")
    assert fake.seen[-1].params["filter"] == "public_key = 'O\\' || public_key != \\''"

    account = await client.get_account(inst["id"], "orders")
    assert account.id == acct["id"] and account.installation_id == inst["id"]
    assert fake.seen[-1].params["filter"] == f"operator = '{inst['id']}' && name = 'orders'"
    with pytest.raises(AccountNotFound):
        await client.get_account(inst["id"], "orders' || name != '")


async def test_access_checks(fake: FakeTower, client: TowerClient) -> None:
    _, acct = seeded(fake)
    fake.add_access(acct["id"], "c1", "team-a")
    fake.add_access(acct["id"], "c1", "team-b")
    fake.add_access(acct["id"], "c2", "team-a")
    assert await client.has_access(acct["id"], "c1", "team-a")
    assert fake.seen[-1].params["filter"] == (
        f"account = '{acct['id']}' && cluster = 'c1' && namespace = 'team-a'"
    )
    assert not await client.has_access(acct["id"], "c1", "team-c")
    assert not await client.has_access(acct["id"], "c1", "x' || namespace != '")
    assert {a.namespace for a in await client.list_access("c1")} == {"team-a", "team-b"}
    assert [a.cluster for a in await client.list_access("c2", "team-a")] == ["c2"]


async def test_find_users_one_request_per_40_names(fake: FakeTower, client: TowerClient) -> None:
    _, acct = seeded(fake)
    other = fake.add_account(acct["operator"], "other")
    for i in range(0, 100, 2):
        fake.add_user(acct["id"], f"user-{i}")
    fake.add_user(other["id"], "user-1")
    names = [f"user-{i}" for i in range(100)] + ["user-0"]
    found = await client.find_users(acct["id"], names)
    assert sorted(found) == sorted(f"user-{i}" for i in range(0, 100, 2))
    assert client.stats[f"GET {USERS}"] == 3  # 100 distinct names, chunks of 40
    first = fake.seen[-3].params["filter"]
    assert first.startswith(f"account = '{acct['id']}' && (name = 'user-0' || name = 'user-1' ||")
    node = parse(first)
    assert node[0] == "and" and node[2][0] == "or"


async def test_users_roles_create_get_delete(fake: FakeTower, client: TowerClient) -> None:
    _, acct = seeded(fake)
    assert await client.find_role(acct["id"], "reader") is None
    role = await client.create_role(acct["id"], role="reader", publish=[], subscribe=["orders.>"])
    assert role.subscribe == ("orders.>",)
    assert (await client.find_role(acct["id"], "reader")) == role
    user = await client.create_user(
        acct["id"], name="ns-app", description="d", signing_key_id=role.id
    )
    assert user.signing_key_id == role.id and user.creds.startswith("-----BEGIN NATS USER JWT")
    assert fake.seen[-1].body == {
        "account": acct["id"],
        "name": "ns-app",
        "description": "d",
        "signing_key": role.id,
    }
    assert await client.get_user(user.id) == user
    assert await client.delete_user(user.id) is True
    assert await client.get_user(user.id) is None
    assert await client.delete_user(user.id) is False


async def test_list_users_by_prefix(fake: FakeTower, client: TowerClient) -> None:
    _, acct = seeded(fake)
    for name in ("ns1-a", "ns1-b", "xns1-c", "ns2-a", "NS1-upper"):
        fake.add_user(acct["id"], name)
    for i in range(250):
        fake.add_user(acct["id"], f"bulk-{i}")
    names = [u.name for u in await client.list_users(acct["id"], name_prefix="ns1-")]
    assert names == ["ns1-a", "ns1-b"]  # "~" also matched xns1-c and NS1-upper
    assert "name ~ 'ns1-'" in fake.seen[-1].params["filter"]
    assert len(await client.list_users(acct["id"])) == 255  # 2 pages of 200
    pct = await client.list_users(acct["id"], name_prefix="50%")
    assert pct == [] and "~" not in fake.seen[-1].params["filter"]


# ------------------------------------------------------------------ real sockets


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A TCP server that accepts connections and never answers."""
    writers: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for w in writers:
            w.close()
        server.close()
        await server.wait_closed()


async def test_real_read_timeout_is_retried_then_unavailable() -> None:
    async with (
        silent_server() as port,
        TowerClient(
            f"http://127.0.0.1:{port}", TOKEN, timeout=0.1, max_retries=2, backoff_base=0.001
        ) as c,
    ):
        started = time.monotonic()
        with pytest.raises(TowerUnavailable, match="ReadTimeout"):
            await c.list_records(USERS)
        assert c.stats[f"GET {USERS}"] == 3
        assert time.monotonic() - started < 2.0


async def test_real_connection_refused_is_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with TowerClient(
        f"http://127.0.0.1:{port}", TOKEN, max_retries=1, backoff_base=0.001
    ) as c:
        with pytest.raises(TowerUnavailable, match="ConnectError"):
            await c.list_records(USERS)
        assert c.stats[f"GET {USERS}"] == 2
