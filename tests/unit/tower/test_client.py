"""TowerClient's own transport policy, against a fake server (``fakepb``).

Retries and backoff, Retry-After, timeouts, when a POST may be repeated, the token read
per request, secrets kept out of errors, paging loops and the parsing of bad answers.
What PocketBase and Tower answer (wrong tokens, filters, ids, limits) is tested against
the real PocketBase in ``tests/tower`` and ``tests/differential``. Attempts are counted
where they arrive (``fake.count``) or, against real sockets, by the client's ``observer``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

import nats_tower_operator.tower.client as client_module
from nats_tower_operator.tower import (
    AccountNotFound,
    InvalidRecordId,
    TowerBadRequest,
    TowerBadResponse,
    TowerClient,
    TowerError,
    TowerNotFound,
    TowerUnauthorized,
    TowerUnavailable,
)

from .fakepb import TOKEN, FakeTower, pb_error, record_id

USERS = "nats_auth_users"
OPERATORS = "nats_auth_operators"


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


class Attempts(Counter[str]):
    """A :class:`RequestObserver` counting HTTP attempts as ``"METHOD collection"``."""

    def __call__(self, method: str, collection: str, status: int | None, seconds: float) -> None:
        self[f"{method} {collection}"] += 1


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
    assert fake.count("GET", OPERATORS) == 4


async def test_gives_up_after_max_retries(fake: FakeTower, client: TowerClient) -> None:
    seeded(fake)
    fake.fail(pb_error(503, "down"), times=100)
    with pytest.raises(TowerUnavailable) as info:
        await client.get_installation("OXYZ")
    assert info.value.status == 503
    assert info.value.retryable
    assert fake.count("GET", OPERATORS) == 5  # 1 + max_retries(4)


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
    assert fake.count("GET", OPERATORS) == 3


async def test_connect_errors_exhaust_into_unavailable(
    fake: FakeTower, client: TowerClient
) -> None:
    fake.fail(httpx.ConnectError("refused"), times=100)
    with pytest.raises(TowerUnavailable, match="ConnectError") as info:
        await client.list_records(USERS)
    assert info.value.status is None
    assert isinstance(info.value.__cause__, httpx.ConnectError)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, TowerBadRequest),
        (401, TowerUnauthorized),  # never from Tower itself, but a proxy may say it
        (403, TowerUnauthorized),
        (404, TowerNotFound),
        (409, TowerError),
        (422, TowerError),
    ],
)
async def test_no_retry_on_4xx(
    fake: FakeTower, client: TowerClient, status: int, error: type[TowerError]
) -> None:
    fake.fail(pb_error(status, "nope"), times=10)
    with pytest.raises(error) as info:
        await client.list_records(USERS)
    assert not isinstance(info.value, TowerUnavailable)
    assert info.value.status == status
    assert fake.count("GET", USERS) == 1


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
    assert fake.count("POST", USERS) == 1
    assert len(fake.items(USERS)) == 1
    # a 500 on POST is not retried either
    fake.fail(pb_error(500, "boom"), method="POST")
    with pytest.raises(TowerUnavailable):
        await client.create_user(acct["id"], name="v", description="", signing_key_id=None)
    assert fake.count("POST", USERS) == 2


async def test_post_retried_when_connection_never_established(
    fake: FakeTower, client: TowerClient
) -> None:
    _, acct = seeded(fake)
    fake.fail(httpx.ConnectError("refused"), method="POST", times=2)
    user = await client.create_user(acct["id"], name="u", description="d", signing_key_id=None)
    assert user.name == "u"
    assert fake.count("POST", USERS) == 3
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
    assert info.value.field_errors == {
        "name": "validation_not_unique",
        "account": "validation_not_unique",
    }
    assert fake.count("POST", USERS) == 2
    assert fake.count("GET", OPERATORS) == 0  # field errors need no token proof
    assert len(fake.items(USERS)) == 1


# ------------------------------------------------------------------ the token


async def test_token_is_read_per_request_and_a_proof_uses_the_same_token(
    fake: FakeTower,
) -> None:
    seeded(fake)
    tokens = iter(["old-token", TOKEN + "\n"])
    current = "old-token"

    def read() -> str:
        nonlocal current
        current = next(tokens, current)
        return current

    async with TowerClient("http://tower.test", read, transport=fake.transport()) as c:
        with pytest.raises(TowerUnauthorized):
            await c.get_installation("ONOPE")
        # the lookup and its proof were both sent with the token read for the call
        assert [s.token for s in fake.seen] == ["old-token", "old-token"]
        assert await c.token_works()  # rotated token (trailing newline stripped)
        assert fake.seen[-1].token == TOKEN


async def test_unreadable_token_file(fake: FakeTower) -> None:
    def read() -> str:
        raise FileNotFoundError(2, "No such file", "/var/run/token")

    async with TowerClient("http://tower.test", read, transport=fake.transport()) as c:
        with pytest.raises(TowerUnauthorized, match="token"):
            await c.list_records(USERS)
    assert fake.seen == []


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


def test_base_url_must_be_http() -> None:
    for bad in ("tower:8090", "ftp://x", "/relative"):
        with pytest.raises(ValueError):
            TowerClient(bad, TOKEN)


async def test_observer_sees_every_attempt(fake: FakeTower) -> None:
    seen: list[tuple[str, str, int | None]] = []

    def observe(method: str, collection: str, status: int | None, seconds: float) -> None:
        assert seconds >= 0
        seen.append((method, collection, status))

    fake.fail(httpx.ConnectError("refused"))
    fake.fail(pb_error(502, "bad gateway"))
    async with TowerClient(
        "http://tower.test", TOKEN, backoff_base=0.001, transport=fake.transport(), observer=observe
    ) as c:
        await c.list_records(USERS)
    assert seen == [("GET", USERS, None), ("GET", USERS, 502), ("GET", USERS, 200)]


# ------------------------------------------------------------------ ids and names


@pytest.mark.parametrize(
    "bad", ["", "..", "../../nats_auth_operators/records", "abc", "ABCDEFGHIJKLMNO", "a" * 16]
)
async def test_bad_record_ids_are_refused_before_any_request(
    fake: FakeTower, client: TowerClient, bad: str
) -> None:
    with pytest.raises(InvalidRecordId):
        await client.get_record(USERS, bad)
    with pytest.raises(InvalidRecordId):
        await client.update_record(USERS, bad, {"description": "x"})
    with pytest.raises(InvalidRecordId):
        await client.delete_record(USERS, bad)
    with pytest.raises(InvalidRecordId):
        await client.get_user(bad)
    with pytest.raises(InvalidRecordId):
        await client.delete_user(bad)
    assert fake.seen == []


async def test_bad_collection_names_are_refused(fake: FakeTower, client: TowerClient) -> None:
    for bad in ("users/../x", "", "Users", "a b"):
        with pytest.raises(ValueError):
            await client.list_records(bad)
    assert fake.seen == []


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
    user_id, acct_id = record_id(), record_id()
    fake.fail(
        httpx.Response(200, json={"items": [{"id": user_id, "account": acct_id}], "totalPages": 1})
    )
    with pytest.raises(TowerBadResponse, match="nats_auth_users"):
        await client.find_users(acct_id, ["x"])
    fake.fail(httpx.Response(200, json={"id": user_id}))
    with pytest.raises(TowerBadResponse):
        await client.get_user(user_id)
    fake.fail(httpx.Response(200, content=b"not json"), method="POST")
    with pytest.raises(TowerBadResponse):
        await client.create_user(acct_id, name="x", description="", signing_key_id=None)
    fake.fail(
        httpx.Response(200, json={"items": [{"id": "../x", "account": acct_id, "name": "n"}]})
    )
    with pytest.raises(TowerBadResponse):
        await client.list_user_names(acct_id, name_prefix="n")


async def test_records_not_matching_the_filter_are_ignored(
    fake: FakeTower, client: TowerClient
) -> None:
    """A server that ignores the filter can never hand back another account's records."""
    _, acct = seeded(fake)
    other = fake.add_account(acct["operator"], "other")
    await client.create_user(other["id"], name="app", description="", signing_key_id=None)
    fake.fail(httpx.Response(200, json={"items": fake.items(USERS), "totalPages": 1}))
    assert await client.find_users(acct["id"], ["app"]) == {}
    fake.fail(
        httpx.Response(200, json={"items": fake.items("nats_auth_accounts"), "totalPages": 1})
    )
    with pytest.raises(AccountNotFound):
        await client.get_account(acct["operator"], "missing")


