"""Bearer-token authentication that follows a rotating token file and retries one 401."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncGenerator, Callable, Generator
from pathlib import Path

import httpx

__all__ = ["BearerTokenAuth"]

logger = logging.getLogger(__name__)


class BearerTokenAuth(httpx.Auth):
    """Send ``Authorization: Bearer <token>``.

    With a ``token_file`` the file wins over the static ``token`` once it has been read
    (client-go's rule). The file's mtime/size is checked at most every
    ``check_interval`` seconds and the file re-read when it changed; a 401 forces a
    re-read, and the request is retried once if that produced a different token.
    """

    requires_request_body = True

    def __init__(
        self,
        *,
        token: str | None = None,
        token_file: str | None = None,
        check_interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._token = token
        self._token_file = token_file
        self._check_interval = check_interval
        self._clock = clock
        self._stamp: tuple[int, int] | None = None
        self._checked_at: float | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"BearerTokenAuth(token_file={self._token_file!r})"

    def _read(self, *, force: bool) -> None:
        """Re-read the token file if it changed (or unconditionally when ``force``)."""
        assert self._token_file is not None
        self._checked_at = self._clock()
        try:
            st = os.stat(self._token_file)
            stamp = (st.st_mtime_ns, st.st_size)
            if not force and stamp == self._stamp:
                return
            token = Path(self._token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            logger.warning(
                "cannot read the API token file; keeping the previous token",
                extra={"token_file": self._token_file, "error": exc.strerror},
            )
            return
        self._stamp = stamp
        if token:
            if self._token is not None and token != self._token:
                logger.info("API token reloaded", extra={"token_file": self._token_file})
            self._token = token

    async def current_token(self, *, force_reload: bool = False) -> str | None:
        """The token to send now, re-reading the file if due (or forced)."""
        if self._token_file is None:
            return self._token
        due = self._checked_at is None or self._clock() - self._checked_at >= self._check_interval
        if due or force_reload:
            async with self._lock:
                due = (
                    self._checked_at is None
                    or self._clock() - self._checked_at >= self._check_interval
                )
                if due or force_reload:
                    self._read(force=force_reload)
        return self._token

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Authenticate ``request``; on a 401 reload the token and retry once."""
        sent = await self.current_token()
        if sent:
            request.headers["Authorization"] = f"Bearer {sent}"
        response = yield request
        if response.status_code != 401 or self._token_file is None:
            return
        fresh = await self.current_token(force_reload=True)
        if fresh and fresh != sent:
            request.headers["Authorization"] = f"Bearer {fresh}"
            yield request

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        """Not supported: this auth is for ``httpx.AsyncClient`` only."""
        raise RuntimeError("BearerTokenAuth supports httpx.AsyncClient only")
        yield request  # pragma: no cover
