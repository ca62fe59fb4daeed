"""The probe and metrics HTTP server: ``/healthz``, ``/readyz`` and ``/metrics``.

* ``/healthz`` answers 200 while the event loop is responsive and every health check passes
  (with a :class:`~nats_tower_operator.runtime.manager.Manager`: no runnable crashed). A probe
  task sleeps ``lag_probe_interval`` seconds in a loop and measures how late it wakes up; a lag
  above ``max_loop_lag`` (or a probe that stopped ticking) fails the check. Lag is measured on
  ``clock``, by default the running loop's own clock.
* ``/readyz`` answers 200 only when every readiness check passes, 503 otherwise.
* ``/metrics`` is the Prometheus text exposition of a :class:`Metrics`.

Probe bodies follow kube-apiserver's verbose format: one ``[+]name ok`` or
``[-]name failed: detail`` line per check, then a summary line.

The server is a minimal HTTP/1.1 responder on asyncio streams (GET only, one request per
connection). An HTTP framework would add ~12 MiB to the operator's resident memory for
three endpoints that kubelet and Prometheus poll.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import suppress

from prometheus_client import CONTENT_TYPE_LATEST

from nats_tower_operator.runtime.checks import CheckResult, CheckSource
from nats_tower_operator.runtime.metrics import Metrics

__all__ = ["HealthServer"]

logger = logging.getLogger(__name__)


class HealthServer:
    """Serves probes and metrics over HTTP; a manager runnable (add it with no leader gate)."""

    name = "health-server"

    def __init__(  # noqa: PLR0913 - keyword-only server and probe options
        self,
        checks: CheckSource,
        metrics: Metrics,
        *,
        host: str = "0.0.0.0",
        port: int = 8080,
        max_loop_lag: float = 5.0,
        lag_probe_interval: float = 1.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """``clock`` (monotonic seconds) defaults to the running loop's ``time()``."""
        self._checks = checks
        self._metrics = metrics
        self._host = host
        self._port = port
        self._max_loop_lag = max_loop_lag
        self._interval = lag_probe_interval
        self._clock = clock
        self._server: asyncio.Server | None = None
        self._probe: asyncio.Task[None] | None = None
        self._bound_port: int | None = None
        self._lag = 0.0
        self._last_tick = 0.0

    @property
    def bound_port(self) -> int:
        """The TCP port actually listened on (useful with ``port=0``); after :meth:`start`."""
        if self._bound_port is None:
            raise RuntimeError("the health server is not started")
        return self._bound_port

    @property
    def loop_lag(self) -> float:
        """The latest measured event-loop lag in seconds."""
        return self._lag

    async def start(self) -> None:
        """Bind the listening socket and start the loop-lag probe."""
        if self._server is not None:
            raise RuntimeError("the health server is already started")
        self._server = await asyncio.start_server(self._serve, self._host, self._port)
        self._bound_port = int(self._server.sockets[0].getsockname()[1])
        self._last_tick = self._now()
        self._probe = asyncio.create_task(self._probe_loop(), name="health-loop-lag-probe")
        logger.info("health server listening on %s:%d", self._host, self._bound_port)

    async def close(self) -> None:
        """Stop the probe and the HTTP server."""
        if self._probe is not None:
            self._probe.cancel()
            with suppress(asyncio.CancelledError):
                await self._probe
            self._probe = None
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set."""
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.close()

    # -- loop lag ------------------------------------------------------------------------------

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    async def _probe_loop(self) -> None:
        while True:
            before = self._now()
            await asyncio.sleep(self._interval)
            now = self._now()
            self._lag = max(0.0, now - before - self._interval)
            self._last_tick = now

    def _loop_check(self) -> CheckResult:
        now = self._now()
        # A probe that has not ticked for a while is as bad as a measured lag.
        overdue = max(0.0, now - self._last_tick - self._interval)
        lag = max(self._lag, overdue)
        if lag > self._max_loop_lag:
            return CheckResult("event-loop", False, f"lag {lag:.3f}s > {self._max_loop_lag:g}s")
        return CheckResult("event-loop", True)

    # -- HTTP ------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            method, _, rest = head.split(b"\r\n", 1)[0].decode("latin-1").partition(" ")
            path = rest.split(" ", 1)[0].split("?", 1)[0]
            status, content_type, body = await self._respond(method, path)
            writer.write(
                f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode("latin-1")
                + (b"" if method == "HEAD" else body)
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # a client that sent no complete request head gets nothing
        except (ConnectionError, OSError):
            pass  # the client went away
        finally:
            writer.close()
            with suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _respond(self, method: str, path: str) -> tuple[int, str, bytes]:
        if method not in ("GET", "HEAD"):
            return 405, _TEXT, b"method not allowed\n"
        if path in ("/healthz", "/livez"):
            results = [self._loop_check(), *await self._checks.run_health_checks()]
            return _probe_response("healthz", results)
        if path == "/readyz":
            return _probe_response("readyz", await self._checks.run_ready_checks())
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, self._metrics.render()
        return 404, _TEXT, b"not found\n"


_TEXT = "text/plain; charset=utf-8"
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


def _probe_response(probe: str, results: list[CheckResult]) -> tuple[int, str, bytes]:
    lines = []
    for result in results:
        if result.ok:
            lines.append(f"[+]{result.name} ok")
        else:
            lines.append(f"[-]{result.name} failed: {result.detail or 'failed'}")
    healthy = all(result.ok for result in results)
    lines.append(f"{probe} check {'passed' if healthy else 'failed'}")
    return (200 if healthy else 503), _TEXT, ("\n".join(lines) + "\n").encode()
