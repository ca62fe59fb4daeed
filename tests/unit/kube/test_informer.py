"""Informer semantics over a scripted API: list/watch, resume, relist diffs, not-served, errors.

The informer's backoffs and polls run on the virtual clock (``virtual_time``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from nats_tower_operator.kube import NACK_ACCOUNTS, PODS, Informer, KubeClient

pytestmark = pytest.mark.usefixtures("virtual_time")


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str | None]] = []

    def __call__(self, type_: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        old_rv = old["metadata"]["resourceVersion"] if old else None
        self.events.append((type_, obj["metadata"]["name"], old_rv))


@contextlib.asynccontextmanager
async def running(informer: Informer) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(informer.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _names(informer: Informer) -> list[str]:
    return sorted(o["metadata"]["name"] for o in informer.store.list())


async def test_list_then_watch_updates_store_and_handlers(
    client: KubeClient, script: Any, kit: Any
) -> None:
    managed = {"managedFields": [{"manager": "kubectl"}]}
    script.add("list", kit.list_response([kit.obj("a", "1", **managed), kit.obj("b", "2")], "10"))
    script.add(
        "watch",
        kit.watch_response(
            kit.event_line("ADDED", kit.obj("c", "11")),
            kit.event_line("MODIFIED", kit.obj("a", "12")),
            kit.event_line("DELETED", kit.obj("b", "13")),
            hang=True,
        ),
    )
    informer = Informer(
        client, PODS, namespace="ns", label_selector="nats-tower.com/nats-tower-secret",
        metadata_only=True,
    )  # fmt: skip
    rec = Recorder()
    informer.add_handler(rec)
    async with running(informer):
        await asyncio.wait_for(informer.wait_synced(), 2)
        await kit.eventually(lambda: len(rec.events) == 5)
    assert rec.events == [
        ("ADDED", "a", None),
        ("ADDED", "b", None),
        ("ADDED", "c", None),
        ("MODIFIED", "a", "1"),
        ("DELETED", "b", "2"),
    ]
    assert _names(informer) == ["a", "c"] and len(informer.store) == 2
    assert informer.resource_version == "13"
    a = informer.store.get("ns", "a")
    assert a is not None and set(a) == {"apiVersion", "kind", "metadata"}
    assert a["kind"] == "Pod" and "managedFields" not in a["metadata"]
    assert informer.store.list("other") == [] and informer.store.keys() == [
        ("ns", "a"),
        ("ns", "c"),
    ]
    watch = script.requests_of("watch")[0]
    assert watch.url.params["resourceVersion"] == "10"
    assert watch.url.params["labelSelector"] == "nats-tower.com/nats-tower-secret"
    assert watch.url.path == "/api/v1/namespaces/ns/pods"
    assert "PartialObjectMetadata" in watch.headers["Accept"]


async def test_watch_resumes_from_bookmark_without_relisting(
    client: KubeClient, script: Any, kit: Any
) -> None:
    script.add("list", kit.list_response([], "5"))
    script.add(
        "watch",
        kit.watch_response(
            kit.event_line("ADDED", kit.obj("x", "6")),
            kit.event_line("BOOKMARK", {"kind": "Pod", "metadata": {"resourceVersion": "9"}}),
        ),
    )
    informer = Informer(client, PODS)
    async with running(informer):
        await kit.eventually(lambda: len(script.requests_of("watch")) == 2)
    assert [r.url.params["resourceVersion"] for r in script.requests_of("watch")] == ["5", "9"]
    assert len(script.requests_of("list")) == 1
    assert _names(informer) == ["x"]


async def test_gone_relists_and_synthesises_changes(
    client: KubeClient, script: Any, kit: Any
) -> None:
    script.add(
        "list",
        kit.list_response([kit.obj("a", "1"), kit.obj("b", "2"), kit.obj("c", "3")], "10"),
        kit.list_response([kit.obj("b", "2"), kit.obj("c", "7"), kit.obj("d", "8")], "20"),
    )
    script.add(
        "watch", kit.watch_response(kit.event_line("ERROR", kit.status(410, "Expired"))),
    )  # fmt: skip
    informer = Informer(client, PODS)
    rec = Recorder()
    informer.add_handler(rec)
    async with running(informer):
        await kit.eventually(lambda: len(script.requests_of("watch")) == 2)
    assert rec.events[3:] == [("MODIFIED", "c", "3"), ("ADDED", "d", None), ("DELETED", "a", "1")]
    assert _names(informer) == ["b", "c", "d"]
    assert script.requests_of("watch")[1].url.params["resourceVersion"] == "20"


async def test_not_served_resource_syncs_empty_then_appears(
    client: KubeClient, script: Any, kit: Any, caplog: pytest.LogCaptureFixture
) -> None:
    missing = kit.json_response(kit.status(404, "NotFound", "the server could not find it"), 404)
    script.add("list", missing, kit.list_response([kit.obj("acc", "4")], "4"))
    script.add(
        "discovery",
        missing,
        kit.json_response({"resources": [{"name": "streams"}]}),
        kit.json_response({"resources": [{"name": "accounts"}]}),
    )
    informer = Informer(client, NACK_ACCOUNTS, not_served_poll_interval=0.01)
    rec = Recorder()
    informer.add_handler(rec)
    async with running(informer):
        await asyncio.wait_for(informer.wait_synced(), 2)
        assert len(informer.store) == 0
        await kit.eventually(lambda: informer.served and len(informer.store) == 1)
        await kit.eventually(lambda: len(script.requests_of("watch")) == 1)
    assert len(script.requests_of("discovery")) == 3
    assert rec.events == [("ADDED", "acc", None)]
    stored = informer.store.get("ns", "acc")
    assert stored is not None and stored["kind"] == "Account"
    assert stored["apiVersion"] == "jetstream.nats.io/v1beta2"
    warnings = [r for r in caplog.records if "not served" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelname == "WARNING"


async def test_malformed_event_relists_and_handler_errors_are_contained(
    client: KubeClient, script: Any, kit: Any
) -> None:
    script.add(
        "list", kit.list_response([kit.obj("a", "1")], "1"), kit.list_response([], "3")
    )  # fmt: skip
    script.add(
        "watch",
        kit.watch_response(
            kit.event_line("ADDED", kit.obj("b", "2")),
            kit.event_line("ADDED", {"metadata": {"resourceVersion": "3"}}),  # no name
        ),
    )
    informer = Informer(client, PODS)
    seen: list[str] = []

    def flaky(type_: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        seen.append(type_ + ":" + obj["metadata"]["name"])
        raise RuntimeError("handler bug")

    informer.add_handler(flaky)
    async with running(informer) as task:
        await kit.eventually(lambda: len(script.requests_of("list")) == 2)
        await kit.eventually(lambda: len(informer.store) == 0)
        assert not task.done()
    assert seen == ["ADDED:a", "ADDED:b", "DELETED:a", "DELETED:b"]


async def test_transient_watch_errors_rewatch_from_rv_others_relist(
    client: KubeClient, script: Any, kit: Any
) -> None:
    def broken(_req: httpx.Request) -> httpx.Response:
        class Stream(httpx.AsyncByteStream):
            async def __aiter__(self) -> Any:
                yield kit.event_line("ADDED", kit.obj("a", "6"))
                raise httpx.ReadError("connection reset")

        return httpx.Response(200, stream=Stream())

    script.add("list", kit.list_response([], "5"), kit.list_response([], "8"))
    script.add(
        "watch",
        broken,
        kit.json_response(kit.status(403, "Forbidden"), 403),
    )
    informer = Informer(client, PODS)
    async with running(informer):
        await kit.eventually(lambda: len(script.requests_of("watch")) == 3)
    versions = [r.url.params["resourceVersion"] for r in script.requests_of("watch")]
    # The reset resumes from the last seen rv; the 403 forces a relist (rv 8).
    assert versions == ["5", "6", "8"]
    assert len(script.requests_of("list")) == 2


async def test_empty_short_watches_back_off(client: KubeClient, script: Any, kit: Any) -> None:
    script.add("list", kit.list_response([], "5"))
    for _ in range(1000):
        script.add("watch", kit.watch_response())
    informer = Informer(client, PODS)
    async with running(informer):
        await asyncio.sleep(0.4)
    # Without backoff this would be hundreds of requests. With it (0.2 s doubling, jittered
    # down to half), the watches start at 0 s, 0.1-0.2 s, 0.3-0.6 s, 0.7-1.4 s ...
    assert 2 <= len(script.requests_of("watch")) <= 3


async def test_transform_and_full_objects(client: KubeClient, script: Any, kit: Any) -> None:
    item = kit.obj("s", "1")
    item["data"] = {"k": "v"}
    item["spec"] = {"big": "x" * 100}
    script.add("list", kit.list_response([item], "1"))

    def drop_spec(obj: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in obj.items() if k != "spec"}

    informer = Informer(client, PODS, transform=drop_spec)
    async with running(informer):
        await informer.wait_synced()
    stored = informer.store.get("ns", "s")
    assert stored is not None and stored["data"] == {"k": "v"} and "spec" not in stored
