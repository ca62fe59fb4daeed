"""Fault injection: failing, throttled and slow requests, dropped watches, compaction."""

from __future__ import annotations

import asyncio
import time

import httpx

from nats_tower_operator.emulator import Emulator

from .conftest import pod, read_all_events, read_events

PODS = "/api/v1/namespaces/default/pods"


async def test_fail_next_with_500(emu: Emulator, http: httpx.AsyncClient) -> None:
    emu.faults.fail_next(2)
    first = await http.get(PODS)
    assert first.status_code == 500
    assert first.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Internal error occurred: injected fault",
        "reason": "InternalError",
        "details": {"causes": [{"message": "injected fault"}]},
        "code": 500,
    }
    assert (await http.get(PODS)).status_code == 500
    assert (await http.get(PODS)).status_code == 200


async def test_fail_next_with_429_and_retry_after(emu: Emulator, http: httpx.AsyncClient) -> None:
    emu.faults.fail_next(1, status=429, retry_after=3, method="POST", path="/secrets")
    assert (await http.post(PODS, json=pod("not-matching"))).status_code == 201
    assert (await http.get("/api/v1/namespaces/default/secrets")).status_code == 200
    r = await http.post("/api/v1/namespaces/default/secrets", json={"metadata": {"name": "s"}})
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "3"
    assert r.json()["reason"] == "TooManyRequests"
    assert r.json()["details"] == {"retryAfterSeconds": 3}
    assert (
        await http.post("/api/v1/namespaces/default/secrets", json={"metadata": {"name": "s"}})
    ).status_code == 201


async def test_delay(emu: Emulator, http: httpx.AsyncClient) -> None:
    emu.faults.delay(0.3, count=1, path="/pods")
    started = time.monotonic()
    await http.get(PODS)
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    await http.get(PODS)
    assert time.monotonic() - started < 0.25


async def test_drop_watches_ends_streams(emu: Emulator, http: httpx.AsyncClient) -> None:
    async with http.stream("GET", PODS, params={"watch": "1"}) as stream:
        await http.post(PODS, json=pod("a"))
        await read_events(stream, 1)
        assert emu.faults.drop_watches() == 1
        assert await read_all_events(stream, timeout=2) == []  # the stream ended cleanly


async def test_drop_watches_abort_cuts_the_connection(
    emu: Emulator, http: httpx.AsyncClient
) -> None:
    async with http.stream("GET", PODS, params={"watch": "1"}) as stream:
        await asyncio.sleep(0.05)
        emu.faults.drop_watches(abort=True)
        try:
            await read_all_events(stream, timeout=2)
        except httpx.HTTPError:
            pass
        else:
            raise AssertionError("an aborted watch must end with a transport error")


async def test_compact_forces_410(emu: Emulator, http: httpx.AsyncClient) -> None:
    rv = (await http.get(PODS)).json()["metadata"]["resourceVersion"]
    await http.post(PODS, json=pod("b"))
    emu.faults.compact()
    async with http.stream("GET", PODS, params={"watch": "1", "resourceVersion": rv}) as stream:
        events = await read_all_events(stream)
    assert events[0]["type"] == "ERROR" and events[0]["object"]["code"] == 410


async def test_admin_endpoints(emu: Emulator, http: httpx.AsyncClient) -> None:
    assert (
        await http.post("/_emulator/faults/fail", json={"count": 1, "status": 503, "path": "/pods"})
    ).status_code == 200
    r = await http.get(PODS)
    assert r.status_code == 503 and r.json()["reason"] == "ServiceUnavailable"
    await http.post("/_emulator/faults/fail", json={"count": 5})
    await http.post("/_emulator/faults/clear")
    assert (await http.get(PODS)).status_code == 200
    await http.post("/_emulator/faults/delay", json={"seconds": 0.2, "count": 1})
    started = time.monotonic()
    await http.get(PODS)
    assert time.monotonic() - started >= 0.2
    async with http.stream("GET", PODS, params={"watch": "1", "timeoutSeconds": "5"}) as stream:
        await asyncio.sleep(0.05)
        dropped = await http.post("/_emulator/faults/drop-watches", json={})
        assert dropped.json() == {"dropped": 1}
        assert await read_all_events(stream, timeout=2) == []
    rv = (await http.get(PODS)).json()["metadata"]["resourceVersion"]
    await http.post(PODS, json=pod("c"))
    compacted = await http.post("/_emulator/faults/compact")
    assert int(compacted.json()["resourceVersion"]) > int(rv)
    async with http.stream("GET", PODS, params={"watch": "1", "resourceVersion": rv}) as stream:
        assert (await read_all_events(stream))[0]["object"]["code"] == 410
    assert (await http.post("/_emulator/nope")).status_code == 404
