"""Watch: resume from a resourceVersion, initial state, bookmarks, timeouts and 410."""

from __future__ import annotations

import asyncio
import time

import httpx

from nats_tower_operator.emulator import Emulator

from .conftest import pod, read_all_events, read_events, secret

PODS = "/api/v1/namespaces/default/pods"
SECRETS = "/api/v1/namespaces/default/secrets"


async def test_watch_from_resource_version_replays_later_changes_only(
    http: httpx.AsyncClient,
) -> None:
    await http.post(PODS, json=pod("before"))
    rv = (await http.get(PODS)).json()["metadata"]["resourceVersion"]
    await http.post(PODS, json=pod("after"))
    await http.patch(
        f"{PODS}/after",
        headers={"Content-Type": "application/merge-patch+json"},
        json={"metadata": {"labels": {"x": "1"}}},
    )
    deleted = (await http.delete(f"{PODS}/before")).json()
    async with http.stream("GET", PODS, params={"watch": "true", "resourceVersion": rv}) as stream:
        events = await read_events(stream, 3)
        await http.post(PODS, json=pod("live"))
        events += await read_events(stream, 1)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "after"),
        ("MODIFIED", "after"),
        ("DELETED", "before"),
        ("ADDED", "live"),
    ]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs) and rvs[0] > int(rv)
    assert (
        events[2]["object"]["metadata"]["resourceVersion"] == deleted["metadata"]["resourceVersion"]
    )
    assert int(deleted["metadata"]["resourceVersion"]) > rvs[1]  # the delete has its own rv
    assert events[0]["object"]["kind"] == "Pod" and events[0]["object"]["apiVersion"] == "v1"


async def test_watch_without_resource_version_starts_with_current_state(
    http: httpx.AsyncClient,
) -> None:
    await http.post(SECRETS, json=secret("one"))
    await http.post(SECRETS, json=secret("two"))
    async with http.stream("GET", SECRETS, params={"watch": "1"}) as stream:
        events = await read_events(stream, 2)
    assert sorted((e["type"], e["object"]["metadata"]["name"]) for e in events) == [
        ("ADDED", "one"),
        ("ADDED", "two"),
    ]


async def test_watch_is_scoped_to_its_namespace(http: httpx.AsyncClient) -> None:
    await http.post("/api/v1/namespaces", json={"metadata": {"name": "elsewhere"}})
    rv = (await http.get(PODS)).json()["metadata"]["resourceVersion"]
    async with http.stream("GET", PODS, params={"watch": "1", "resourceVersion": rv}) as stream:
        await http.post("/api/v1/namespaces/elsewhere/pods", json=pod("x"))
        await http.post(PODS, json=pod("y"))
        events = await read_events(stream, 1)
    assert events[0]["object"]["metadata"]["name"] == "y"


async def test_bookmarks_only_when_allowed_periodic_and_at_the_end(http: httpx.AsyncClient) -> None:
    rv = (await http.get(PODS)).json()["metadata"]["resourceVersion"]
    started = time.monotonic()
    async with http.stream(
        "GET",
        PODS,
        params={
            "watch": "1",
            "resourceVersion": rv,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": "1",
        },
    ) as stream:
        await http.post(SECRETS, json=secret("elsewhere"))  # bumps the cluster rv, not a pod event
        events = await read_all_events(stream)
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 3  # timeoutSeconds ends the stream
    assert events and all(e["type"] == "BOOKMARK" for e in events)
    assert len(events) >= 3  # every 0.3 s in this fixture, plus one at the end
    last = events[-1]["object"]
    assert last["kind"] == "Pod" and last["apiVersion"] == "v1"
    assert int(last["metadata"]["resourceVersion"]) > int(rv)  # bookmarks carry the cluster rv
    async with http.stream(
        "GET", PODS, params={"watch": "1", "resourceVersion": rv, "timeoutSeconds": "1"}
    ) as stream:
        assert await read_all_events(stream) == []


async def test_a_bookmark_closes_a_timed_out_watch() -> None:
    async with (
        Emulator.running(bookmark_interval=60) as emu,
        httpx.AsyncClient(base_url=emu.url) as http,
    ):
        rv = (await http.get(PODS)).json()["metadata"]["resourceVersion"]
        params = {
            "watch": "1",
            "resourceVersion": rv,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": "1",
        }
        async with http.stream("GET", PODS, params=params) as stream:
            await http.post(PODS, json=pod("x"))
            events = await read_all_events(stream)
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
    assert int(events[1]["object"]["metadata"]["resourceVersion"]) >= int(
        events[0]["object"]["metadata"]["resourceVersion"]
    )


