"""Counting a KubeClient's requests at its transport seam (no counter in the client itself).

:class:`CountingTransport` wraps the real HTTP transport and counts every request before it
is sent (retries and list pages included) as ``"<verb> <resource>"`` in RBAC terms, e.g.
``"list pods"``. Requests the emulator answers with an injected fault count too: they were
sent, which the emulator's audit log (it records a faulted request without its resource)
cannot show as well.
"""

from __future__ import annotations

from collections import Counter

import httpx

__all__ = ["CountingTransport", "request_key"]

_WRITE_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def request_key(request: httpx.Request) -> str:
    """``"<verb> <resource>"`` of one Kubernetes API request; discovery is ``"get discovery"``."""
    parts = [p for p in request.url.path.split("/") if p]
    rest = parts[2:] if parts[:1] == ["api"] else parts[3:]
    if len(rest) >= 3 and rest[0] == "namespaces":  # a namespaced resource
        rest = rest[2:]
    if not rest:
        return "get discovery"
    if request.method != "GET":
        return f"{_WRITE_VERBS.get(request.method, request.method.lower())} {rest[0]}"
    if request.url.params.get("watch") in ("true", "1"):
        return f"watch {rest[0]}"
    return f"{'get' if len(rest) > 1 else 'list'} {rest[0]}"


class CountingTransport(httpx.AsyncBaseTransport):
    """The real HTTP transport, counting each request in :attr:`sent` before sending it."""

    def __init__(self, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.inner = inner if inner is not None else httpx.AsyncHTTPTransport()
        self.sent: Counter[str] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent[request_key(request)] += 1
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()
