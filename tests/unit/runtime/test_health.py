"""The probe and metrics server over real HTTP on a loopback port.

The server, its loop-lag probe and the check timeouts run on the virtual clock
(``virtual_time``): the probe wakes exactly on time however loaded the machine is, so only a
stall the test makes (by moving the server's clock) shows up as lag.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from nats_tower_operator.runtime.checks import CheckRegistry
from nats_tower_operator.runtime.health import HealthServer
from nats_tower_operator.runtime.manager import Manager
from nats_tower_operator.runtime.metrics import Metrics

pytestmark = pytest.mark.usefixtures("virtual_time")

MAX_LAG = 0.1
PROBE_INTERVAL = 0.02


class StallableClock:
    """The loop's clock, plus however long the test pretends the loop was blocked."""

    def __init__(self) -> None:
        self.stalled = 0.0

    def __call__(self) -> float:
        return asyncio.get_running_loop().time() + self.stalled


@pytest.fixture
def clock() -> StallableClock:
    return StallableClock()


@pytest.fixture
async def registry() -> CheckRegistry:
    return CheckRegistry(timeout=0.2)


@pytest.fixture
async def server(registry: CheckRegistry, clock: StallableClock) -> AsyncIterator[HealthServer]:
    metrics = Metrics()
    metrics.observe_reconcile("pods", "success", 0.01)
    health = HealthServer(
        registry,
        metrics,
        host="127.0.0.1",
        port=0,
        max_loop_lag=MAX_LAG,
        lag_probe_interval=PROBE_INTERVAL,
        clock=clock,
    )
    await health.start()
    yield health
    await health.close()


@pytest.fixture
async def client(server: HealthServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.bound_port}") as c:
        yield c


async def test_healthz_passes_on_a_responsive_loop(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.text == "[+]event-loop ok\nhealthz check passed\n"


async def test_healthz_fails_while_the_loop_lags_then_recovers(
    client: httpx.AsyncClient, clock: StallableClock
) -> None:
    # The loop was blocked for 0.4 s, as by a CPU-bound bug: the probe has not ticked since.
    clock.stalled += 0.4
    response = await client.get("/healthz")
    assert response.status_code == 503
    match = re.search(r"\[-\]event-loop failed: lag (\d+\.\d+)s > 0\.1s", response.text)
    assert match is not None, response.text
    assert 0.4 - PROBE_INTERVAL <= float(match.group(1)) <= 0.4  # overdue by the stall
    # The next tick measures the stall itself; the one after it is on time again.
    async with asyncio.timeout(2 * PROBE_INTERVAL + 0.001):
        while (await client.get("/healthz")).status_code != 200:
            await asyncio.sleep(0.001)


async def test_healthz_fails_when_a_health_check_fails(
    registry: CheckRegistry, client: httpx.AsyncClient
) -> None:
    registry.add_health_check("watch-alive", lambda: False)
    response = await client.get("/healthz")
    assert response.status_code == 503
    assert "[-]watch-alive failed" in response.text


async def test_readyz_follows_the_ready_checks(
    registry: CheckRegistry, client: httpx.AsyncClient
) -> None:
    synced = asyncio.Event()

    async def tower_reachable() -> bool:
        return True

    registry.add_ready_check("caches-synced", synced.is_set)
    registry.add_ready_check("tower", tower_reachable)
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.text.splitlines() == [
        "[-]caches-synced failed: failed",
        "[+]tower ok",
        "readyz check failed",
    ]
    synced.set()
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.text.endswith("readyz check passed\n")


async def test_readyz_reports_raising_and_hanging_checks_without_their_text(
    registry: CheckRegistry, client: httpx.AsyncClient
) -> None:
    def leaky() -> bool:
        raise RuntimeError("token nt_SECRETSECRET rejected")

    async def hangs() -> bool:
        await asyncio.sleep(30)
        return True

    registry.add_ready_check("leaky", leaky)
    registry.add_ready_check("hangs", hangs)
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert "[-]leaky failed: raised RuntimeError" in response.text
    assert "[-]hangs failed: timed out after 0.2s" in response.text
    assert "SECRET" not in response.text


async def test_metrics_are_served_in_prometheus_text(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    samples = [
        s
        for s in families["nats_tower_operator_reconcile"].samples
        if s.name == "nats_tower_operator_reconcile_total"
    ]
    assert [(s.labels, s.value) for s in samples] == [
        ({"controller": "pods", "result": "success"}, 1.0)
    ]


async def test_unknown_paths_are_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/nope")).status_code == 404


async def test_run_serves_a_manager_until_stopped() -> None:
    manager = Manager()
    manager.add_ready_check("synced", lambda: True)
    health = HealthServer(manager, Metrics(), host="127.0.0.1", port=0)
    with pytest.raises(RuntimeError):
        health.bound_port  # noqa: B018
    stop = asyncio.Event()
    task = asyncio.create_task(health.run(stop))
    async with asyncio.timeout(5):
        while True:
            try:
                port = health.bound_port
                break
            except RuntimeError:
                await asyncio.sleep(0.01)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert "[+]synced ok" in ready.text
        health_response = await client.get("/healthz")
        assert health_response.status_code == 200
        assert "[+]runnables ok" in health_response.text
        manager.request_stop()  # readiness drops as soon as a stop is requested
        assert (await client.get("/readyz")).status_code == 503
    stop.set()
    await asyncio.wait_for(task, 5)
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/healthz")


async def test_start_fails_on_a_busy_port(server: HealthServer) -> None:
    other = HealthServer(CheckRegistry(), Metrics(), host="127.0.0.1", port=server.bound_port)
    with pytest.raises(OSError):
        await other.start()
    await other.close()
