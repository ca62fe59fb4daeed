"""Named readiness and health checks, run concurrently with a per-check timeout.

A check is a callable returning ``bool`` or ``(bool, detail)``, or an awaitable of either;
``detail`` is a safe, human-readable reason shown in the probe body when the check fails. A
check that raises or takes longer than the timeout counts as failing; the reason is logged at
debug level and reported as a short detail (the exception type), never the exception text,
since checks may touch clients that carry credentials.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Check", "CheckRegistry", "CheckResult", "CheckSource"]

logger = logging.getLogger(__name__)

Outcome = bool | tuple[bool, str]
Check = Callable[[], Outcome | Awaitable[Outcome]]


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one named check."""

    name: str
    ok: bool
    detail: str = ""


class CheckSource(Protocol):
    """Something that can run readiness and health checks (a registry or a manager)."""

    async def run_ready_checks(self) -> list[CheckResult]:
        """Run every readiness check."""
        ...

    async def run_health_checks(self) -> list[CheckResult]:
        """Run every health (liveness) check."""
        ...


class CheckRegistry:
    """Holds named readiness and health checks and runs them."""

    def __init__(self, *, timeout: float = 5.0) -> None:
        self._timeout = timeout
        self._ready: dict[str, Check] = {}
        self._health: dict[str, Check] = {}

    def add_ready_check(self, name: str, check: Check) -> None:
        """Add a check that must pass before the process reports ready."""
        _add(self._ready, name, check)

    def add_health_check(self, name: str, check: Check) -> None:
        """Add a check that must pass for the process to report healthy."""
        _add(self._health, name, check)

    async def run_ready_checks(self) -> list[CheckResult]:
        """Run every readiness check concurrently."""
        return await self._run_all(self._ready)

    async def run_health_checks(self) -> list[CheckResult]:
        """Run every health check concurrently."""
        return await self._run_all(self._health)

    async def _run_all(self, checks: dict[str, Check]) -> list[CheckResult]:
        return list(await asyncio.gather(*(self._run(n, c) for n, c in checks.items())))

    async def _run(self, name: str, check: Check) -> CheckResult:
        try:
            async with asyncio.timeout(self._timeout):
                value = check()
                if inspect.isawaitable(value):
                    value = await value
        except TimeoutError:
            return CheckResult(name, False, f"timed out after {self._timeout:g}s")
        except Exception as exc:  # a failing check is a result, not a crash of the server
            logger.debug("check %s raised", name, exc_info=exc)
            return CheckResult(name, False, f"raised {type(exc).__name__}")
        if isinstance(value, tuple):
            ok, detail = bool(value[0]), str(value[1])
            return CheckResult(name, ok, "" if ok else (detail or "failed"))
        return CheckResult(name, bool(value), "" if value else "failed")


def _add(checks: dict[str, Check], name: str, check: Check) -> None:
    if name in checks:
        raise ValueError(f"a check named {name!r} already exists")
    checks[name] = check
