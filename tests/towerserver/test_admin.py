"""TowerAdmin against the real PocketBase: names with filter metacharacters find exactly
their record, and "not found" says the token may be wrong (Tower never answers 401)."""

from __future__ import annotations

import httpx
import pytest

from nats_tower_operator.towerserver.admin import AdminError, TowerAdmin, split_subjects
from nats_tower_operator.towerserver.standin import TowerStandIn

from .conftest import PLACEHOLDER_URL

NASTY_NAMES = ["it's", 'say "hi"', "back\\slash", "x' || name != 'x", "50%_wild", "%"]


async def test_accounts_with_filter_metacharacters_are_found_exactly(
    tower: TowerStandIn,
) -> None:
    admin = tower.admin
    key = (await admin.create_installation(PLACEHOLDER_URL))["public_key"]
    created = {name: await admin.create_account(key, name) for name in NASTY_NAMES}
    for name in NASTY_NAMES:
        assert (await admin.account(key, name))["id"] == created[name]["id"], name
    for probe in ("x", "it", "50", "' || '' = '", "wild"):
        with pytest.raises(AdminError, match="not found"):
            await admin.account(key, probe)
    with pytest.raises(AdminError, match="backslash"):
        await admin.account(key, "ends\\")


async def test_installation_is_found_by_public_key_or_record_id(tower: TowerStandIn) -> None:
    created = await tower.admin.create_installation(PLACEHOLDER_URL)
    by_key = await tower.admin.installation(created["public_key"])
    by_id = await tower.admin.installation(created["id"])
    assert by_key["id"] == by_id["id"] == created["id"]


async def test_a_wrong_token_reads_as_not_found_with_a_hint(tower: TowerStandIn) -> None:
    created = await tower.admin.create_installation(PLACEHOLDER_URL)
    async with TowerAdmin(tower.url, "wrong-token") as wrong:
        with pytest.raises(AdminError, match=r"not found \(or the API token is wrong\)"):
            await wrong.installation(created["public_key"])
        assert await wrong.list("nats_auth_operators") == []


async def test_list_reads_every_page(tower: TowerStandIn) -> None:
    admin = tower.admin
    key = (await admin.create_installation(PLACEHOLDER_URL))["public_key"]
    account = await admin.create_account(key, "app")
    total = 501  # TowerAdmin asks for pages of 500
    async with httpx.AsyncClient(
        base_url=tower.url, headers={"X-Token": tower.token}, timeout=30
    ) as client:
        for i in range(total):
            response = await client.post(
                "/api/collections/nats_auth_k8s_access/records",
                json={"account": account["id"], "cluster": "c", "namespace": f"ns{i}"},
            )
            assert response.status_code == 200
    links = await admin.list("nats_auth_k8s_access")
    assert len({link["id"] for link in links}) == len(links) == total


def test_split_subjects_takes_commas_and_newlines() -> None:
    assert split_subjects(" a.> ,b\n\nc.*, ") == ["a.>", "b", "c.*"]
    assert split_subjects("") == []
