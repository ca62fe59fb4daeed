"""The async Kubernetes API client: a thin httpx shell around the pure request/response core.

It adds what needs I/O: connection pooling, authentication, client-side throttling,
bounded retries and streaming watches. Every failure surfaces as a typed
:class:`~nats_tower_operator.kube.errors.KubeError`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncGenerator, Callable, Mapping
from types import TracebackType
from typing import Any

import httpx

from .auth import BearerTokenAuth
from .config import KubeConfig
from .errors import Gone, KubeConnectionError, KubeError, NotFound, error_from_response
from .models import JSON, ObjectList, WatchEvent
from .requests import (
    ApiRequest,
    PatchType,
    create_request,
    decode_object,
    delete_request,
    discovery_request,
    discovery_serves,
    get_request,
    list_page,
    list_request,
    patch_request,
    replace_request,
    watch_request,
)
from .resources import Resource
from .retry import RetryPolicy
from .throttle import TokenBucket
from .watch import LineBuffer, parse_watch_line, watch_error

__all__ = ["KubeClient"]

logger = logging.getLogger(__name__)

_Items = list[JSON]
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def _connection_error(req: ApiRequest, exc: httpx.RequestError) -> KubeConnectionError:
    detail = str(exc) or type(exc).__name__
    return KubeConnectionError(
        f"{req.method} {req.path}: {type(exc).__name__}: {detail}",
        request_sent=not isinstance(exc, _NOT_SENT),
    )


def _decode_event(line: bytes) -> WatchEvent:
    event = parse_watch_line(line)
    if event.type == "ERROR":
        raise watch_error(event)
    return event


class KubeClient:
    """An async client for the parts of the Kubernetes API the operator uses.

    ``qps``/``burst`` configure a client-side token bucket shared by all requests
    (``qps <= 0`` disables it). ``transport`` replaces the HTTP transport (tests pass
    ``httpx.MockTransport``, or wrap the real one to count or fault requests).
    """

    def __init__(  # noqa: PLR0913 - keyword-only client options
        self,
        config: KubeConfig,
        *,
        qps: float = 500.0,
        burst: int = 1000,
        timeout: float = 30.0,
        max_connections: int = 100,
        transport: httpx.AsyncBaseTransport | None = None,
        user_agent: str = "nats-tower-operator",
        retry: RetryPolicy | None = None,
    ) -> None:
        self.config = config
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self._rand = random.Random()
        self._bucket = TokenBucket(qps, burst) if qps > 0 else None
        auth = (
            BearerTokenAuth(token=config.token, token_file=config.token_file)
            if config.token or config.token_file
            else None
        )
        self._http = httpx.AsyncClient(
            base_url=config.server,
            auth=auth,
            verify=config.ssl_context() if transport is None else True,
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            transport=transport,
            headers={"User-Agent": user_agent},
        )

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    # -- the shell: throttle, send, retry -------------------------------------------------

    async def _send(
        self, req: ApiRequest, *, stream: bool = False, timeout: httpx.Timeout | None = None
    ) -> httpx.Response:
        """Send ``req`` with throttling and the retry policy; return a < 400 response."""
        attempt = 0
        while True:
            attempt += 1
            if self._bucket is not None:
                await self._bucket.acquire()
            http_request = self._http.build_request(
                req.method,
                req.path,
                params=req.params,
                headers=dict(req.headers),
                content=req.body,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
            error: KubeError
            try:
                response = await self._http.send(http_request, stream=stream)
            except httpx.RequestError as exc:
                error = _connection_error(req, exc)
            else:
                if response.status_code < 400:
                    return response
                try:
                    body = await response.aread()
                except httpx.RequestError:
                    body = b""
                finally:
                    await response.aclose()
                error = error_from_response(response.status_code, body, response.headers)
            delay = self._retry.delay(error, attempt=attempt, is_read=req.is_read, rand=self._rand)
            if delay is None:
                raise error
            logger.debug(
                "retrying Kubernetes API request",
                extra={
                    "verb": req.verb,
                    "resource": req.plural,
                    "status": error.status,
                    "reason": error.reason,
                    "attempt": attempt,
                    "delay": round(delay, 3),
                },
            )
            await asyncio.sleep(delay)

    async def _json(self, req: ApiRequest) -> JSON:
        response = await self._send(req)
        return decode_object(response.status_code, response.content, response.headers)

    # -- reads -----------------------------------------------------------------------------

    async def get(
        self,
        resource: Resource,
        name: str,
        *,
        namespace: str | None = None,
        metadata_only: bool = False,
    ) -> JSON:
        """Read one object; raises :class:`NotFound` when it does not exist."""
        return await self._json(
            get_request(resource, name, namespace=namespace, metadata_only=metadata_only)
        )

    async def list(  # noqa: PLR0913 - keyword-only list parameters of the Kubernetes API
        self,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int = 500,
        metadata_only: bool = False,
        transform: Callable[[JSON], JSON] | None = None,
    ) -> ObjectList:
        """List all matching objects, following ``continue`` tokens.

        ``transform`` is applied to each page's items as the page arrives, so a list of big
        objects (Secrets with data) holds at most one page of them at a time. If a continue
        token expires (410) mid-way, the list restarts from the beginning once.
        """
        items: _Items = []
        token: str | None = None
        restarted = False
        while True:
            req = list_request(
                resource,
                namespace=namespace,
                label_selector=label_selector,
                field_selector=field_selector,
                limit=limit,
                continue_token=token,
                metadata_only=metadata_only,
            )
            try:
                data = await self._json(req)
            except Gone:
                if token is None or restarted:
                    raise
                logger.info(
                    "list continue token expired; restarting the list",
                    extra={"resource": resource.plural, "namespace": namespace},
                )
                restarted, items, token = True, [], None
                continue
            page, resource_version, token = list_page(resource, data)
            del data
            items.extend(map(transform, page) if transform is not None else page)
            if token is None:
                return ObjectList(items=items, resource_version=resource_version)

    async def watch(  # noqa: PLR0913 - keyword-only watch parameters of the Kubernetes API
        self,
        resource: Resource,
        *,
        namespace: str | None = None,
        resource_version: str,
        label_selector: str | None = None,
        field_selector: str | None = None,
        metadata_only: bool = False,
        timeout_seconds: int = 300,
        allow_bookmarks: bool = True,
    ) -> AsyncGenerator[WatchEvent, None]:
        """Stream watch events after ``resource_version`` until the server ends the watch.

        An ``ERROR`` event raises its typed error (``Gone`` for 410: relist); a broken
        stream raises :class:`KubeConnectionError`; a malformed line raises
        ``MalformedWatchEvent``. Close the iterator (``contextlib.aclosing``) when
        stopping early.
        """
        req = watch_request(
            resource,
            resource_version=resource_version,
            namespace=namespace,
            label_selector=label_selector,
            field_selector=field_selector,
            metadata_only=metadata_only,
            timeout_seconds=timeout_seconds,
            allow_bookmarks=allow_bookmarks,
        )
        read_timeout = float(timeout_seconds) + max(30.0, self._timeout)
        timeout = httpx.Timeout(self._timeout, read=read_timeout)
        response = await self._send(req, stream=True, timeout=timeout)
        buffer = LineBuffer()
        try:
            try:
                async for chunk in response.aiter_bytes():
                    for line in buffer.feed(chunk):
                        yield _decode_event(line)
                for line in buffer.flush():
                    yield _decode_event(line)
            except httpx.RequestError as exc:
                raise _connection_error(req, exc) from None
        finally:
            await response.aclose()

    async def resource_served(self, resource: Resource) -> bool:
        """Whether the API server serves ``resource`` (discovery of its group version)."""
        try:
            data = await self._json(discovery_request(resource))
        except NotFound:
            return False
        return discovery_serves(data, resource.plural)

    # -- writes ----------------------------------------------------------------------------

    async def create(
        self, resource: Resource, body: Mapping[str, Any], *, namespace: str | None = None
    ) -> JSON:
        """Create an object (POST); raises :class:`AlreadyExists` if the name is taken."""
        return await self._json(create_request(resource, body, namespace=namespace))

    async def replace(
        self,
        resource: Resource,
        name: str,
        body: Mapping[str, Any],
        *,
        namespace: str | None = None,
    ) -> JSON:
        """Replace an object (PUT); a stale ``metadata.resourceVersion`` raises ``Conflict``."""
        return await self._json(replace_request(resource, name, body, namespace=namespace))

    async def patch(
        self,
        resource: Resource,
        name: str,
        patch: Mapping[str, Any] | _Items,
        *,
        namespace: str | None = None,
        patch_type: PatchType = "merge",
    ) -> JSON:
        """Patch an object with a merge (default), strategic-merge or JSON patch."""
        return await self._json(
            patch_request(resource, name, patch, namespace=namespace, patch_type=patch_type)
        )

    async def delete(
        self,
        resource: Resource,
        name: str,
        *,
        namespace: str | None = None,
        uid: str | None = None,
        resource_version: str | None = None,
        propagation_policy: str | None = None,
    ) -> None:
        """Delete an object; raises ``NotFound`` if absent, ``Conflict`` if a precondition fails."""
        await self._send(
            delete_request(
                resource,
                name,
                namespace=namespace,
                uid=uid,
                resource_version=resource_version,
                propagation_policy=propagation_policy,
            )
        )
