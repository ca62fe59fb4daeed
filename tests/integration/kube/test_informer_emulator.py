"""Informers against the emulator: resume after dropped watches, 410 relist, selectors, CRDs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from nats_tower_operator.emulator.crd import load_nack_accounts_crd
from nats_tower_operator.emulator.server import Emulator
from nats_tower_operator.kube import CRDS, NACK_ACCOUNTS, PODS, Informer, KubeClient

from .counting import CountingTransport

LABEL = "nats-tower.com/nats-tower-secret"


def pod(name: str, **labels: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "spec": {"containers": [{"name": "app", "image": "busybox:1.36"}]},
    }


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def __call__(self, type_: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        self.events.append((type_, obj["metadata"]["name"]))


@contextlib.asynccontextmanager
async def running(informer: Informer) -> AsyncIterator[Recorder]:
    recorder = Recorder()
    informer.add_handler(recorder)
    task = asyncio.create_task(informer.run())
    try:
        await asyncio.wait_for(informer.wait_synced(), 5)
        yield recorder
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def opened_watches(emu: Emulator) -> int:
    """Pod watches the emulator has accepted (its audit log records a watch once open)."""
    return sum(1 for r in emu.audit.records if (r.verb, r.resource) == ("watch", "pods"))


def names(informer: Informer) -> list[str]:
    return sorted(o["metadata"]["name"] for o in informer.store.list())


async def test_label_selected_metadata_informer(
    client: KubeClient, eventually: Callable[..., Any]
) -> None:
    await client.create(PODS, pod("before", **{LABEL: "s"}))
    await client.create(PODS, pod("unlabelled"))
    informer = Informer(client, PODS, namespace="default", label_selector=LABEL,
                        metadata_only=True)  # fmt: skip
    async with running(informer) as rec:
        assert names(informer) == ["before"]
        await client.create(PODS, pod("after", **{LABEL: "s"}))
        await client.patch(PODS, "unlabelled", {"metadata": {"labels": {LABEL: "t"}}},
                           namespace="default")  # fmt: skip
        # Losing the label takes the pod out of the selected set: the server sends DELETED.
        await client.patch(PODS, "before", {"metadata": {"labels": {LABEL: None}}},
                           namespace="default")  # fmt: skip
        await eventually(lambda: names(informer) == ["after", "unlabelled"])
    assert rec.events == [
        ("ADDED", "before"),
        ("ADDED", "after"),
        ("ADDED", "unlabelled"),
        ("DELETED", "before"),
    ]
    stored = informer.store.get("default", "after")
    assert stored is not None and set(stored) == {"apiVersion", "kind", "metadata"}
    assert stored["kind"] == "Pod"


async def test_resume_after_dropped_watches_without_relist(
    client: KubeClient,
    emu: Emulator,
    transport: CountingTransport,
    eventually: Callable[..., Any],
) -> None:
    informer = Informer(client, PODS, namespace="default")
    async with running(informer) as rec:
        await client.create(PODS, pod("a"))
        await eventually(lambda: names(informer) == ["a"])
        emu.faults.drop_watches()  # clean end of stream
        await client.create(PODS, pod("b"))
        await eventually(lambda: names(informer) == ["a", "b"])
        emu.faults.drop_watches(abort=True)  # connection cut mid-stream
        await client.create(PODS, pod("c"))
        await client.delete(PODS, "a", namespace="default")
        await eventually(lambda: names(informer) == ["b", "c"])
    assert rec.events == [("ADDED", "a"), ("ADDED", "b"), ("ADDED", "c"), ("DELETED", "a")]
    assert transport.sent["list pods"] == 1
    assert transport.sent["watch pods"] >= 3


async def test_relist_after_history_compaction(
    client: KubeClient,
    emu: Emulator,
    transport: CountingTransport,
    eventually: Callable[..., Any],
) -> None:
    await client.create(PODS, pod("gone-soon"))
    await client.create(PODS, pod("stays"))
    informer = Informer(client, PODS, namespace="default")
    async with running(informer) as rec:
        # The informer streams: the emulator has opened its first watch.
        await eventually(lambda: opened_watches(emu) == 1)
        # Hold the next watch request while the world changes and history is compacted.
        emu.faults.delay(0.5, count=1, path="watch=true")
        emu.faults.drop_watches()
        await eventually(lambda: transport.sent["watch pods"] >= 2)  # the one held
        await client.delete(PODS, "gone-soon", namespace="default")
        await client.create(PODS, pod("new"))
        emu.faults.compact()
        await eventually(lambda: names(informer) == ["new", "stays"])
    assert transport.sent["list pods"] == 2
    assert rec.events[2:] == [("ADDED", "new"), ("DELETED", "gone-soon")]


async def test_crd_absent_then_installed(
    client: KubeClient, eventually: Callable[..., Any]
) -> None:
    assert not await client.resource_served(NACK_ACCOUNTS)
    informer = Informer(client, NACK_ACCOUNTS, namespace="default", metadata_only=True,
                        not_served_poll_interval=0.05)  # fmt: skip
    async with running(informer) as rec:
        assert not informer.served and len(informer.store) == 0
        await client.create(CRDS, load_nack_accounts_crd())
        await eventually(lambda: informer.served)
        await client.create(
            NACK_ACCOUNTS,
            {"metadata": {"name": "team-a", "namespace": "default", "labels": {LABEL: "x"}},
             "spec": {"name": "team-a"}},
        )  # fmt: skip
        await eventually(lambda: names(informer) == ["team-a"])
    assert await client.resource_served(NACK_ACCOUNTS)
    assert rec.events == [("ADDED", "team-a")]
    stored = informer.store.get("default", "team-a")
    assert stored is not None and stored["kind"] == "Account" and "spec" not in stored


async def test_transient_list_failures_back_off_and_recover(
    client: KubeClient, emu: Emulator, transport: CountingTransport
) -> None:
    await client.create(PODS, pod("p"))
    # More 500s than the client retries: the informer's own backoff takes over.
    emu.faults.fail_next(6, status=500, path="/pods")
    informer = Informer(client, PODS, namespace="default")
    async with running(informer):
        assert names(informer) == ["p"]
    assert transport.sent["list pods"] >= 6