async def test_a_created_user_that_is_not_the_one_asked_for_is_refused(
    fake: FakeTower, client: TowerClient
) -> None:
    _, acct = seeded(fake)
    other = await client.create_user(acct["id"], name="other", description="", signing_key_id=None)
    stored = fake.records[USERS][other.id]
    fake.fail(httpx.Response(200, json=stored), method="POST")
    with pytest.raises(TowerBadResponse, match="different user"):
        await client.create_user(acct["id"], name="mine", description="", signing_key_id=None)


# ------------------------------------------------------------------ paging


async def test_paging_follows_all_pages(fake: FakeTower, client: TowerClient) -> None:
    acct_id = record_id()
    for i in range(25):
        fake.add(USERS, account=acct_id, name=f"n{i:02d}")
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
    a, b, c, d = (record_id() for _ in range(4))
    pages = [
        {"items": [{"id": a}, {"id": b}], "totalPages": -1},
        {"items": [{"id": b}, {"id": c}], "totalPages": -1},  # b shifted onto this page
        {"items": [{"id": d}], "totalPages": -1},
    ]
    for page in pages:
        fake.fail(httpx.Response(200, json=page))
    records = await client.list_records(USERS, per_page=2, all_pages=True)
    assert [r["id"] for r in records] == [a, b, c, d]
    assert fake.count("GET", USERS) == 3


