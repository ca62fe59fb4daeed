"""Watch machinery: a bounded per-resource event log and the watchers fed from it.

Every committed change is a :class:`Change` (ADDED/MODIFIED/DELETED with the new and the
previous object). :class:`WatchHub` appends it to the resource's :class:`EventLog` (the
retained window; older resourceVersions answer ``410``) and offers it to each registered
:class:`Watcher`, which applies its namespace/label/field filter exactly like the real
watch cache: an update that makes an object enter the selection is sent as ADDED, one that
makes it leave as DELETED (with the previous content and the event's resourceVersion).
Dispatch is synchronous, so a watcher's queue order is the commit order.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from nats_tower_operator.emulator.jsonutil import JsonObj
from nats_tower_operator.emulator.selectors import FieldSelector, LabelSelector

__all__ = [
    "Change",
    "EventLog",
    "StorageKey",
    "TooOld",
    "WatchHub",
    "WatchItem",
    "Watcher",
]

StorageKey = tuple[str, str]
"""Where a resource's objects live: ``(group, plural)`` of the storage resource."""

WatchItem = tuple[str, Any]
"""An item in a watcher's queue: (event type, object). ``CLOSE``/``ABORT`` end the stream."""


@dataclass(frozen=True, slots=True)
class Change:
    """One committed change. ``obj`` carries the change's resourceVersion."""

    rv: int
    type: str
    obj: JsonObj
    prev: JsonObj | None


class TooOld(Exception):
    """The requested resourceVersion is older than the retained event window."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


class EventLog:
    """The last ``capacity`` changes of one resource; older ones are compacted away."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._changes: deque[Change] = deque()
        self.compacted_rv = 0

    def append(self, change: Change) -> None:
        """Retain ``change``, evicting the oldest one when the window is full."""
        self._changes.append(change)
        if len(self._changes) > self._capacity:
            dropped = self._changes.popleft()
            self.compacted_rv = dropped.rv

    def since(self, rv: int) -> list[Change]:
        """Return the changes after ``rv`` in order; raise :class:`TooOld` if compacted."""
        if rv < self.compacted_rv:
            raise TooOld(rv, self.compacted_rv)
        out: list[Change] = []
        for change in reversed(self._changes):
            if change.rv <= rv:
                break
            out.append(change)
        out.reverse()
        return out

    def compact(self, up_to: int) -> None:
        """Forget every change up to and including ``up_to``."""
        while self._changes and self._changes[0].rv <= up_to:
            self._changes.popleft()
        self.compacted_rv = max(self.compacted_rv, up_to)

    def __len__(self) -> int:
        return len(self._changes)


FieldsOf = Callable[[JsonObj], Mapping[str, str]]


class Watcher:
    """One watch stream's filter and queue; the HTTP layer drains :attr:`queue`."""

    def __init__(
        self,
        *,
        key: StorageKey,
        namespace: str | None,
        label_selector: LabelSelector,
        field_selector: FieldSelector,
        fields_of: FieldsOf,
    ) -> None:
        self.key = key
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self._fields_of = fields_of
        self.queue: asyncio.Queue[WatchItem] = asyncio.Queue()
        self.closed = False

    def accepts(self, obj: JsonObj) -> bool:
        """Return whether ``obj`` is inside this watch's namespace and selectors."""
        meta = obj.get("metadata", {})
        if self.namespace is not None and meta.get("namespace", "") != self.namespace:
            return False
        if not self.label_selector.empty and not self.label_selector.matches(meta.get("labels")):
            return False
        return self.field_selector.empty or self.field_selector.matches(self._fields_of(obj))

    def offer(self, change: Change) -> None:
        """Translate ``change`` for this watcher's selection and enqueue it, if relevant."""
        if self.closed:
            return
        cur = change.type != "DELETED" and self.accepts(change.obj)
        old = change.prev is not None and self.accepts(change.prev)
        if cur and not old:
            self.queue.put_nowait(("ADDED", change.obj))
        elif cur and old:
            self.queue.put_nowait(("MODIFIED", change.obj))
        elif old:
            if change.type == "DELETED":
                self.queue.put_nowait(("DELETED", change.obj))
            else:
                assert change.prev is not None
                gone = dict(change.prev)
                gone["metadata"] = {**change.prev["metadata"], "resourceVersion": str(change.rv)}
                self.queue.put_nowait(("DELETED", gone))

    def push(self, kind: str, obj: Any) -> None:
        """Enqueue a synthetic event (initial ADDED, BOOKMARK, ERROR)."""
        if not self.closed:
            self.queue.put_nowait((kind, obj))

    def close(self, *, abort: bool = False) -> None:
        """End the stream after what is already queued (``abort``: cut the connection)."""
        if not self.closed:
            self.closed = True
            self.queue.put_nowait(("ABORT" if abort else "CLOSE", None))


class WatchHub:
    """Event logs and watchers of every resource; the single place changes are dispatched."""

    def __init__(self, *, window: int) -> None:
        self._window = window
        self._logs: dict[StorageKey, EventLog] = {}
        self._watchers: dict[StorageKey, set[Watcher]] = {}
        self._floor = 0

    def log(self, key: StorageKey) -> EventLog:
        """Return (creating on first use) the event log of ``key``."""
        log = self._logs.get(key)
        if log is None:
            log = self._logs[key] = EventLog(self._window)
            log.compacted_rv = self._floor
        return log

    def publish(self, key: StorageKey, change: Change) -> None:
        """Record ``change`` and offer it to the watchers of ``key``."""
        self.log(key).append(change)
        for watcher in tuple(self._watchers.get(key, ())):
            watcher.offer(change)

    def subscribe(
        self,
        watcher: Watcher,
        *,
        since: int | None,
        initial: Iterable[JsonObj] = (),
    ) -> None:
        """Register ``watcher``: queue ``initial`` objects as ADDED, or replay after ``since``.

        Raises :class:`TooOld` when ``since`` is older than the retained window.
        """
        if since is not None:
            for change in self.log(watcher.key).since(since):
                watcher.offer(change)
        for obj in initial:
            if watcher.accepts(obj):
                watcher.push("ADDED", obj)
        self._watchers.setdefault(watcher.key, set()).add(watcher)

    def unsubscribe(self, watcher: Watcher) -> None:
        """Forget ``watcher`` (its stream ended)."""
        self._watchers.get(watcher.key, set()).discard(watcher)

    def watchers(self) -> list[Watcher]:
        """Every open watcher."""
        return [w for ws in self._watchers.values() for w in ws]

    def drop_all(self, *, abort: bool = False) -> int:
        """Close every watch stream; return how many were open."""
        dropped = self.watchers()
        for watcher in dropped:
            watcher.close(abort=abort)
            self.unsubscribe(watcher)
        return len(dropped)

    def compact(self, up_to: int) -> None:
        """Forget all history up to ``up_to`` in every log (later resumes answer 410)."""
        for log in self._logs.values():
            log.compact(up_to)
        self._floor = max(self._floor, up_to)

    def forget(self, key: StorageKey) -> None:
        """Drop the log of a resource that is no longer served, closing its watchers."""
        for watcher in tuple(self._watchers.pop(key, ())):
            watcher.close()
        self._logs.pop(key, None)
