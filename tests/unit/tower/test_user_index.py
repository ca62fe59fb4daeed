"""Lookups of the operator's own users ("cluster/namespace/secret" names) in a burst.

Reconciles do not start together (each worker starts its next key when its last one is
done), so batching lookups by time window leaves most of them alone; one light listing
per (account, namespace) serves the whole burst instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from nats_tower_operator.tower import CredentialIssuer, TowerClient

from .fakepb import FakeTower
from .test_credentials import CLUSTER, World


@pytest.fixture
def world(fake: FakeTower) -> World:
    fake.delay = 0.002
    return World(fake)


@pytest.fixture
async def issuer(client: TowerClient) -> AsyncIterator[CredentialIssuer]:
    yield CredentialIssuer(client, cluster_id=CLUSTER)


def name(i: int, namespace: str = "team-a") -> str:
    return f"{CLUSTER}/{namespace}/app-{i}"


async def test_pipelined_burst_costs_one_listing_and_one_create_each(
    world: World, issuer: CredentialIssuer
) -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(60):
        queue.put_nowait(i)

    async def worker() -> None:  # like the operator's workers: one key after another
        while not queue.empty():
            await issuer.issue(world.spec(name(queue.get_nowait())))

    await asyncio.gather(*(worker() for _ in range(8)))
    counts = world.requests()
    assert counts["POST nats_auth_users"] == 60
    assert counts["GET nats_auth_users"] == 1
    assert sum(counts.values()) == 60 + 1 + 3  # + installation, account, access


async def test_existing_user_is_found_through_the_listing(
    world: World, issuer: CredentialIssuer
) -> None:
    existing = world.fake.add_user(world.acct["id"], name(1))
    world.fake.add_user(world.acct["id"], "someone-else/team-a/app-1")
    cred = await issuer.issue(world.spec(name(1)))
    assert not cred.created and cred.user_id == existing["id"]
    again = await issuer.issue(world.spec(name(2)))
    assert again.created
    assert world.requests()["GET nats_auth_users"] == 2  # one listing + one get of the hit


async def test_user_deleted_after_the_listing_is_created_again(
    world: World, issuer: CredentialIssuer
) -> None:
    first = await issuer.issue(world.spec(name(1)))
    assert first.created
    await issuer.revoke(first.user_id)
    second = await issuer.issue(world.spec(name(1)))
    assert second.created and second.user_id != first.user_id


async def test_listing_is_per_namespace(world: World, issuer: CredentialIssuer) -> None:
    world.fake.add_access(world.acct["id"], CLUSTER, "team-b")
    world.fake.add_user(world.acct["id"], name(1, "team-b"))
    a = await issuer.issue(world.spec(name(1, "team-a")))
    b = await issuer.issue(world.spec(name(1, "team-b"), namespace="team-b"))
    assert a.created and not b.created
