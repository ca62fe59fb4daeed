"""Per-namespace credential quota and user-change rate (pure, with an injected clock)."""

from __future__ import annotations

import pytest

from nats_tower_operator.reconcilers.quota import NamespaceQuota


def test_a_namespace_is_full_at_its_quota_and_free_again_below_it() -> None:
    quota = NamespaceQuota(max_credentials=2)
    assert not quota.full("a")
    quota.secret_added("a")
    quota.secret_added("a")
    assert quota.full("a") and not quota.full("b")
    assert quota.secret_removed("a") == 1
    assert not quota.full("a")
    assert quota.secret_removed("a") == 0 and quota.secret_removed("a") == 0


def test_user_changes_are_rationed_per_namespace_with_a_burst() -> None:
    now = [0.0]
    quota = NamespaceQuota(per_minute=60, burst=3, clock=lambda: now[0])
    assert [quota.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert quota.take("a") == pytest.approx(1.0)  # one token a second
    assert quota.take("b") == 0.0  # another namespace has its own bucket
    now[0] += 1.0
    assert quota.take("a") == 0.0
    assert quota.take("a") > 0
    now[0] += 100.0  # refills up to the burst, not beyond
    assert [quota.take("a") for _ in range(4)][:3] == [0.0, 0.0, 0.0]
    assert quota.take("a") > 0


def test_remembered_namespaces_are_bounded() -> None:
    quota = NamespaceQuota(burst=1, memory=10)
    for i in range(100):
        quota.take(f"ns-{i}")
    assert len(quota._buckets) == 10
