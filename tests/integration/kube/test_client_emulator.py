"""KubeClient against the emulator: CRUD semantics, conflicts, paging, metadata-only, faults.

Requests are counted at the client's transport (``counting.CountingTransport``).
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from nats_tower_operator.emulator.server import Emulator
from nats_tower_operator.kube import (
    LEASES,
    PODS,
    SECRETS,
    SELF_SUBJECT_ACCESS_REVIEWS,
    AlreadyExists,
    Conflict,
    EventRecorder,
    Gone,
    Invalid,
    KubeClient,
    KubeConfig,
    NotFound,
    ServerError,
)
from nats_tower_operator.kube.resources import EVENTS

from .counting import CountingTransport


def secret(name: str, **labels: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "type": "Opaque",
        "data": {"nats.creds": base64.b64encode(b"not really creds").decode()},
    }


def pod(name: str, **labels: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "spec": {"containers": [{"name": "app", "image": "busybox:1.36"}]},
    }


async def test_crud_preconditions_and_conflicts(client: KubeClient) -> None:
    created = await client.create(SECRETS, secret("s1"))
    uid = created["metadata"]["uid"]
    rv1 = created["metadata"]["resourceVersion"]
    with pytest.raises(AlreadyExists):
        await client.create(SECRETS, secret("s1"))

    fetched = await client.get(SECRETS, "s1", namespace="default")
    fetched["metadata"]["labels"] = {"a": "b"}
    replaced = await client.replace(SECRETS, "s1", fetched)
    assert replaced["metadata"]["resourceVersion"] != rv1
    with pytest.raises(Conflict):  # a stale resourceVersion is a precondition failure
        await client.replace(SECRETS, "s1", fetched)

    patched = await client.patch(
        SECRETS, "s1", {"metadata": {"labels": {"c": "d"}}}, namespace="default"
    )
    assert patched["metadata"]["labels"] == {"a": "b", "c": "d"}
    jp = await client.patch(
        SECRETS, "s1", [{"op": "remove", "path": "/metadata/labels/a"}], namespace="default",
        patch_type="json",
    )  # fmt: skip
    assert jp["metadata"]["labels"] == {"c": "d"}

    with pytest.raises(Conflict):
        await client.delete(SECRETS, "s1", namespace="default", uid="not-the-uid")
    await client.delete(SECRETS, "s1", namespace="default", uid=uid)
    with pytest.raises(NotFound):
        await client.get(SECRETS, "s1", namespace="default")
    with pytest.raises(NotFound):
        await client.delete(SECRETS, "s1", namespace="default")
    with pytest.raises(Invalid):
        await client.create(SECRETS, secret("Not_A_Valid_Name"))


async def test_metadata_only_get_list_watch(client: KubeClient) -> None:
    await client.create(SECRETS, secret("meta"))
    got = await client.get(SECRETS, "meta", namespace="default", metadata_only=True)
    assert got["kind"] == "PartialObjectMetadata" and "data" not in got
    listed = await client.list(SECRETS, namespace="default", metadata_only=True)
    assert [i["metadata"]["name"] for i in listed.items] == ["meta"]
    assert "data" not in listed.items[0]

    seen = []
    async for event in client.watch(
        SECRETS, namespace="default", resource_version=listed.resource_version,
        metadata_only=True, timeout_seconds=1,
    ):  # fmt: skip
        seen.append(event)
        if event.type == "BOOKMARK":
            await client.create(SECRETS, secret("meta2"))
        if event.type == "ADDED":
            break
    added = seen[-1]
    assert added.object["kind"] == "PartialObjectMetadata"
    assert added.object["metadata"]["name"] == "meta2" and "data" not in added.object


async def test_server_side_label_selector(client: KubeClient) -> None:
    label = "nats-tower.com/nats-tower-secret"
    await client.create(PODS, pod("labelled", **{label: "creds"}))
    await client.create(PODS, pod("other", app="web"))
    result = await client.list(PODS, namespace="default", label_selector=label)
    assert [p["metadata"]["name"] for p in result.items] == ["labelled"]
    result = await client.list(PODS, label_selector=f"{label},app notin (web)")
    assert [p["metadata"]["name"] for p in result.items] == ["labelled"]
    result = await client.list(PODS, namespace="default", label_selector="app=web")
    assert [p["metadata"]["name"] for p in result.items] == ["other"]


async def test_pagination_and_expired_continue_restart(emu: Emulator, tmp_path: Any) -> None:
    pages = 0

    class CompactAfterFirstPage(httpx.AsyncBaseTransport):
        """A real HTTP transport that compacts history after the first list page."""

        def __init__(self) -> None:
            self.inner = httpx.AsyncHTTPTransport()

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            nonlocal pages
            response = await self.inner.handle_async_request(request)
            if request.url.path.endswith("/secrets") and request.method == "GET":
                pages += 1
                if pages == 1:
                    emu.faults.compact()
            return response

        async def aclose(self) -> None:
            await self.inner.aclose()

    config = KubeConfig.from_kubeconfig(str(emu.write_kubeconfig(tmp_path / "kc")))
    counting = CountingTransport()
    async with KubeClient(config, transport=counting) as setup:
        for i in range(7):
            await setup.create(SECRETS, secret(f"s{i}"))
        result = await setup.list(SECRETS, namespace="default", limit=3)
        assert len(result.items) == 7 and counting.sent["list secrets"] == 3

    async with KubeClient(config, transport=CompactAfterFirstPage()) as client:
        # A write after the first page, so its continue token's revision gets compacted away.
        await client.create(SECRETS, secret("late"))
        result = await client.list(SECRETS, namespace="default", limit=3)
    names = sorted(i["metadata"]["name"] for i in result.items)
    assert names == sorted([f"s{i}" for i in range(7)] + ["late"])
    # 1 page, 410 on the 2nd, then a full restart of 3 pages.
    assert pages == 5


async def test_watch_from_compacted_revision_is_gone(client: KubeClient, emu: Emulator) -> None:
    first = await client.create(SECRETS, secret("old"))
    await client.create(SECRETS, secret("new"))
    emu.faults.compact()
    with pytest.raises(Gone):
        async for _ in client.watch(
            SECRETS, namespace="default", resource_version=first["metadata"]["resourceVersion"]
        ):
            pass


async def test_retry_policy_against_injected_faults(
    client: KubeClient, emu: Emulator, transport: CountingTransport
) -> None:
    await client.create(SECRETS, secret("f"))
    emu.faults.fail_next(2, status=500, method="GET")
    await client.get(SECRETS, "f", namespace="default")
    assert transport.sent["get secrets"] == 3

    emu.faults.fail_next(1, status=500, method="POST")
    with pytest.raises(ServerError):
        await client.create(SECRETS, secret("g"))
    assert transport.sent["create secrets"] == 2

    emu.faults.fail_next(2, status=429, retry_after=30, method="POST")
    await client.create(SECRETS, secret("g"))  # Retry-After honoured (capped by the policy)
    assert transport.sent["create secrets"] == 5

    emu.faults.fail_next(10, status=503, method="GET")
    with pytest.raises(ServerError):
        await client.get(SECRETS, "f", namespace="default")
    assert transport.sent["get secrets"] == 3 + 4  # bounded attempts
    emu.faults.clear()


async def test_event_recorder_aggregates_on_the_server(client: KubeClient) -> None:
    target = await client.create(PODS, pod("evented"))
    recorder = EventRecorder(client, host="test-host", repeat_interval=0.0)
    for _ in range(3):
        await recorder.record(target, "Warning", "MissingAccountLabel", "label missing")
    await recorder.record(target, "Normal", "Created", "secret created")
    events = (await client.list(EVENTS, namespace="default")).items
    by_reason = {e["reason"]: e for e in events}
    assert set(by_reason) == {"MissingAccountLabel", "Created"}
    missing = by_reason["MissingAccountLabel"]
    assert missing["count"] == 3 and missing["type"] == "Warning"
    assert missing["involvedObject"]["uid"] == target["metadata"]["uid"]
    assert missing["involvedObject"]["kind"] == "Pod"
    assert missing["source"] == {"component": "nats-tower-operator", "host": "test-host"}


async def test_leases_and_access_reviews(client: KubeClient) -> None:
    lease = await client.create(
        LEASES,
        {
            "metadata": {"name": "nats-tower-operator", "namespace": "default"},
            "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15},
        },
    )
    stale = dict(lease)
    lease["spec"]["holderIdentity"] = "b"
    await client.replace(LEASES, "nats-tower-operator", lease)
    stale["spec"] = {"holderIdentity": "c"}
    with pytest.raises(Conflict):
        await client.replace(LEASES, "nats-tower-operator", stale)

    review = await client.create(
        SELF_SUBJECT_ACCESS_REVIEWS,
        {
            "spec": {
                "resourceAttributes": {"namespace": "default", "verb": "create",
                                       "resource": "secrets"},
            }
        },
    )  # fmt: skip
    assert review["status"]["allowed"] is True
