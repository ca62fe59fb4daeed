"""Pure decoding of a watch stream: newline-delimited JSON events across arbitrary chunks."""

from __future__ import annotations

import json

from .errors import KubeError, MalformedWatchEvent, error_from_status
from .models import WatchEvent

__all__ = ["EVENT_TYPES", "LineBuffer", "parse_watch_line", "watch_error"]

EVENT_TYPES = frozenset({"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"})
MAX_LINE = 64 * 1024 * 1024


class LineBuffer:
    """Split a byte stream into lines; a line may span any number of chunks."""

    def __init__(self) -> None:
        self._pending = bytearray()

    def feed(self, chunk: bytes) -> list[bytes]:
        """Add ``chunk`` and return the complete, non-blank lines it finished."""
        self._pending += chunk
        if b"\n" not in chunk:
            if len(self._pending) > MAX_LINE:
                raise MalformedWatchEvent("watch event larger than 64 MiB")
            return []
        *lines, rest = bytes(self._pending).split(b"\n")
        self._pending = bytearray(rest)
        return [line for line in lines if line.strip()]

    def flush(self) -> list[bytes]:
        """The unterminated last line, if any (the stream ended)."""
        rest, self._pending = bytes(self._pending), bytearray()
        return [rest] if rest.strip() else []


def parse_watch_line(line: bytes) -> WatchEvent:
    """Decode one watch line; raise :class:`MalformedWatchEvent` if it is not an event."""
    try:
        data = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        raise MalformedWatchEvent("watch line is not JSON") from None
    if not isinstance(data, dict):
        raise MalformedWatchEvent("watch line is not a JSON object")
    type_ = data.get("type")
    obj = data.get("object")
    if type_ not in EVENT_TYPES:
        raise MalformedWatchEvent(f"unknown watch event type {str(type_)[:40]!r}")
    if not isinstance(obj, dict):
        raise MalformedWatchEvent(f"{type_} watch event without an object")
    return WatchEvent(type=str(type_), object=obj)


def watch_error(event: WatchEvent) -> KubeError:
    """The typed error carried by an ``ERROR`` event (a Status object)."""
    code = event.object.get("code")
    status = code if isinstance(code, int) else 500
    return error_from_status(status, event.object)
