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
    last_written: float


@dataclass(slots=True)
class _Budget:
    tokens: float
    updated: float


class EventRecorder:
    """Write Events for reconcilers; failures are logged, never raised.

    An event identical to one recorded for the same object within ``aggregate_window``
    seconds increments that event's ``count`` instead of creating a new one; the new count
    is written (merge patch) at most once per ``repeat_interval``. At most
    ``max_events_per_object`` new events are created per object per ``spam_window``
    seconds. Every write (create or patch) also takes a token from its namespace's bucket
    (``namespace_rate`` per second, ``namespace_burst`` at most), so one namespace cannot
    spend more than its share of the operator's API budget on Events; what is over budget
    is dropped (a repeat's count is kept and written with the next repeat).
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
        repeat_interval: float = 10.0,
        namespace_rate: float = 1.0,
        namespace_burst: int = 25,
        cache_size: int = 4096,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self.component = component
        self.host = host
        self._max_per_object = max_events_per_object
        self._spam_window = spam_window
        self._aggregate_window = aggregate_window
        self._repeat_interval = repeat_interval
        self._namespace_rate = namespace_rate
        self._namespace_burst = namespace_burst
        self._cache_size = cache_size
        self._clock = clock
        self._aggregates: OrderedDict[tuple[str, str, str, str], _Aggregate] = OrderedDict()
        self._recent: OrderedDict[str, deque[float]] = OrderedDict()
        self._budgets: OrderedDict[str, _Budget] = OrderedDict()
        self._last_stamp = 0
        #: Events (new or repeats) not written because their namespace was over budget.
        self.dropped = 0

    def _afford(self, namespace: str, now: float) -> bool:
        """Take one write from ``namespace``'s token bucket, if it has one."""
        budget = self._budgets.get(namespace)
        if budget is None:
            budget = self._budgets[namespace] = _Budget(float(self._namespace_burst), now)
            if len(self._budgets) > self._cache_size:
                self._budgets.popitem(last=False)
        self._budgets.move_to_end(namespace)
        budget.tokens = min(
            float(self._namespace_burst),
            budget.tokens + (now - budget.updated) * self._namespace_rate,
        )
        budget.updated = now
        if budget.tokens < 1.0:
            self.dropped += 1
            return False
        budget.tokens -= 1.0
        return True

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

    async def _repeat(
        self, key: tuple[str, str, str, str], aggregate: _Aggregate, namespace: str, now: float
    ) -> bool:
        """Count a repeat (written now or with a later one); False: the Event is gone."""
        aggregate.count += 1
        aggregate.last_seen = now
        self._aggregates.move_to_end(key)
        if now - aggregate.last_written < self._repeat_interval or not self._afford(namespace, now):
            return True
        try:
            await self._client.patch(
                EVENTS,
                aggregate.name,
                {"count": aggregate.count, "lastTimestamp": _timestamp(now)},
                namespace=aggregate.namespace,
            )
        except NotFound:
            del self._aggregates[key]
            return False
        aggregate.last_written = now
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
        recent = aggregate is not None and now - aggregate.last_seen <= self._aggregate_window
        if recent and aggregate is not None and await self._repeat(key, aggregate, namespace, now):
            return

        if not self._allow_new(object_key, now) or not self._afford(namespace, now):
            logger.debug(
                "event dropped by the spam filter or the namespace's budget",
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
        self._aggregates[key] = _Aggregate(event_name, namespace, 1, now, now)
        self._aggregates.move_to_end(key)
        if len(self._aggregates) > self._cache_size:
            self._aggregates.popitem(last=False)
