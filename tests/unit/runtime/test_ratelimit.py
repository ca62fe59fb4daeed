"""Rate limiters: per-item exponential backoff, the overall token bucket, and their max."""

from __future__ import annotations

import random

import pytest

from nats_tower_operator.runtime.ratelimit import (
    BucketLimiter,
    ItemExponentialLimiter,
    MaxOfLimiter,
    default_controller_limiter,
)


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_exponential_backoff_doubles_per_failure_and_is_capped() -> None:
    limiter = ItemExponentialLimiter(base=0.05, cap=1.0, jitter=0)
    delays = [limiter.when("a") for _ in range(8)]
    assert delays == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0])
    assert limiter.num_requeues("a") == 8


def test_exponential_backoff_is_per_item_and_forget_resets() -> None:
    limiter = ItemExponentialLimiter(base=0.1, cap=10.0, jitter=0)
    for _ in range(3):
        limiter.when("a")
    assert limiter.when("b") == pytest.approx(0.1)
    assert limiter.when("a") == pytest.approx(0.8)
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0
    assert limiter.num_requeues("b") == 1
    assert limiter.when("a") == pytest.approx(0.1)


def test_exponential_backoff_survives_many_failures() -> None:
    limiter = ItemExponentialLimiter(base=0.05, cap=300.0, jitter=0)
    for _ in range(2000):
        delay = limiter.when("a")
    assert delay == 300.0


def test_jitter_is_proportional_and_spreads_items() -> None:
    limiter = ItemExponentialLimiter(base=1.0, cap=100.0, jitter=0.1, rng=random.Random(7))
    first = [limiter.when(i) for i in range(500)]
    assert all(0.9 <= d <= 1.1 for d in first)
    assert max(first) - min(first) > 0.1  # not all the same value
    fourth = []
    for i in range(500):
        limiter.when(i)
        limiter.when(i)
        fourth.append(limiter.when(i))
    assert all(7.2 <= d <= 8.8 for d in fourth)


def test_jitter_never_exceeds_the_cap() -> None:
    limiter = ItemExponentialLimiter(base=1.0, cap=4.0, jitter=0.5, rng=random.Random(1))
    for _ in range(200):
        assert 0 < limiter.when("a") <= 4.0


@pytest.mark.parametrize(
    ("base", "cap", "jitter"), [(0, 1, 0), (2, 1, 0), (1, 2, -0.1), (1, 2, 1.0)]
)
def test_exponential_rejects_bad_settings(base: float, cap: float, jitter: float) -> None:
    with pytest.raises(ValueError):
        ItemExponentialLimiter(base=base, cap=cap, jitter=jitter)


def test_bucket_allows_a_burst_then_spaces_reservations() -> None:
    clock = FakeClock()
    bucket = BucketLimiter(qps=10, burst=3, clock=clock)
    assert [bucket.when(i) for i in range(3)] == [0, 0, 0]
    assert bucket.when("x") == pytest.approx(0.1)
    assert bucket.when("y") == pytest.approx(0.2)
    assert bucket.when("z") == pytest.approx(0.3)
    clock.now += 0.25  # refills 2.5 of the 3 tokens owed
    assert bucket.when("w") == pytest.approx(0.15)


def test_bucket_refill_is_capped_at_burst() -> None:
    clock = FakeClock()
    bucket = BucketLimiter(qps=10, burst=2, clock=clock)
    bucket.when(1)
    bucket.when(2)
    clock.now += 3600
    assert [bucket.when(i) for i in range(2)] == [0, 0]
    assert bucket.when(3) == pytest.approx(0.1)


def test_bucket_has_no_per_item_state() -> None:
    clock = FakeClock()
    bucket = BucketLimiter(qps=1, burst=1, clock=clock)
    bucket.when("a")
    bucket.forget("a")
    assert bucket.num_requeues("a") == 0
    assert bucket.when("a") == pytest.approx(1.0)  # forget does not give the token back


def test_bucket_ignores_a_clock_going_backwards() -> None:
    clock = FakeClock()
    bucket = BucketLimiter(qps=1, burst=1, clock=clock)
    bucket.when("a")
    clock.now -= 100
    assert bucket.when("b") == pytest.approx(1.0)


def test_max_of_takes_the_longest_delay_and_forgets_everywhere() -> None:
    clock = FakeClock()
    items = ItemExponentialLimiter(base=1.0, cap=100.0, jitter=0)
    bucket = BucketLimiter(qps=1, burst=2, clock=clock)
    limiter = MaxOfLimiter(items, bucket)
    assert limiter.when("a") == pytest.approx(1.0)  # item backoff wins over a free token
    assert limiter.when("b") == pytest.approx(1.0)
    assert limiter.when("c") == pytest.approx(1.0)  # bucket empty: 1 s; item: 1 s
    assert limiter.when("d") == pytest.approx(2.0)  # bucket now owes 2 s
    assert limiter.num_requeues("a") == 1
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0
    assert items.num_requeues("a") == 0


def test_max_of_needs_limiters() -> None:
    with pytest.raises(ValueError):
        MaxOfLimiter()


def test_default_controller_limiter_starts_small_and_caps_at_five_minutes() -> None:
    limiter = default_controller_limiter()
    assert 0.045 <= limiter.when("a") <= 0.055
    for _ in range(30):
        delay = limiter.when("a")
    assert 270 <= delay <= 300
    limiter.forget("a")
    assert limiter.when("a") <= 0.055
