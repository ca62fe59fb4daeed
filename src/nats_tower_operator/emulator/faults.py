"""Fault injection for tests: failing or slow requests, dropped watches, compacted history.

All faults are plain methods on :class:`Faults` (in-process) and are also reachable over
HTTP under ``/_emulator/faults/...`` (see :mod:`nats_tower_operator.emulator.app`) for
tests that drive a separate emulator process. ``method`` filters on the HTTP method,
``path`` is a regular expression searched in the request path plus query string
(for example ``"/pods"`` or ``"watch=true"``).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from nats_tower_operator.emulator import errors
from nats_tower_operator.emulator.errors import ApiError
from nats_tower_operator.emulator.store import Store

__all__ = ["Faults"]

_REASONS = {
    429: "TooManyRequests",
    500: "InternalError",
    502: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


@dataclass(slots=True)
class _Rule:
    method: str | None
    path: re.Pattern[str] | None
    remaining: int | None

    def matches(self, method: str, path_qs: str) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path is None or self.path.search(path_qs) is not None

    def consume(self) -> None:
        if self.remaining is not None:
            self.remaining -= 1


@dataclass(slots=True)
class _Failure(_Rule):
    status: int = 500
    retry_after: int = 1


@dataclass(slots=True)
class _Delay(_Rule):
    seconds: float = 0.0


class Faults:
    """The emulator's fault switches."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._failures: list[_Failure] = []
        self._delays: list[_Delay] = []
        self.injected = 0

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int = 500,
        retry_after: int = 1,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        """Answer the next ``count`` matching requests with ``status`` (500, 429 ...).

        429 answers carry ``Retry-After: retry_after`` and ``details.retryAfterSeconds``
        like API Priority and Fairness rejections.
        """
        self._failures.append(
            _Failure(method, re.compile(path) if path else None, count, status, retry_after)
        )

    def delay(
        self,
        seconds: float,
        *,
        count: int | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        """Delay matching requests by ``seconds`` (the next ``count``, or all when None)."""
        self._delays.append(_Delay(method, re.compile(path) if path else None, count, seconds))

    def drop_watches(self, *, abort: bool = False) -> int:
        """End every open watch stream; ``abort`` cuts connections instead of ending cleanly."""
        return self._store.hub.drop_all(abort=abort)

    def compact(self) -> int:
        """Compact history: older resourceVersions and continue tokens now answer 410."""
        return self._store.compact()

    def clear(self) -> None:
        """Remove all pending failures and delays."""
        self._failures.clear()
        self._delays.clear()

    async def apply(self, method: str, path_qs: str) -> None:
        """Run the delays and raise the failure that apply to one request."""
        for rule in self._delays:
            if rule.matches(method, path_qs):
                rule.consume()
                await asyncio.sleep(rule.seconds)
        self._delays = [r for r in self._delays if r.remaining is None or r.remaining > 0]
        for failure in self._failures:
            if failure.matches(method, path_qs):
                failure.consume()
                self._failures = [
                    r for r in self._failures if r.remaining is None or r.remaining > 0
                ]
                self.injected += 1
                raise _failure_error(failure)


def _failure_error(rule: _Failure) -> ApiError:
    if rule.status == 429:
        return errors.too_many_requests(rule.retry_after)
    if rule.status == 500:
        return errors.internal_error("injected fault")
    reason = _REASONS.get(rule.status, "InternalError")
    headers = {"Retry-After": str(rule.retry_after)} if rule.status in (503, 504) else None
    return ApiError(
        errors.status_body(
            code=rule.status,
            reason=reason,
            message=f"injected fault ({rule.status})",
            details={"retryAfterSeconds": rule.retry_after} if headers else None,
        ),
        headers=headers,
    )
