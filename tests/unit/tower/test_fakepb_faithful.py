"""The fake (``fakepb``) answers like the real PocketBase where the client's tests rely on it.

The same raw requests go to the real PocketBase serving Tower's rules and to the fake
holding a copy of the same records; statuses, error bodies and the records listed must
agree. This is the one module here that starts a real server: it keeps the fake honest.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio

from nats_tower_operator.towerserver.standin import TowerStandIn

from .fakepb import MAX_COMPARISONS, MAX_FILTER_BYTES, TOKEN, FakeTower

pytestmark = pytest.mark.asyncio(loop_scope="module")

USERS = "nats_auth_users"
ACCOUNTS = "nats_auth_accounts"
ACCESS = "nats_auth_k8s_access"
RECORD_ID = re.compile(r"[a-z0-9]{15}")
#: Keys PocketBase adds to every record that the fake does not bother with.
META = {"collectionId", "collectionName"}


@dataclass
class Pair:
    real: httpx.AsyncClient
    fake: httpx.AsyncClient
    fake_tower: FakeTower
    account_id: str
    user_id: str

    async def both(
        self, method: str, path: str, *, token: str | None = TOKEN, **kwargs: Any
    ) -> tuple[httpx.Response, httpx.Response]:
        headers = {"X-Token": token} if token is not None else {}
        real = await self.real.request(method, path, headers=headers, **kwargs)
        fake = await self.fake.request(method, path, headers=headers, **kwargs)
        return real, fake


def records(collection: str, record_id: str = "") -> str:
    path = f"/api/collections/{collection}/records"
    return f"{path}/{record_id}" if record_id else path


def body(response: httpx.Response) -> Any:
    return response.json() if response.content else None


def names(response: httpx.Response) -> list[str]:
    return sorted(str(item["name"]) for item in response.json()["items"])


NAMES = ["plain", "it's", 'say "hi"', "back\\slash", "\\'", "a || b", "é'ü"]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pair(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Pair]:
    async with TowerStandIn.running(
        data_dir=tmp_path_factory.mktemp("tower"), token=TOKEN
    ) as tower:
        admin = tower.admin
        inst = await admin.create_installation("nats://127.0.0.1:1")
        account = await admin.create_account(inst["public_key"], "orders")
        users = [await admin.create_user(inst["public_key"], "orders", n) for n in NAMES]
        await admin.link(inst["public_key"], "orders", cluster="c", namespace="team-a")
        fake = FakeTower()
        # the fake holds a copy of what the real server stores
        for collection in ("nats_auth_operators", ACCOUNTS, USERS, ACCESS):
            for record in await admin.list(collection):
                fake.records.setdefault(collection, {})[record["id"]] = {
                    k: v for k, v in record.items() if k not in META
                }
        async with (
            httpx.AsyncClient(base_url=tower.url, timeout=30) as real,
            httpx.AsyncClient(base_url="http://fake.test", transport=fake.transport()) as fake_http,
        ):
            yield Pair(real, fake_http, fake, account["id"], users[0]["id"])


@pytest.mark.parametrize("token", [None, "wrong-token"])
async def test_a_wrong_or_missing_token_gets_the_same_answers(
    pair: Pair, token: str | None
) -> None:
    for method, path, kwargs in [
        ("GET", records(USERS), {}),
        ("GET", records(USERS), {"params": {"filter": "name = 'plain'"}}),
        ("GET", records(USERS, pair.user_id), {}),
        ("PATCH", records(USERS, pair.user_id), {"json": {"description": "x"}}),
        ("DELETE", records(USERS, pair.user_id), {}),
        ("POST", records(USERS), {"json": {"account": pair.account_id, "name": "new"}}),
    ]:
        real, fake = await pair.both(method, path, token=token, **kwargs)
        assert (real.status_code, body(real)) == (fake.status_code, body(fake)), (method, path)
        assert real.status_code in (200, 400, 404)


async def test_views_and_misses_agree(pair: Pair) -> None:
    real, fake = await pair.both("GET", records(USERS, pair.user_id), params={"fields": "id,name"})
    assert (real.status_code, body(real)) == (fake.status_code, body(fake))
    real, fake = await pair.both("GET", records(USERS, "zzzzzzzzzzzzzzz"))
    assert (
        (real.status_code, body(real))
        == (fake.status_code, body(fake))
        == (
            404,
            {"data": {}, "message": "The requested resource wasn't found.", "status": 404},
        )
    )


@pytest.mark.parametrize(
    "expr",
    [
        "name = 'plain'",
        "name = 'it\\'s'",
        'name = "it\'s"',
        "name = 'say \"hi\"'",
        'name = "say \\"hi\\""',
        "name = 'back\\slash'",
        "name = '\\\\''",
        "name = 'a || b'",
        "name = 'é\\'ü'",
        'name = "it\\\'s"',  # in double quotes \' is not an escape
        "name = 'plain' || name = 'it\\'s' && name = 'nope'",  # && binds tighter
        "(name = 'plain' || name = 'it\\'s') && name = 'nope'",
        "name != 'plain' && name !~ 'a'",
        "name ~ 'PLA'",
        "name = 'back\\'",  # a literal cannot end in a backslash
        "(name = 'back\\')",
        "name = 'unterminated",
        "name = 'x' ||",
        "name = 'x' && (name = 'y'",
        "name = '" + "x" * (MAX_FILTER_BYTES - 9) + "'",
        "name = '" + "x" * (MAX_FILTER_BYTES - 8) + "'",
        "name = '" + "é" * ((MAX_FILTER_BYTES - 9) // 2) + "'",
        "name = '" + "é" * ((MAX_FILTER_BYTES - 8) // 2) + "'",
        " || ".join(["name = 'x'"] * MAX_COMPARISONS),
        " || ".join(["name = 'x'"] * (MAX_COMPARISONS + 1)),
    ],
)
async def test_filters_are_read_alike(pair: Pair, expr: str) -> None:
    real, fake = await pair.both("GET", records(USERS), params={"filter": expr, "perPage": 100})
    assert real.status_code == fake.status_code, expr[:80]
    if real.status_code == 200:
        assert names(real) == names(fake), expr[:80]
    else:
        assert body(real) == body(fake)


async def test_paging_answers_agree(pair: Pair) -> None:
    for params in (
        {"perPage": 5000},
        {"perPage": 2, "page": 2},
        {"perPage": 2, "skipTotal": 1},
        {"perPage": 3, "page": 9},
        {"fields": "id"},
    ):
        real, fake = await pair.both("GET", records(USERS), params=params)
        r, f = real.json(), fake.json()
        assert {k: v for k, v in r.items() if k != "items"} == {
            k: v for k, v in f.items() if k != "items"
        }, params
        assert len(r["items"]) == len(f["items"])
        if params.get("fields") == "id":
            assert all(set(item) == {"id"} for item in r["items"] + f["items"])


async def test_unique_violations_and_creates_agree(pair: Pair) -> None:
    for collection, data in [
        (USERS, {"account": pair.account_id, "name": "plain"}),
        (ACCESS, {"account": pair.account_id, "cluster": "c", "namespace": "team-a"}),
        (ACCOUNTS, {"operator": pair.fake_tower.items(ACCOUNTS)[0]["operator"], "name": "orders"}),
    ]:
        real, fake = await pair.both("POST", records(collection), json=data)
        assert (real.status_code, body(real)) == (fake.status_code, body(fake)), collection
    real, fake = await pair.both(
        "POST", records(USERS), json={"account": pair.account_id, "name": "brand-new"}
    )
    assert real.status_code == fake.status_code == 200
    r, f = real.json(), fake.json()
    for created in (r, f):
        assert RECORD_ID.fullmatch(created["id"])
        assert created["jwt"].count(".") == 2
        assert created["creds"].startswith("-----BEGIN NATS USER JWT-----")
        assert created["public_key"].startswith("U") and created["seed"].startswith("SU")
        assert "created" not in created
    assert set(f) <= set(r) - META