async def test_resume_from_a_bookmark_loses_no_event(http: httpx.AsyncClient) -> None:
    rv = (await http.get(PODS)).json()["metadata"]["resourceVersion"]
    async with http.stream(
        "GET",
        PODS,
        params={
            "watch": "1",
            "resourceVersion": rv,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": "1",
        },
    ) as stream:
        await http.post(PODS, json=pod("seen"))
        events = await read_all_events(stream)
    bookmark = [e for e in events if e["type"] == "BOOKMARK"][-1]["object"]["metadata"][
        "resourceVersion"
    ]
    await http.post(PODS, json=pod("after-bookmark"))
    async with http.stream(
        "GET", PODS, params={"watch": "1", "resourceVersion": bookmark}
    ) as stream:
        resumed = await read_events(stream, 1)
    assert [e["object"]["metadata"]["name"] for e in resumed] == ["after-bookmark"]


async def test_too_old_resource_version_is_410_as_an_error_event() -> None:
    async with Emulator.running(event_window=5) as emu, httpx.AsyncClient(base_url=emu.url) as http:
        start = (await http.get(PODS)).json()["metadata"]["resourceVersion"]
        for i in range(8):
            await http.post(PODS, json=pod(f"p{i}"))
        async with http.stream(
            "GET", PODS, params={"watch": "1", "resourceVersion": start}
        ) as stream:
            assert stream.status_code == 200
            events = await read_all_events(stream)
        assert len(events) == 1
        assert events[0]["type"] == "ERROR"
        status = events[0]["object"]
        assert status["kind"] == "Status" and status["code"] == 410
        assert status["reason"] == "Expired"
        assert status["message"].startswith(f"too old resource version: {start} (")
        # a version inside the window still resumes
        recent = (await http.get(PODS)).json()["items"][-2]["metadata"]["resourceVersion"]
        async with http.stream(
            "GET", PODS, params={"watch": "1", "resourceVersion": recent}
        ) as stream:
            events = await read_events(stream, 1)
        assert events[0]["type"] == "ADDED"


async def test_send_initial_events_ends_with_marked_bookmark(http: httpx.AsyncClient) -> None:
    await http.post(PODS, json=pod("existing"))
    params = {
        "watch": "1",
        "sendInitialEvents": "true",
        "resourceVersionMatch": "NotOlderThan",
        "allowWatchBookmarks": "true",
    }
    async with http.stream("GET", PODS, params=params) as stream:
        events = await read_events(stream, 2)
    assert events[0]["type"] == "ADDED"
    assert events[1]["type"] == "BOOKMARK"
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


async def test_list_resource_version_match_exact_returns_the_past(http: httpx.AsyncClient) -> None:
    await http.post(PODS, json=pod("old", labels={"v": "1"}))
    then = (await http.get(PODS)).json()["metadata"]["resourceVersion"]
    await http.patch(
        f"{PODS}/old",
        headers={"Content-Type": "application/merge-patch+json"},
        json={"metadata": {"labels": {"v": "2"}}},
    )
    await http.post(PODS, json=pod("new"))
    past = (
        await http.get(PODS, params={"resourceVersion": then, "resourceVersionMatch": "Exact"})
    ).json()
    assert past["metadata"]["resourceVersion"] == then
    assert [(i["metadata"]["name"], i["metadata"]["labels"]) for i in past["items"]] == [
        ("old", {"v": "1"})
    ]


async def test_watcher_disconnect_is_cleaned_up(emu: Emulator, http: httpx.AsyncClient) -> None:
    async with http.stream("GET", PODS, params={"watch": "1"}) as stream:
        await http.post(PODS, json=pod("x"))
        await read_events(stream, 1)
        assert len(emu.store.hub.watchers()) == 1
    for _ in range(50):
        await http.post(PODS, json=pod(f"after-{_}"))
        if not emu.store.hub.watchers():
            break
        await asyncio.sleep(0.02)
    assert emu.store.hub.watchers() == []
