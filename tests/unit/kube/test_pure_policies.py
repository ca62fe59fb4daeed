"""Pure policies: token bucket arithmetic, retry decisions and backoff, watch line splitting."""

from __future__ import annotations

import asyncio
import random

import pytest

from nats_tower_operator.kube import (
    Conflict,
    Forbidden,
    KubeConnectionError,
    RetryPolicy,
    ServerError,
    TokenBucket,
    TooManyRequests,
)
from nats_tower_operator.kube.retry import backoff_delay
from nats_tower_operator.kube.watch import LineBuffer, parse_watch_line


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_burst_then_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(5, 10, clock=clock)
    assert [bucket.reserve() for _ in range(10)] == [0.0] * 10
    # Reservations queue up: the 11th waits 1/5 s, the 12th 2/5 s.
    assert bucket.reserve() == pytest.approx(0.2)
    assert bucket.reserve() == pytest.approx(0.4)
    clock.now += 10  # refills, but never above the burst
    assert sum(1 for _ in range(20) if bucket.reserve() == 0.0) == 10


async def test_token_bucket_acquire_sleeps_reserved_delay_and_cancel_returns_token() -> None:
    clock = Clock()
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    bucket = TokenBucket(2, 1, clock=clock, sleep=fake_sleep)
    await bucket.acquire()
    await bucket.acquire()
    assert slept == [pytest.approx(0.5)]

    hang = asyncio.Event()
    sleeping = asyncio.Event()

    async def blocking_sleep(seconds: float) -> None:
        sleeping.set()
        await hang.wait()

    waiting = TokenBucket(1, 1, clock=clock, sleep=blocking_sleep)
    await waiting.acquire()
    task = asyncio.create_task(waiting.acquire())
    await sleeping.wait()  # the second acquire reserved its token and waits for it
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert waiting.reserve() == pytest.approx(1.0)  # not 2.0: the cancelled token came back
    with pytest.raises(ValueError):
        TokenBucket(0, 1)


def test_retry_policy_decisions() -> None:
    policy = RetryPolicy(max_attempts=3, backoff_base=1, backoff_cap=4, retry_after_cap=10)
    rand = random.Random(1)
    busy = TooManyRequests(429, "TooManyRequests", "slow down", retry_after=3)
    assert policy.delay(busy, attempt=1, is_read=False, rand=rand) == 3
    huge = TooManyRequests(429, "TooManyRequests", "x", retry_after=3600)
    assert policy.delay(huge, attempt=1, is_read=True, rand=rand) == 10
    assert policy.delay(busy, attempt=3, is_read=True, rand=rand) is None  # bounded

    server = ServerError(500, "InternalError", "x")
    assert policy.delay(server, attempt=1, is_read=True, rand=rand) is not None
    assert policy.delay(server, attempt=1, is_read=False, rand=rand) is None

    unsent = KubeConnectionError("refused", request_sent=False)
    sent = KubeConnectionError("reset", request_sent=True)
    assert policy.delay(unsent, attempt=1, is_read=False, rand=rand) is not None
    assert policy.delay(sent, attempt=1, is_read=False, rand=rand) is None
    assert policy.delay(sent, attempt=1, is_read=True, rand=rand) is not None

    for error in (Conflict(409, "Conflict", "x"), Forbidden(403, "Forbidden", "x")):
        assert policy.delay(error, attempt=1, is_read=True, rand=rand) is None


def test_backoff_is_capped_and_jittered() -> None:
    rand = random.Random(7)
    delays = [backoff_delay(n, base=0.5, cap=4, rand=rand) for n in range(10)]
    assert 0.25 <= delays[0] <= 0.5
    assert 1.0 <= delays[2] <= 2.0
    assert all(2.0 <= d <= 4.0 for d in delays[3:])
    assert len(set(delays[3:])) > 1


def test_line_buffer_handles_any_chunking() -> None:
    data = b'{"a":1}\n\n{"b":2}\n{"c":3}'
    for size in range(1, len(data) + 1):
        buf = LineBuffer()
        lines = []
        for i in range(0, len(data), size):
            lines += buf.feed(data[i : i + size])
        lines += buf.flush()
        assert lines == [b'{"a":1}', b'{"b":2}', b'{"c":3}'], size


def test_parse_watch_line_keeps_object() -> None:
    event = parse_watch_line(b'{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"7"}}}')
    assert event.type == "BOOKMARK" and event.resource_version == "7"
