"""Without NACK's CRD the operator serves pods, and picks Accounts up once it appears."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from nats_tower_operator.emulator.crd import load_nack_accounts_crd
from nats_tower_operator.kube import NACK_ACCOUNTS
from nats_tower_operator.sandbox import Environment, seed_examples

from .harness import (
    OperatorHandle,
    assert_creds_work,
    create_pod,
    labelled_pod,
    wait_secret,
)


@pytest.fixture
async def bare_env(tmp_path: Path) -> AsyncIterator[Environment]:
    async with Environment.running(tmp_path / "env", nack_crd=False) as environment:
        yield environment


@pytest.mark.timeout(60)
async def test_pods_work_without_nack_and_accounts_work_once_the_crd_appears(
    bare_env: Environment, caplog: pytest.LogCaptureFixture
) -> None:
    operator = OperatorHandle(bare_env)
    try:
        await operator.start()
        async with bare_env.kube_client() as kube:
            await create_pod(kube, labelled_pod("app", secret="app"))
            await assert_creds_work(await wait_secret(kube, "default", "app"))
            assert any("not served" in r.getMessage().lower() for r in caplog.records)

            bare_env.emulator.register_crd(load_nack_accounts_crd())
            _, account = seed_examples(str(bare_env.installation["public_key"]))[1]
            await kube.create(NACK_ACCOUNTS, account, namespace="default")
            await assert_creds_work(await wait_secret(kube, "default", "nack", timeout=20))
    finally:
        await operator.stop()
