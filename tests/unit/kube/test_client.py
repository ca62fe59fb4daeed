"""KubeClient over httpx.MockTransport: verbs, pagination, retries, watch streams, throttling.

Requests are counted where they arrive: at the mock transport (the fake server's log).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from nats_tower_operator.kube import (
    NACK_ACCOUNTS,
    PODS,
    SECRETS,
    AlreadyExists,
    Conflict,
    Gone,
    KubeClient,
    KubeConfig,
    KubeConnectionError,
    MalformedWatchEvent,
    NotFound,
    RetryPolicy,
    ServerError,
    TooManyRequests,
)

WRITE_VERBS = {"POST": "create", "PUT": "replace", "PATCH": "patch", "DELETE": "delete"}


def sent(script: Any) -> Counter[str]:
    """Requests that reached the transport by verb, every retry and list page included."""
    return Counter(WRITE_VERBS.get(r.method) or script.kind_of(r) for r in script.requests)


async def test_get_sends_user_agent_and_auth(client: KubeClient, script: Any, kit: Any) -> None:
    script.add("get", kit.json_response({"metadata": {"name": "s"}}))
    got = await client.get(SECRETS, "s", namespace="n")
    assert got == {"metadata": {"name": "s"}}
    req = script.requests[0]
    assert req.url.path == "/api/v1/namespaces/n/secrets/s"
    assert req.headers["User-Agent"] == "nats-tower-operator"
    assert req.headers["Authorization"] == "Bearer t0ken"
    assert sent(script) == {"get": 1}


async def test_list_follows_continue_tokens(client: KubeClient, script: Any, kit: Any) -> None:
    script.add(
        "list",
        kit.list_response([kit.obj("a", "1"), kit.obj("b", "2")], "10", cont="page2"),
        kit.list_response([kit.obj("c", "3")], "10"),
    )
    result = await client.list(
        PODS, namespace="n", label_selector="nats-tower.com/nats-tower-secret", limit=2,
        metadata_only=True,
    )  # fmt: skip
    assert [o["metadata"]["name"] for o in result.items] == ["a", "b", "c"]
    assert result.resource_version == "10"
    first, second = script.requests
    assert first.url.params["labelSelector"] == "nats-tower.com/nats-tower-secret"
    assert first.url.params["limit"] == "2" and "continue" not in first.url.params
    assert second.url.params["continue"] == "page2"
    assert second.url.params["labelSelector"] == "nats-tower.com/nats-tower-secret"
    assert "PartialObjectMetadataList" in first.headers["Accept"]
    assert sent(script) == {"list": 2}


async def test_list_restarts_once_when_continue_expires(
    client: KubeClient, script: Any, kit: Any
) -> None:
    expired = kit.json_response(kit.status(410, "Expired", "continue token expired"), 410)
    script.add(
        "list",
        kit.list_response([kit.obj("a", "1")], "10", cont="p2"),
        expired,
        kit.list_response([kit.obj("a", "1")], "12", cont="p2b"),
        kit.list_response([kit.obj("b", "2")], "12"),
    )
    result = await client.list(SECRETS, namespace="n")
    assert [o["metadata"]["name"] for o in result.items] == ["a", "b"]
    assert result.resource_version == "12"
    assert "continue" not in script.requests[2].url.params

    script.add(
        "list",
        kit.list_response([], "1", cont="x"),
        expired,
        kit.list_response([], "2", cont="y"),
        expired,
    )
    with pytest.raises(Gone):
        await client.list(SECRETS, namespace="n")


async def test_429_retry_after_is_honoured_for_writes(script: Any, kit: Any) -> None:
    retry = RetryPolicy(max_attempts=3, backoff_base=0.001, backoff_cap=0.001, retry_after_cap=0.1)
    busy = lambda _r: httpx.Response(  # noqa: E731
        429, headers={"Retry-After": "100"}, json=kit.status(429, "TooManyRequests")
    )
    script.add("write", busy, kit.json_response({"metadata": {"name": "s"}}, 201))
    async with KubeClient(
        KubeConfig(server="https://k"), transport=httpx.MockTransport(script), retry=retry
    ) as client:
        started = time.monotonic()
        await client.create(SECRETS, {"metadata": {"name": "s"}}, namespace="n")
        elapsed = time.monotonic() - started
        assert elapsed >= 0.09  # waited Retry-After, capped at retry_after_cap
        assert sent(script)["create"] == 2

        script.add("write", busy, busy, busy)
        with pytest.raises(TooManyRequests) as info:
            await client.create(SECRETS, {"metadata": {"name": "s"}}, namespace="n")
        assert info.value.retry_after == 100
        assert sent(script)["create"] == 5  # bounded: 3 attempts


async def test_5xx_retried_for_reads_only(client: KubeClient, script: Any, kit: Any) -> None:
    fail = kit.json_response(kit.status(503, "ServiceUnavailable"), 503)
    script.add("get", fail, fail, kit.json_response({"metadata": {"name": "s"}}))
    assert (await client.get(SECRETS, "s", namespace="n"))["metadata"]["name"] == "s"
    assert sent(script)["get"] == 3

    script.add("get", fail, fail, fail, fail, fail)
    with pytest.raises(ServerError):
        await client.get(SECRETS, "s", namespace="n")
    assert sent(script)["get"] == 3 + 4  # FAST_RETRY allows 4 attempts
    script.queues["get"].clear()

    for verb in ("create", "replace", "patch", "delete"):
        script.add("write", kit.json_response(kit.status(500, "InternalError"), 500))
        with pytest.raises(ServerError):
            if verb == "create":
                await client.create(SECRETS, {"metadata": {"name": "s"}}, namespace="n")
            elif verb == "replace":
                await client.replace(SECRETS, "s", {"metadata": {"name": "s"}}, namespace="n")
            elif verb == "patch":
                await client.patch(SECRETS, "s", {"data": {}}, namespace="n")
            else:
                await client.delete(SECRETS, "s", namespace="n")
        assert sent(script)[verb] == 1


async def test_connection_errors(client: KubeClient, script: Any, kit: Any) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    # Never sent: safe to retry a create.
    script.add("write", refuse, kit.json_response({"metadata": {"name": "s"}}, 201))
    await client.create(SECRETS, {"metadata": {"name": "s"}}, namespace="n")
    assert sent(script)["create"] == 2
    # Possibly processed: a create is not retried, a read is.
    script.add("write", timeout)
    with pytest.raises(KubeConnectionError) as info:
        await client.create(SECRETS, {"metadata": {"name": "s"}}, namespace="n")
    assert info.value.status == 0 and info.value.request_sent
    assert sent(script)["create"] == 3
    script.add("get", timeout, kit.json_response({"metadata": {"name": "s"}}))
    await client.get(SECRETS, "s", namespace="n")
    assert sent(script)["get"] == 2


async def test_typed_write_errors_are_not_retried(
    client: KubeClient, script: Any, kit: Any
) -> None:
    script.add("write", kit.json_response(kit.status(409, "AlreadyExists"), 409))
    with pytest.raises(AlreadyExists):
        await client.create(SECRETS, {"metadata": {"name": "s", "namespace": "n"}})
    script.add("write", kit.json_response(kit.status(409, "Conflict", "modified"), 409))
    with pytest.raises(Conflict):
        await client.replace(
            SECRETS, "s", {"metadata": {"name": "s", "namespace": "n", "resourceVersion": "1"}}
        )
    script.add("write", kit.json_response(kit.status(404, "NotFound"), 404))
    with pytest.raises(NotFound):
        await client.delete(SECRETS, "s", namespace="n", uid="u", resource_version="3")
    delete = script.requests[-1]
    assert delete.method == "DELETE"
    assert json.loads(delete.content)["preconditions"] == {"uid": "u", "resourceVersion": "3"}
    assert sent(script) == {"create": 1, "replace": 1, "delete": 1}


async def test_patch_content_type(client: KubeClient, script: Any, kit: Any) -> None:
    script.add("write", kit.json_response({"metadata": {"name": "p"}}))
    await client.patch(PODS, "p", [{"op": "add", "path": "/x", "value": 1}], namespace="n",
                       patch_type="json")  # fmt: skip
    req = script.requests[0]
    assert req.headers["Content-Type"] == "application/json-patch+json"
    assert json.loads(req.content) == [{"op": "add", "path": "/x", "value": 1}]


async def test_resource_served(client: KubeClient, script: Any, kit: Any) -> None:
    script.add("discovery", kit.json_response(kit.status(404, "NotFound"), 404))
    assert not await client.resource_served(NACK_ACCOUNTS)
    script.add("discovery", kit.json_response({"resources": [{"name": "streams"}]}))
    assert not await client.resource_served(NACK_ACCOUNTS)
    script.add("discovery", kit.json_response({"resources": [{"name": "accounts"}]}))
    assert await client.resource_served(NACK_ACCOUNTS)
    assert script.requests[0].url.path == "/apis/jetstream.nats.io/v1beta2"


async def _collect(client: KubeClient, **kw: Any) -> list[tuple[str, str | None]]:
    out = []
    async for event in client.watch(PODS, namespace="n", resource_version="5", **kw):
        out.append((event.type, event.resource_version))
    return out


async def test_watch_parses_lines_split_across_chunks(
    client: KubeClient, script: Any, kit: Any
) -> None:
    stream = (
        kit.event_line("ADDED", kit.obj("a", "6"))
        + kit.event_line("BOOKMARK", {"metadata": {"resourceVersion": "9"}})
        + b"\n"
        + kit.event_line("DELETED", kit.obj("a", "11"))
    )
    chunks = [stream[i : i + 7] for i in range(0, len(stream), 7)]
    script.add("watch", lambda _r: httpx.Response(200, stream=kit.ChunkStream(chunks)))
    events = await _collect(client, label_selector="x=y", metadata_only=True, timeout_seconds=60)
    assert events == [("ADDED", "6"), ("BOOKMARK", "9"), ("DELETED", "11")]
    req = script.requests[0]
    assert req.url.params["resourceVersion"] == "5"
    assert req.url.params["allowWatchBookmarks"] == "true"
    assert req.url.params["timeoutSeconds"] == "60"
    assert req.url.params["labelSelector"] == "x=y"
    assert "as=PartialObjectMetadata;" in req.headers["Accept"]
    assert req.extensions["timeout"]["read"] > 60
    assert sent(script) == {"watch": 1}


async def test_watch_last_line_without_newline(client: KubeClient, script: Any, kit: Any) -> None:
    line = kit.event_line("MODIFIED", kit.obj("a", "7")).rstrip(b"\n")
    script.add("watch", kit.watch_response(line))
    assert await _collect(client) == [("MODIFIED", "7")]


async def test_watch_error_events(client: KubeClient, script: Any, kit: Any) -> None:
    script.add(
        "watch",
        kit.watch_response(
            kit.event_line("ADDED", kit.obj("a", "6")),
            kit.event_line("ERROR", kit.status(410, "Expired", "too old resource version")),
        ),
    )
    seen = []
    with pytest.raises(Gone):
        async for event in client.watch(PODS, resource_version="1"):
            seen.append(event.type)
    assert seen == ["ADDED"]
    script.add("watch", kit.watch_response(kit.event_line("ERROR", kit.status(500, "Internal"))))
    with pytest.raises(ServerError):
        await _collect(client)
    script.add("watch", kit.watch_response(b"{not json}\n"))
    with pytest.raises(MalformedWatchEvent):
        await _collect(client)
    script.add("watch", kit.watch_response(b'{"type": "WHAT", "object": {}}\n'))
    with pytest.raises(MalformedWatchEvent):
        await _collect(client)


async def test_watch_broken_stream_and_open_failure(
    client: KubeClient, script: Any, kit: Any
) -> None:
    class Broken(httpx.AsyncByteStream):
        async def __aiter__(self) -> Any:
            yield kit.event_line("ADDED", kit.obj("a", "6"))
            raise httpx.RemoteProtocolError("peer closed connection")

    script.add("watch", lambda _r: httpx.Response(200, stream=Broken()))
    seen = []
    with pytest.raises(KubeConnectionError):
        async for event in client.watch(PODS, resource_version="1"):
            seen.append(event.type)
    assert seen == ["ADDED"]
    # Opening a watch is a read: a 5xx is retried before any event is seen.
    fail = kit.json_response(kit.status(500, "InternalError"), 500)
    script.add("watch", fail, kit.watch_response(kit.event_line("ADDED", kit.obj("b", "7"))))
    assert await _collect(client) == [("ADDED", "7")]
    script.add("watch", kit.json_response(kit.status(403, "Forbidden"), 403))
    with pytest.raises(Exception, match="403"):
        await _collect(client)


async def test_throttle_spaces_requests(script: Any, kit: Any) -> None:
    for _ in range(4):
        script.add("get", kit.json_response({"metadata": {"name": "s"}}))
    async with KubeClient(
        KubeConfig(server="https://k"), transport=httpx.MockTransport(script), qps=20, burst=1
    ) as client:
        started = time.monotonic()
        await asyncio.gather(*(client.get(SECRETS, "s", namespace="n") for _ in range(4)))
        # 1 token up front, then 3 more at 20/s: at least 0.15 s (a lower bound cannot flake).
        assert time.monotonic() - started >= 0.14
    for _ in range(50):
        script.add("get", kit.json_response({"metadata": {"name": "s"}}))
    async with KubeClient(
        KubeConfig(server="https://k"), transport=httpx.MockTransport(script), qps=0, burst=1
    ) as client:
        await asyncio.gather(*(client.get(SECRETS, "s", namespace="n") for _ in range(50)))
        assert sent(script)["get"] == 4 + 50  # the first client's 4, then these 50
