"""The official async client (kubernetes_asyncio): list/watch resume, 409 conflicts, 410."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from kubernetes_asyncio import client, config, watch

from nats_tower_operator.emulator import Emulator

from .conftest import pod


@pytest.fixture
async def api(emu: Emulator, tmp_path: Path) -> AsyncIterator[client.ApiClient]:
    configuration = client.Configuration()
    await config.load_kube_config(
        config_file=str(emu.write_kubeconfig(tmp_path / "kubeconfig")),
        client_configuration=configuration,
    )
    async with client.ApiClient(configuration) as api_client:
        yield api_client


async def _watch(func, *args, count: int, **kwargs):  # type: ignore[no-untyped-def]
    events = []
    w = watch.Watch()
    async with w.stream(func, *args, **kwargs) as stream:
        async for event in stream:
            events.append(event)
            if len(events) >= count:
                break
    return events


async def test_list_then_watch_resumes_from_resource_version(
    api: client.ApiClient, emu: Emulator
) -> None:
    v1 = client.CoreV1Api(api)
    emu.store.write(pod("before"))
    listed = await v1.list_namespaced_pod("default")
    assert [p.metadata.name for p in listed.items] == ["before"]
    rv = listed.metadata.resource_version
    emu.store.write(pod("after-list"))
    events = await asyncio.wait_for(
        _watch(v1.list_namespaced_pod, "default", resource_version=rv, count=1, timeout_seconds=5),
        10,
    )
    assert [(e["type"], e["object"].metadata.name) for e in events] == [("ADDED", "after-list")]
    resume_from = events[0]["object"].metadata.resource_version
    emu.store.write(pod("after-watch"))
    emu.store.remove("pods", "before", "default")
    resumed = await asyncio.wait_for(
        _watch(
            v1.list_namespaced_pod,
            "default",
            resource_version=resume_from,
            count=2,
            timeout_seconds=5,
        ),
        10,
    )
    assert [(e["type"], e["object"].metadata.name) for e in resumed] == [
        ("ADDED", "after-watch"),
        ("DELETED", "before"),
    ]


async def test_stale_update_raises_409(api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    created = await v1.create_namespaced_secret(
        "default",
        client.V1Secret(metadata=client.V1ObjectMeta(name="s"), string_data={"nats.creds": "x"}),
    )
    assert created.data == {"nats.creds": "eA=="}
    created.metadata.labels = {"a": "1"}
    await v1.replace_namespaced_secret("s", "default", created)
    created.metadata.labels = {"a": "2"}
    with pytest.raises(client.ApiException) as info:
        await v1.replace_namespaced_secret("s", "default", created)
    assert info.value.status == 409
    with pytest.raises(client.ApiException) as exists:
        await v1.create_namespaced_secret(
            "default", client.V1Secret(metadata=client.V1ObjectMeta(name="s"))
        )
    assert exists.value.status == 409
    patched = await v1.patch_namespaced_secret("s", "default", {"metadata": {"labels": {"b": "2"}}})
    assert patched.metadata.labels == {"a": "1", "b": "2"}


async def test_watch_from_compacted_history_raises_410(
    api: client.ApiClient, emu: Emulator
) -> None:
    v1 = client.CoreV1Api(api)
    rv = (await v1.list_namespaced_pod("default")).metadata.resource_version
    emu.store.write(pod("p"))
    emu.faults.compact()
    with pytest.raises(client.ApiException) as info:
        await asyncio.wait_for(
            _watch(
                v1.list_namespaced_pod, "default", resource_version=rv, count=1, timeout_seconds=5
            ),
            10,
        )
    assert info.value.status == 410


async def test_bookmarks_reach_the_client(api: client.ApiClient, emu: Emulator) -> None:
    v1 = client.CoreV1Api(api)
    rv = (await v1.list_namespaced_pod("default")).metadata.resource_version
    events = await asyncio.wait_for(
        _watch(
            v1.list_namespaced_pod,
            "default",
            resource_version=rv,
            allow_watch_bookmarks=True,
            count=1,
            timeout_seconds=5,
        ),
        10,
    )
    assert events[0]["type"] == "BOOKMARK"


async def test_leases_and_events(api: client.ApiClient) -> None:
    coordination = client.CoordinationV1Api(api)
    lease = await coordination.create_namespaced_lease(
        "default",
        client.V1Lease(
            metadata=client.V1ObjectMeta(name="leader"),
            spec=client.V1LeaseSpec(holder_identity="me", lease_duration_seconds=15),
        ),
    )
    assert lease.spec.holder_identity == "me"
    events = client.EventsV1Api(api)
    import datetime

    event = await events.create_namespaced_event(
        "default",
        client.EventsV1Event(
            metadata=client.V1ObjectMeta(generate_name="test."),
            event_time=datetime.datetime.now(datetime.UTC),
            reporting_controller="nats-tower.com/operator",
            reporting_instance="op-1",
            action="Reconcile",
            reason="Created",
            type="Normal",
            note="created",
            regarding=client.V1ObjectReference(kind="Pod", name="test", namespace="default"),
        ),
    )
    assert event.metadata.name.startswith("test.")
    core = await client.CoreV1Api(api).list_namespaced_event("default")
    assert [e.reason for e in core.items] == ["Created"]
