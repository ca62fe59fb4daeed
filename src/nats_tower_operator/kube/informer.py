"""List+watch informer: keeps a store of one resource current and notifies handlers.

The loop is kopf's three levels in one place: one watch stream at a time, list-then-watch
from a resourceVersion (``Gone`` means list again), and an outer loop that reconnects
forever with capped, jittered backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from typing import Any

from .client import KubeClient
from .errors import (
    Gone,
    KubeConnectionError,
    KubeError,
    MalformedWatchEvent,
    NotFound,
    ServerError,
    TooManyRequests,
)
from .models import JSON, WatchEvent
from .resources import Resource
from .retry import backoff_delay
from .store import Store, object_key

__all__ = ["Handler", "Informer", "Transform"]

logger = logging.getLogger(__name__)

Handler = Callable[[str, JSON, JSON | None], None]
"""``handler(event_type, obj, old_obj)``; called after the store changed; must be cheap."""

Transform = Callable[[JSON], JSON]
"""Shrinks an object before it is stored (applied after managedFields are dropped)."""

BACKOFF_BASE = 0.2
SHORT_WATCH = 1.0
_TRANSIENT = (KubeConnectionError, TooManyRequests, ServerError)


class Informer:
    """Keep :attr:`store` in sync with the objects of ``resource`` that match the selectors.

    ``run()`` loops until cancelled. Handlers see ``ADDED``/``MODIFIED``/``DELETED``; a relist
    synthesises them from the difference with the store. When the resource is not served
    (e.g. a CRD is not installed), the informer is synced and empty, and polls discovery
    every ``not_served_poll_interval`` seconds.
    """

    def __init__(  # noqa: PLR0913 - keyword-only informer options
        self,
        client: KubeClient,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        metadata_only: bool = False,
        transform: Transform | None = None,
        resync_backoff_cap: float = 30.0,
        not_served_poll_interval: float = 10.0,
        watch_timeout_seconds: int = 300,
        page_size: int = 500,
        name: str | None = None,
    ) -> None:
        self.client = client
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.metadata_only = metadata_only
        self.name = name or resource.plural
        self.store = Store()
        self.synced = asyncio.Event()
        self._transform = transform
        self._backoff_cap = resync_backoff_cap
        self._poll_interval = not_served_poll_interval
        self._watch_timeout = watch_timeout_seconds
        self._page_size = page_size
        self._handlers: list[Handler] = []
        self._served = True
        self._rv = ""
        self._failures = 0
        self._rand = random.Random()

    # -- public surface --------------------------------------------------------------------

    def add_handler(self, handler: Handler) -> None:
        """Call ``handler(type, obj, old)`` for every change, after the store is updated."""
        self._handlers.append(handler)

    @property
    def served(self) -> bool:
        """False while the API server does not serve the resource (last list was a 404)."""
        return self._served

    @property
    def resource_version(self) -> str:
        """The resourceVersion the next watch resumes from."""
        return self._rv

    async def wait_synced(self) -> None:
        """Wait until the first list has been applied (or the resource is known absent)."""
        await self.synced.wait()

    async def run(self) -> None:
        """List and watch forever (until cancelled)."""
        need_list = True
        while True:
            listing = need_list
            try:
                if need_list:
                    if not await self._list():
                        await self._poll_until_served()
                        continue
                    need_list = False
                await self._watch()
            except Gone as exc:
                if listing:
                    await self._fail("list expired", exc)
                else:
                    logger.info("watch expired; relisting", extra=self._extra())
                need_list = True
            except MalformedWatchEvent as exc:
                logger.warning(
                    "malformed watch event; relisting", extra=self._extra(error=exc.message)
                )
                need_list = True
            except _TRANSIENT as exc:
                await self._fail("list failed" if listing else "watch failed", exc)
            except KubeError as exc:
                await self._fail("list failed" if listing else "watch failed; relisting", exc)
                need_list = True

    # -- internals -------------------------------------------------------------------------

    def _extra(self, **fields: Any) -> dict[str, Any]:
        return {
            "informer": self.name,
            "resource": self.resource.plural,
            "namespace": self.namespace,
            "resource_version": self._rv,
            **fields,
        }

    async def _fail(self, what: str, exc: KubeError) -> None:
        self._failures += 1
        delay = backoff_delay(
            self._failures - 1, base=BACKOFF_BASE, cap=self._backoff_cap, rand=self._rand
        )
        if exc.retry_after is not None:
            delay = max(delay, min(exc.retry_after, self._backoff_cap))
        logger.warning(
            f"{what}; retrying",
            extra=self._extra(
                status=exc.status, reason=exc.reason, error=exc.message, delay=round(delay, 3)
            ),
        )
        await asyncio.sleep(delay)

    def _slim(self, obj: JSON) -> JSON:
        """What the store keeps: typed, without managedFields; only metadata if asked."""
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            raise MalformedWatchEvent("object without metadata")
        if "managedFields" in meta:
            meta = {k: v for k, v in meta.items() if k != "managedFields"}
        slim: JSON = {
            "apiVersion": self.resource.api_version,
            "kind": self.resource.kind,
            "metadata": meta,
        }
        if not self.metadata_only:
            slim.update(
                (k, v) for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")
            )
        return self._transform(slim) if self._transform is not None else slim

    def _slim_or_none(self, obj: JSON) -> JSON:
        """:meth:`_slim` for a list item; a malformed one becomes ``{}`` (skipped)."""
        try:
            return self._slim(obj)
        except MalformedWatchEvent as exc:
            logger.warning("skipping malformed list item", extra=self._extra(error=exc.message))
            return {}

    def _emit(self, type_: str, obj: JSON, old: JSON | None) -> None:
        for handler in self._handlers:
            try:
                handler(type_, obj, old)
            except Exception:
                logger.exception(
                    "informer handler failed; continuing", extra=self._extra(event=type_)
                )

    async def _list(self) -> bool:
        """List and replace the store; False when the resource is not served."""
        try:
            result = await self.client.list(
                self.resource,
                namespace=self.namespace,
                label_selector=self.label_selector,
                field_selector=self.field_selector,
                metadata_only=self.metadata_only,
                limit=self._page_size,
                # Each page is slimmed as it arrives: big objects never pile up.
                transform=self._slim_or_none,
            )
        except NotFound:
            if self._served:
                logger.warning(
                    "resource is not served by the API server; waiting for it to appear",
                    extra=self._extra(),
                )
            self._served = False
            self._rv = ""
            for change in self.store.replace(()):
                self._emit(*change)
            self.synced.set()
            return False
        entries = [(object_key(slim), slim) for slim in result.items if slim]
        self._served = True
        self._rv = result.resource_version
        self._failures = 0
        changes = self.store.replace(entries)
        logger.debug("listed", extra=self._extra(count=len(entries), changes=len(changes)))
        for change in changes:
            self._emit(*change)
        self.synced.set()
        return True

    async def _poll_until_served(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval)
            try:
                if await self.client.resource_served(self.resource):
                    logger.info("resource is now served; listing", extra=self._extra())
                    return
            except KubeError as exc:
                logger.debug(
                    "discovery failed while waiting for the resource",
                    extra=self._extra(status=exc.status, error=exc.message),
                )

    async def _watch(self) -> None:
        """Run one watch from the current resourceVersion until the stream ends."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        count = 0
        stream = self.client.watch(
            self.resource,
            namespace=self.namespace,
            resource_version=self._rv,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            metadata_only=self.metadata_only,
            timeout_seconds=self._watch_timeout,
            allow_bookmarks=True,
        )
        async with contextlib.aclosing(stream):
            async for event in stream:
                self._apply(event)
                count += 1
                self._failures = 0
        if count == 0 and loop.time() - started < SHORT_WATCH:
            await self._fail(
                "watch ended at once without events",
                KubeConnectionError("very short watch"),
            )
        else:
            logger.debug("watch ended; resuming", extra=self._extra(events=count))

    def _apply(self, event: WatchEvent) -> None:
        rv = event.resource_version
        if event.type == "BOOKMARK":
            if rv:
                self._rv = rv
            return
        obj = self._slim(event.object)
        key = object_key(obj)
        if event.type == "DELETED":
            old = self.store.pop(key)
            if rv:
                self._rv = rv
            self._emit("DELETED", obj, old)
            return
        old = self.store.put(key, obj)
        if rv:
            self._rv = rv
        self._emit("ADDED" if old is None else "MODIFIED", obj, old)
