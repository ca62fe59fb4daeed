"""Is Tower usable with our token, for the installations we are configured with?

:class:`TowerReadiness` answers that for the operator's readiness probe and logs each
change of the answer. Real Tower never answers 401 to a wrong token (lists are just
empty), so "usable" needs positive proof: the token sees at least one installation, and
each configured installation exists. The answer is kept for ``interval`` seconds so that
probes do not load Tower; :meth:`run` refreshes it in the background and logs changes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from .client import TowerClient
from .errors import InstallationNotFound, TowerError, TowerUnauthorized

__all__ = ["TowerReadiness"]

log = logging.getLogger(__name__)


class TowerReadiness:
    """Positive proof that Tower answers for our installations with our token."""

    name = "tower-readiness"

    def __init__(
        self,
        client: TowerClient,
        installations: Iterable[str],
        *,
        interval: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._installations = tuple(sorted(set(installations)))
        self._interval = interval
        self._clock = clock
        self._lock = asyncio.Lock()
        self._state: tuple[bool, str] | None = None
        self._checked_at = 0.0

    async def _evaluate(self) -> tuple[bool, str]:
        try:
            if not await self._client.token_works():
                return False, (
                    "NATS Tower refused the API token (no installation is visible with it); "
                    "set NATS_TOWER_API_TOKEN(_PATH) to Tower's API_TOKEN"
                )
            for key in self._installations:
                await self._client.get_installation(key)
        except InstallationNotFound as exc:
            return False, f"installation {exc.public_key} does not exist in NATS Tower"
        except TowerUnauthorized as exc:
            return False, exc.message
        except TowerError as exc:
            return False, f"NATS Tower is not answering: {exc.message}"
        return True, ""

    async def refresh(self) -> tuple[bool, str]:
        """Ask Tower now; log when the answer changed; return ``(ok, why not)``.

        Callers that arrive while an answer is being fetched share that answer.
        """
        asked = self._clock()
        async with self._lock:
            if self._state is not None and self._checked_at >= asked:
                return self._state
            state = await self._evaluate()
            previous, self._state = self._state, state
            self._checked_at = self._clock()
        if state != previous:
            if state[0]:
                log.info("NATS Tower accepts the API token and knows every installation")
            else:
                log.warning("not ready: %s", state[1])
        return state

    async def __call__(self) -> tuple[bool, str]:
        """The last answer if it is fresh, else a new one (the readiness check)."""
        if self._state is not None and self._clock() - self._checked_at < self._interval:
            return self._state
        return await self.refresh()

    async def run(self, stop: asyncio.Event) -> None:
        """Refresh every ``interval`` seconds until ``stop`` (a manager runnable)."""
        while not stop.is_set():
            await self.refresh()
            try:
                await asyncio.wait_for(stop.wait(), timeout=self._interval)
            except TimeoutError:
                continue
