"""Fixtures shared by the unit tests: the virtual clock.

A test module that sleeps, waits for timeouts or measures delays asks for ``virtual_time``
(``pytestmark = pytest.mark.usefixtures("virtual_time")``). Its event loop then runs on
looptime's virtual clock: when nothing is ready to run, the loop jumps straight to its next
timer instead of waiting for it. Timers fire in deadline order and exactly on time however
loaded the machine is, a 300 s backoff costs no real time, and I/O that is ready (a loopback
socket between two ends in this process) takes no virtual time. Tests therefore state timing
exactly ("not before 0.05 s, at 0.05 s") and can advance past the furthest deadline that could
still produce an event before asserting that it did not happen.

Only the loop's clock is virtual: code that reads ``time.monotonic()`` itself is given the
loop's clock instead (``LeaseElector(monotonic=loop.time)``, ``HealthServer(clock=...)``).

The fixture switches the clock on for the fixtures set up after it as well as for the test
(``@pytest.mark.looptime`` only covers the test body: timers that fixtures started on the real
clock would then lie hours in the virtual future). ``usefixtures`` sets it up first.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import looptime
import pytest


@pytest.fixture
async def virtual_time() -> AsyncIterator[None]:
    """Run the rest of the test, fixtures included, on the loop's virtual clock."""
    if not isinstance(asyncio.get_running_loop(), looptime.LoopTimeEventLoop):
        pytest.fail("the event loop has no virtual clock: is looptime installed (.[dev])?")
    with looptime.enabled(strict=True):
        yield