async def test_paging_stops_on_an_empty_page(fake: FakeTower, client: TowerClient) -> None:
    fake.fail(httpx.Response(200, json={"items": [{"id": record_id()}], "totalPages": 5}))
    fake.fail(httpx.Response(200, json={"items": [], "totalPages": 5}))
    assert len(await client.list_records(USERS, per_page=1, all_pages=True)) == 1
    assert fake.count("GET", USERS) == 2


async def test_paging_that_never_ends_is_a_bad_response(
    fake: FakeTower, client: TowerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "MAX_PAGES", 5)

    def endless(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": [{"id": record_id()}], "totalPages": -1})

    fake.fail(endless, times=100)
    with pytest.raises(TowerBadResponse, match="pages"):
        await client.list_records(USERS, per_page=1, all_pages=True)
    assert fake.count("GET", USERS) == 5


async def test_list_arguments_are_checked(fake: FakeTower, client: TowerClient) -> None:
    with pytest.raises(ValueError):
        await client.list_records(USERS, per_page=0)
    with pytest.raises(ValueError):
        await client.list_records(USERS, page=0)
    assert fake.seen == []


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
    attempts = Attempts()
    async with (
        silent_server() as port,
        TowerClient(
            f"http://127.0.0.1:{port}",
            TOKEN,
            timeout=0.1,
            max_retries=2,
            backoff_base=0.001,
            observer=attempts,
        ) as c,
    ):
        started = time.monotonic()
        with pytest.raises(TowerUnavailable, match="ReadTimeout"):
            await c.list_records(USERS)
        assert attempts[f"GET {USERS}"] == 3
        assert time.monotonic() - started < 10.0


async def test_real_connection_refused_is_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    attempts = Attempts()
    async with TowerClient(
        f"http://127.0.0.1:{port}", TOKEN, max_retries=1, backoff_base=0.001, observer=attempts
    ) as c:
        with pytest.raises(TowerUnavailable, match="ConnectError"):
            await c.list_records(USERS)
        assert attempts[f"GET {USERS}"] == 2
