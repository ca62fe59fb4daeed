"""Per-namespace credential quota and user-change rate (pure, with an injected clock)."""

from __future__ import annotations

import pytest

from nats_tower_operator.reconcilers.quota import NamespaceQuota


def test_a_namespace_holds_at_most_its_quota_counting_reservations() -> None:
    now = [0.0]
    quota = NamespaceQuota(max_credentials=2, reservation_ttl=60.0, clock=lambda: now[0])
    # Two workers issue at once: both reserve before either Secret is seen.
    assert quota.reserve("a", "s1") and quota.reserve("a", "s2")
    assert not quota.reserve("a", "s3")  # the race the reservations close
    assert quota.reserve("a", "s1")  # a Secret already holding a slot keeps it
    assert quota.reserve("b", "s3")  # another namespace has its own quota
    assert quota.secret_added("a", "s1") == 1 and quota.secret_added("a", "s2") == 2
    assert not quota.reserve("a", "s3")
    assert quota.secret_removed("a", "s1") == 1
    assert quota.reserve("a", "s3")


def test_a_failed_or_forgotten_reservation_frees_its_slot() -> None:
    now = [0.0]
    quota = NamespaceQuota(max_credentials=1, reservation_ttl=60.0, clock=lambda: now[0])
    assert quota.reserve("a", "s1")
    quota.release("a", "s1")
    assert quota.reserve("a", "s2")
    now[0] += 61.0  # never seen (written, then deleted at once): expires
    assert quota.reserve("a", "s3")


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
