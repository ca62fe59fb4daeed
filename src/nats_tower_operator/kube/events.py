"""Recording core/v1 Events about objects, with aggregation and a per-object spam filter."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from .client import KubeClient
from .errors import KubeError, NotFound
from .models import JSON
from .resources import EVENTS

__all__ = ["EventRecorder", "EventType"]

logger = logging.getLogger(__name__)

EventType = Literal["Normal", "Warning"]
MAX_MESSAGE = 1024
MAX_NAME = 253


def _timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(slots=True)
class _Aggregate:
    name: str
    namespace: str
    count: int
    last_seen: float


class EventRecorder:
    """Write Events for reconcilers; failures are logged, never raised.

    An event identical to one recorded for the same object within ``aggregate_window``
    seconds increments that event's ``count`` (merge patch) instead of creating a new
    one. At most ``max_events_per_object`` new events are created per object per
    ``spam_window`` seconds; the rest are dropped.
    """

    def __init__(  # noqa: PLR0913 - keyword-only recorder options
        self,
        client: KubeClient,
        *,
        component: str = "nats-tower-operator",
        host: str = "",
        max_events_per_object: int = 25,
        spam_window: float = 300.0,
        aggregate_window: float = 600.0,
        cache_size: int = 4096,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self.component = component
        self.host = host
        self._max_per_object = max_events_per_object
        self._spam_window = spam_window
        self._aggregate_window = aggregate_window
        self._cache_size = cache_size
        self._clock = clock
        self._aggregates: OrderedDict[tuple[str, str, str, str], _Aggregate] = OrderedDict()
        self._recent: OrderedDict[str, deque[float]] = OrderedDict()
        self._last_stamp = 0

    async def record(
        self, involved: Mapping[str, Any], type_: EventType, reason: str, message: str
    ) -> None:
        """Record an event about ``involved`` (an object with metadata) in its namespace."""
        try:
            await self._record(involved, type_, reason, message)
        except KubeError as exc:
            logger.warning(
                "failed to record event",
                extra={"reason": reason, "status": exc.status, "error": exc.message},
            )
        except (KeyError, TypeError, ValueError) as exc:
            logger.warning(
                "cannot record event for this object", extra={"reason": reason, "error": str(exc)}
            )
        except Exception:
            # Recording is best effort by contract: a failed event must never fail a reconcile.
            logger.warning(
                "unexpected error recording event", extra={"reason": reason}, exc_info=True
            )

    def _allow_new(self, object_key: str, now: float) -> bool:
        """The spam filter: count this creation unless the object hit its budget."""
        recent = self._recent.get(object_key)
        if recent is None:
            recent = self._recent[object_key] = deque()
            if len(self._recent) > self._cache_size:
                self._recent.popitem(last=False)
        self._recent.move_to_end(object_key)
        while recent and now - recent[0] >= self._spam_window:
            recent.popleft()
        if len(recent) >= self._max_per_object:
            return False
        recent.append(now)
        return True

    def _event_name(self, object_name: str, now: float) -> str:
        stamp = max(int(now * 1e9), self._last_stamp + 1)
        self._last_stamp = stamp
        suffix = f".{stamp:x}"
        return object_name[: MAX_NAME - len(suffix)] + suffix

    async def _record(
        self, involved: Mapping[str, Any], type_: EventType, reason: str, message: str
    ) -> None:
        meta = involved.get("metadata")
        if not isinstance(meta, Mapping) or not meta.get("name"):
            raise ValueError("involved object has no metadata.name")
        name = str(meta["name"])
        object_namespace = meta.get("namespace") or None
        namespace = str(object_namespace or "default")
        kind = str(involved.get("kind", ""))
        uid = str(meta.get("uid") or "")
        message = _truncate(message, MAX_MESSAGE)
        now = self._clock()
        object_key = uid or f"{namespace}/{kind}/{name}"
        key = (object_key, type_, reason, message)

        aggregate = self._aggregates.get(key)
        if aggregate is not None and now - aggregate.last_seen <= self._aggregate_window:
            try:
                await self._client.patch(
                    EVENTS,
                    aggregate.name,
                    {"count": aggregate.count + 1, "lastTimestamp": _timestamp(now)},
                    namespace=aggregate.namespace,
                )
            except NotFound:
                del self._aggregates[key]
            else:
                aggregate.count += 1
                aggregate.last_seen = now
                self._aggregates.move_to_end(key)
                return

        if not self._allow_new(object_key, now):
            logger.debug(
                "event dropped by the spam filter",
                extra={"object": f"{namespace}/{name}", "reason": reason},
            )
            return

        involved_object: JSON = {"name": name}
        for field, value in (
            ("apiVersion", involved.get("apiVersion")),
            ("kind", kind),
            ("namespace", object_namespace),
            ("uid", uid),
            ("resourceVersion", meta.get("resourceVersion")),
        ):
            if value:
                involved_object[field] = str(value)
        source: JSON = {"component": self.component}
        if self.host:
            source["host"] = self.host
        event_name = self._event_name(name, now)
        body: JSON = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": event_name, "namespace": namespace},
            "involvedObject": involved_object,
            "reason": reason,
            "message": message,
            "type": type_,
            "source": source,
            "reportingComponent": self.component,
            "reportingInstance": self.host or self.component,
            "firstTimestamp": _timestamp(now),
            "lastTimestamp": _timestamp(now),
            "count": 1,
        }
        await self._client.create(EVENTS, body, namespace=namespace)
        self._aggregates[key] = _Aggregate(event_name, namespace, 1, now)
        self._aggregates.move_to_end(key)
        if len(self._aggregates) > self._cache_size:
            self._aggregates.popitem(last=False)
