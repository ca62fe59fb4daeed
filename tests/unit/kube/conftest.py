"""Helpers for kube unit tests: a scripted fake API server behind httpx.MockTransport."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from nats_tower_operator.kube import KubeClient, KubeConfig, RetryPolicy


class ChunkStream(httpx.AsyncByteStream):
    """A response body delivered in the given chunks, optionally hanging afterwards."""

    def __init__(self, chunks: list[bytes], *, hang: bool = False) -> None:
        self.chunks = chunks
        self.hang = hang

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            await asyncio.sleep(0)  # a yield, not a wait: each chunk is a separate read
            yield chunk
        if self.hang:
            await asyncio.Event().wait()


def event_line(type_: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": type_, "object": obj}).encode() + b"\n"


def obj(name: str, rv: str, namespace: str = "ns", **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "resourceVersion": rv}
    meta["uid"] = f"uid-{name}"
    meta.update(extra)
    return {"metadata": meta}


def status(code: int, reason: str, message: str = "") -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message or reason,
    }


Responder = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]


class Script:
    """Answers requests from per-kind queues of responders; records every request.

    Kinds: "list", "watch", "get", "discovery", "write". When the watch queue is empty the
    watch hangs (an idle, healthy stream) so informers settle.
    """

    def __init__(self) -> None:
        self.queues: dict[str, deque[Responder]] = {
            k: deque() for k in ("list", "watch", "get", "discovery", "write")
        }
        self.requests: list[httpx.Request] = []

    def kind_of(self, request: httpx.Request) -> str:
        if request.method != "GET":
            return "write"
        if request.url.params.get("watch") == "true":
            return "watch"
        path = request.url.path
        if path == "/api/v1" or (path.count("/") == 3 and path.startswith("/apis/")):
            return "discovery"
        last = path.rstrip("/").split("/")[-1]
        return "list" if last in ("pods", "secrets", "accounts", "events", "leases") else "get"

    def add(self, kind: str, *responders: Responder) -> None:
        self.queues[kind].extend(responders)

    def requests_of(self, kind: str) -> list[httpx.Request]:
        return [r for r in self.requests if self.kind_of(r) == kind]

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        kind = self.kind_of(request)
        queue = self.queues[kind]
        if not queue:
            if kind == "watch":
                return httpx.Response(200, stream=ChunkStream([], hang=True))
            return httpx.Response(500, json=status(500, "InternalError", f"unscripted {kind}"))
        result = queue.popleft()(request)
        if isinstance(result, httpx.Response):
            return result
        return await result


def json_response(body: Any, code: int = 200) -> Responder:
    return lambda _req: httpx.Response(code, json=body)


def list_response(items: list[dict[str, Any]], rv: str, cont: str | None = None) -> Responder:
    meta: dict[str, Any] = {"resourceVersion": rv}
    if cont:
        meta["continue"] = cont
    return json_response({"kind": "List", "apiVersion": "v1", "metadata": meta, "items": items})


def watch_response(*lines: bytes, hang: bool = False) -> Responder:
    return lambda _req: httpx.Response(200, stream=ChunkStream(list(lines), hang=hang))


FAST_RETRY = RetryPolicy(max_attempts=4, backoff_base=0.001, backoff_cap=0.005, retry_after_cap=1)


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
async def client(script: Script) -> AsyncIterator[KubeClient]:
    async with KubeClient(
        KubeConfig(server="https://kube.test", token="t0ken"),
        transport=httpx.MockTransport(script),
        retry=FAST_RETRY,
    ) as c:
        yield c


async def eventually(check: Callable[[], bool], timeout: float = 3.0) -> None:
    """Wait until ``check()`` is true, polling every 5 ms of loop time, for ``timeout`` seconds.

    Both are loop time: on the virtual clock (``virtual_time``) polling costs no real time and
    a loaded machine cannot make the deadline pass early.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


class Kit:
    """The helpers above, handed to test modules as a fixture (importlib mode)."""

    ChunkStream = ChunkStream
    Script = Script
    event_line = staticmethod(event_line)
    obj = staticmethod(obj)
    status = staticmethod(status)
    json_response = staticmethod(json_response)
    list_response = staticmethod(list_response)
    watch_response = staticmethod(watch_response)
    eventually = staticmethod(eventually)
    FAST_RETRY = FAST_RETRY


@pytest.fixture
def kit() -> type[Kit]:
    return Kit
