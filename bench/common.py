"""Benchmark plumbing: the whole system as separate processes on 127.0.0.1, and measuring it.

:class:`BenchSystem` starts, in its own work directory,

* the Kubernetes API emulator (``nats-tower-operator dev-cluster --nack-crd``),
* the NATS Tower stand-in (``nats-tower-operator tower serve``: the real PocketBase with NATS
  Tower's collections, rules and JS hooks, plus its signing service), provisioned over HTTP
  with the ``tower`` admin subcommands (an installation created with a placeholder URL, an
  account ``operator``),
* a real nats-server for the installation (``tower nats-config`` + ``nats-server -c``; the
  installation's ``url`` is then PATCHed over Tower's REST API to point at it),
* and, on request, the operator (``nats-tower-operator run``, JSON logs to a file; or, for
  a run that rebuilds the Go operator's costs, the bench's own ``parity_operator.py``, see
  :class:`Wiring`).

Namespaces are created through the Kubernetes API and linked to the account over Tower's
REST API. Every process is stopped at the end (SIGTERM, then SIGKILL), also on Ctrl-C or an
error; an ``atexit`` hook kills whatever is still left. Helpers read CPU seconds and peak RSS
from ``/proc``, the emulator's audit log (the bench's own Kubernetes requests are counted at
its client's transport, :class:`CountingTransport`, to be told apart from the operator's),
the operator's Prometheus metrics and Tower's
requests from PocketBase's own request log (``GET /api/logs`` as PocketBase's superuser):
every request the bench itself sends to Tower carries the User-Agent ``nats-tower-bench`` and
is left out, so within a time window what remains is the operator's.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import platform
import resource
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import httpx

from nats_tower_operator.kube import NAMESPACES, KubeClient, KubeConfig

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
#: The bench's entry point for an operator wired with the Go operator's costs (:class:`Wiring`).
PARITY_OPERATOR = BENCH / "parity_operator.py"
PYTHON = sys.executable
CLUSTER_ID = "bench-cluster"
ACCOUNT = "operator"
SECRET_LABEL = "nats-tower.com/nats-tower-secret"
ACCOUNT_LABEL = "nats-tower.com/nats-tower-account"
INSTALLATION_LABEL = "nats-tower.com/nats-tower-installation"
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
#: The User-Agent of every request the bench itself sends (left out of Tower's counts).
BENCH_USER_AGENT = "nats-tower-bench"
#: Tower requires an installation URL at creation; this one until nats-server runs.
PLACEHOLDER_NATS_URL = "nats://starting.invalid:4222"
SUPERUSER_EMAIL = "bench@tower.local"
#: The record create whose Tower-side time (PocketBase + JS hook + signing) is reported.
USER_CREATE = "POST nats_auth_users"
#: The operator's readiness proof (and installation lookups): the only Tower requests a
#: restart over up-to-date Secrets may make.
READINESS_ENDPOINT = "GET nats_auth_operators"


@dataclass(frozen=True)
class Wiring:
    """How the operator process is built beyond its settings (the Go operator's costs).

    The default is the operator as shipped (``nats-tower-operator run``). Caching Tower lookups
    and the server-side label selector on consumers are not settings of the operator; a run
    without one of them starts ``bench/parity_operator.py``, which builds the operator with
    ``build_operator(..., tower_caching=False)`` and/or ``consumer_selector=None``.
    """

    tower_caching: bool = True
    server_side_selector: bool = True

    @property
    def shipped(self) -> bool:
        """Whether this is the operator as ``nats-tower-operator run`` builds it."""
        return self.tower_caching and self.server_side_selector

    def flags(self) -> list[str]:
        """``parity_operator.py``'s flags for this wiring."""
        flags = [] if self.tower_caching else ["--no-tower-caching"]
        return flags + ([] if self.server_side_selector else ["--no-server-side-selector"])

    def argv(self) -> list[str]:
        """The operator's command line."""
        if self.shipped:
            return [PYTHON, "-m", "nats_tower_operator.cli", "run"]
        return [PYTHON, str(PARITY_OPERATOR), *self.flags()]

    def describe(self) -> str:
        """``"caching=false selector=false"`` (empty for the shipped wiring)."""
        parts = [] if self.tower_caching else ["caching=false"]
        return " ".join(parts + ([] if self.server_side_selector else ["selector=false"]))


#: The shipped operator.
SHIPPED = Wiring()
# Go operator defaults (DESIGN.md section 2): its tuning as the operator's env knobs, and its
# costs (no Tower lookup cache, every pod watched) as the bench's own wiring.
GO_PARITY_ENV: dict[str, str] = {
    "NATS_TOWER_WORKERS": "1",
    "NATS_TOWER_KUBE_QPS": "5",
    "NATS_TOWER_KUBE_BURST": "10",
}
GO_PARITY_WIRING = Wiring(tower_caching=False, server_side_selector=False)

_CLK_TCK = os.sysconf("SC_CLK_TCK")
#: The 1/5/15-minute load averages when the bench started (other work on the machine).
START_LOAD = os.getloadavg()
_LIVE_PIDS: set[int] = set()


def _kill_leftovers() -> None:
    for pid in list(_LIVE_PIDS):
        for victim in [*descendant_pids(pid), pid]:  # tower serve's PocketBase too
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(victim, signal.SIGKILL)


atexit.register(_kill_leftovers)


# --- small helpers ------------------------------------------------------------------------


def say(line: str = "") -> None:
    """Print one line now."""
    print(line, flush=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def machine() -> str:
    """One line describing this machine and the checked-out commit."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
        if commit and dirty:
            commit += " + uncommitted src changes"
    except (OSError, subprocess.SubprocessError):
        commit = ""
    load = "/".join(f"{value:.2f}" for value in START_LOAD)
    return (
        f"nproc={os.cpu_count()}, python {platform.python_version()}, "
        f"{platform.system()} {platform.release()} {platform.machine()}"
        + (f", commit {commit}" if commit else "")
        + f", load average at start {load}"
    )


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile (nearest rank) of ``values``; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100.0 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    """The median of ``values``; NaN when empty."""
    return statistics.median(values) if values else float("nan")


def table(rows: Iterable[Sequence[object]], *, header: Sequence[str] | None = None) -> str:
    """A plain text table with left-aligned first column and right-aligned others."""
    body = [[str(cell) for cell in row] for row in rows]
    if header is not None:
        body.insert(0, [str(h) for h in header])
    if not body:
        return ""
    widths = [max(len(row[i]) for row in body if i < len(row)) for i in range(len(body[0]))]
    lines = []
    for n, row in enumerate(body):
        cells = [
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0 and header is not None:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


# --- /proc ----------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by process ``pid``."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def child_pids(pid: int) -> list[int]:
    """The live children of ``pid`` (from ``/proc/<pid>/task/*/children``)."""
    children: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                children += [int(c) for c in (task / "children").read_text().split()]
    return children


def descendant_pids(pid: int) -> list[int]:
    """Every live descendant of ``pid``."""
    found: list[int] = []
    todo = child_pids(pid)
    while todo:
        child = todo.pop()
        found.append(child)
        todo += child_pids(child)
    return found


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size (VmHWM) of ``pid`` in MiB."""
    return _status_kb(pid, "VmHWM") / 1024.0


def rss_mb(pid: int) -> float:
    """Current resident set size (VmRSS) of ``pid`` in MiB."""
    return _status_kb(pid, "VmRSS") / 1024.0


def own_cpu_seconds() -> float:
    """User + system CPU seconds used so far by this (the bench) process."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def operator_kube_requests(
    audit: Iterable[Mapping[str, Any]], bench_requests: Mapping[str, int]
) -> dict[str, int]:
    """Requests in the emulator's ``audit`` minus the bench's own, as ``"<verb> <resource>"``.

    The bench and the operator share one kubeconfig (one audit user), so the bench's requests
    (counted by :class:`CountingTransport` under the same keys, plus its aiohttp pod creates
    as ``"create pods"``) are subtracted.
    """
    counts: Counter[str] = Counter()
    for record in audit:
        if record.get("resource"):
            counts[f"{record.get('verb')} {record['resource']}"] += 1
    counts.subtract(bench_requests)
    return {key: n for key, n in counts.items() if n > 0}


# --- the bench's Kubernetes requests ------------------------------------------------------

_WRITE_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def kube_request_key(request: httpx.Request) -> str:
    """``"<verb> <resource>"`` of one Kubernetes API request, as the emulator's audit has it.

    RBAC verbs (a GET with ``watch=true`` is ``watch``, a GET of a collection ``list``);
    subresources count under their resource; discovery is ``"get discovery"``.
    """
    parts = [p for p in request.url.path.split("/") if p]
    rest = parts[2:] if parts[:1] == ["api"] else parts[3:]
    if len(rest) >= 3 and rest[0] == "namespaces":  # a namespaced resource
        rest = rest[2:]
    if not rest:
        return "get discovery"
    if request.method != "GET":
        return f"{_WRITE_VERBS.get(request.method, request.method.lower())} {rest[0]}"
    if request.url.params.get("watch") in ("true", "1"):
        return f"watch {rest[0]}"
    return f"{'get' if len(rest) > 1 else 'list'} {rest[0]}"


class CountingTransport(httpx.AsyncBaseTransport):
    """An HTTP transport counting each request in ``counts`` before sending it.

    Passed to :class:`KubeClient` through its ``transport=`` seam, so every request the client
    sends (retries and list pages included) is counted as :func:`kube_request_key` names it.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, counts: Counter[str]) -> None:
        self.inner = inner
        self.counts = counts

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Count ``request``, then send it with the wrapped transport."""
        self.counts[kube_request_key(request)] += 1
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self.inner.aclose()


# --- processes ------------------------------------------------------------------------------


class Proc:
    """One child process with its output in a log file."""

    def __init__(self, name: str, process: asyncio.subprocess.Process, log: Path) -> None:
        self.name = name
        self.process = process
        self.log = log
        _LIVE_PIDS.add(process.pid)

    @classmethod
    async def spawn(
        cls, name: str, argv: Sequence[str], *, log: Path, env: Mapping[str, str] | None = None
    ) -> Proc:
        """Start ``argv`` with stdout+stderr appended to ``log``."""
        with log.open("ab") as handle:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdout=handle,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
                env=dict(env) if env is not None else None,
                cwd=str(REPO),
            )
        return cls(name, process, log)

    @property
    def pid(self) -> int:
        """The process id."""
        return self.process.pid

    @property
    def alive(self) -> bool:
        """Whether the process has not exited yet."""
        return self.process.returncode is None

    def cpu_seconds(self) -> float:
        """CPU seconds used so far (this process only)."""
        return cpu_seconds(self.pid)

    def descendants_cpu_seconds(self) -> float:
        """CPU seconds used so far by the live descendants (e.g. ``tower serve``'s PocketBase)."""
        total = 0.0
        for pid in descendant_pids(self.pid):
            with contextlib.suppress(OSError, ValueError, IndexError):
                total += cpu_seconds(pid)
        return total

    def tree_cpu_seconds(self) -> float:
        """CPU seconds used so far by this process and its live descendants."""
        return self.cpu_seconds() + self.descendants_cpu_seconds()

    def peak_rss_mb(self) -> float:
        """Peak RSS in MiB so far."""
        return peak_rss_mb(self.pid)

    def check_alive(self) -> None:
        """Raise if the process has exited."""
        if not self.alive:
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log}")

    async def stop(
        self, *, timeout: float = 10.0, signal_first: int = signal.SIGTERM
    ) -> int | None:
        """``signal_first`` (SIGTERM), wait up to ``timeout`` s, then SIGKILL; the exit code.

        Children the process leaves behind (``tower serve``'s PocketBase) are SIGKILLed.
        """
        children = descendant_pids(self.pid) if self.process.returncode is None else []
        try:
            if self.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    self.process.send_signal(signal_first)
                try:
                    await asyncio.wait_for(self.process.wait(), timeout=timeout)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        self.process.kill()
                    await self.process.wait()
        finally:
            _LIVE_PIDS.discard(self.pid)
            for pid in children:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        return self.process.returncode


async def _run_cli(*args: str, log: Path) -> str:
    """Run ``nats-tower-operator <args>`` to completion; its stdout (stderr goes to ``log``)."""
    with log.open("ab") as handle:
        process = await asyncio.create_subprocess_exec(
            PYTHON,
            "-m",
            "nats_tower_operator.cli",
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=handle,
            stdin=asyncio.subprocess.DEVNULL,
            cwd=str(REPO),
        )
    _LIVE_PIDS.add(process.pid)
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    finally:
        _LIVE_PIDS.discard(process.pid)
    if process.returncode != 0:
        raise RuntimeError(f"nats-tower-operator {args[0]} {args[1]} failed; see {log}")
    return out.decode()


async def _wait_for(
    what: str, check: Any, *, proc: Proc | None = None, timeout: float = 30.0
) -> Any:
    """Poll the async ``check()`` until it returns something truthy (bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None:
            proc.check_alive()
        with contextlib.suppress(OSError, httpx.HTTPError, ValueError):
            value = await check()
            if value:
                return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready within {timeout:g} s")
        await asyncio.sleep(0.05)


async def start_profiler(pid: int, out: Path) -> Proc:
    """Start ``py-spy record`` (raw collapsed stacks) on ``pid``; stop it with SIGINT."""
    binary = Path(PYTHON).parent / "py-spy"
    if not binary.exists():
        raise RuntimeError("py-spy is not installed (.venv/bin/pip install py-spy)")
    argv = [str(binary), "record", "--pid", str(pid), "--format", "raw", "--rate", "200"]
    argv += ["--output", str(out), "--nonblocking"]
    proc = await Proc.spawn("py-spy", argv, log=out.with_suffix(".log"))
    await asyncio.sleep(0.5)
    proc.check_alive()
    return proc


# --- Prometheus text --------------------------------------------------------------------


def metric_sum(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of metric ``name`` (exact name) whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        rest = line[len(name) :]
        if rest and rest[0] not in "{ ":
            continue
        label_text = ""
        if rest.startswith("{"):
            label_text, _, rest = rest[1:].partition("}")
        if any(f'{k}="{v}"' not in label_text for k, v in labels.items()):
            continue
        with contextlib.suppress(ValueError, IndexError):
            total += float(rest.split()[0])
    return total


def metric_by_label(text: str, name: str, label: str) -> Counter[str]:
    """Samples of metric ``name`` summed by the value of ``label`` (e.g. Tower ``endpoint``)."""
    sums: Counter[str] = Counter()
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        label_text, _, rest = line[len(name) + 1 :].partition("}")
        key = ""
        for part in label_text.split('",'):
            k, _, v = part.partition('="')
            if k.strip() == label:
                key = v.rstrip('"')
        with contextlib.suppress(ValueError, IndexError):
            sums[key] += round(float(rest.split()[0]))
    return sums


def operator_tower_requests(text: str) -> Counter[str]:
    """The operator's own count of its Tower requests (``tower_requests_total``) by endpoint."""
    return metric_by_label(text, "nats_tower_operator_tower_requests_total", "endpoint")


# --- Tower's request log (PocketBase) ---------------------------------------------------


def tower_timestamp(moment: datetime | None = None) -> str:
    """``moment`` (default: now) as PocketBase writes ``created``: ``2026-01-02 03:04:05.678Z``."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def tower_endpoint(method: str, url: str) -> str:
    """``"GET nats_auth_users"`` for a records API URL (the operator metric's naming)."""
    path = urlsplit(url).path
    parts = path.strip("/").split("/")
    if len(parts) >= 4 and parts[:2] == ["api", "collections"] and parts[3] == "records":
        return f"{method} {parts[2]}"
    return f"{method} {path}"


@dataclass(frozen=True)
class TowerMark:
    """A boundary of a counting window: a log timestamp and the operator's own counts then."""

    at: str
    operator_count: Counter[str] = field(default_factory=Counter)


@dataclass
class TowerRequests:
    """Requests in Tower's (PocketBase's) request log within a window, the bench's left out."""

    by_endpoint: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)
    #: ``execTime`` (ms, PocketBase + JS hook + signing service) of each user create.
    create_exec_ms: list[float] = field(default_factory=list)
    #: The operator's own count for the same window (``tower_requests_total`` delta).
    operator_count: Counter[str] = field(default_factory=Counter)
    log_settle_s: float = float("nan")

    @property
    def total(self) -> int:
        """Every request counted."""
        return sum(self.by_endpoint.values())

    @property
    def operator_total(self) -> int:
        """The operator's own count, all endpoints."""
        return sum(self.operator_count.values())

    def without(self, endpoint: str) -> int:
        """Requests to every endpoint but ``endpoint``."""
        return self.total - self.by_endpoint.get(endpoint, 0)

    @classmethod
    def from_log(cls, items: Iterable[Mapping[str, Any]]) -> TowerRequests:
        """Count request log entries (``data``: method, url, status, execTime)."""
        result = cls()
        for item in items:
            data = item.get("data") or {}
            endpoint = tower_endpoint(str(data.get("method", "?")), str(data.get("url", "")))
            result.by_endpoint[endpoint] += 1
            status = int(data.get("status", 0))
            result.by_status[status] += 1
            if endpoint == USER_CREATE and 200 <= status < 300:
                result.create_exec_ms.append(float(data.get("execTime", float("nan"))))
        return result


# --- the system -------------------------------------------------------------------------


@dataclass
class BenchSystem:
    """Emulator + Tower stand-in + nats-server (+ the operator), each its own process."""

    workdir: Path
    namespaces: tuple[str, ...]
    token: str = field(default_factory=lambda: "bench-" + secrets.token_hex(16))
    procs: dict[str, Proc] = field(default_factory=dict)
    kubeconfig: Path = field(default=Path())
    emulator_url: str = ""
    tower_url: str = ""
    nats_url: str = ""
    health_url: str = ""
    installation: dict[str, Any] = field(default_factory=dict)
    account: dict[str, Any] = field(default_factory=dict)
    installations_file: Path = field(default=Path())
    operator_env_overrides: dict[str, str] = field(default_factory=dict)
    operator_wiring: Wiring = SHIPPED
    #: Every Kubernetes request of the bench's :meth:`kube_client` clients (see
    #: :class:`CountingTransport`); not its aiohttp pod creates.
    kube_requests: Counter[str] = field(default_factory=Counter)
    superuser_password: str = field(default_factory=lambda: secrets.token_hex(12))
    _superuser_token: str = ""
    _http: httpx.AsyncClient | None = None

    # -- bring-up / tear-down --------------------------------------------------------------

    @classmethod
    @contextlib.asynccontextmanager
    async def running(
        cls, *, namespaces: Sequence[str], workdir: Path | None = None
    ) -> AsyncIterator[BenchSystem]:
        """Start emulator, Tower and nats-server, provisioned for ``namespaces``; stop all after."""
        if workdir is None:
            prefix = time.strftime("nats-tower-bench-%Y%m%d-%H%M%S-")
            workdir = Path(tempfile.mkdtemp(prefix=prefix))
        system = cls(workdir=workdir, namespaces=tuple(namespaces))
        system._http = httpx.AsyncClient(timeout=30.0, headers={"User-Agent": BENCH_USER_AGENT})
        try:
            await system._start()
            yield system
        finally:
            await system.shutdown()

    async def shutdown(self) -> None:
        """Stop every process (operator first) and close HTTP clients."""
        for name in ("operator", "tower", "nats", "emulator"):
            proc = self.procs.pop(name, None)
            if proc is not None:
                await proc.stop()
        for proc in list(self.procs.values()):
            await proc.stop()
        self.procs.clear()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    @property
    def http(self) -> httpx.AsyncClient:
        """A shared HTTP client for Tower, emulator admin and operator endpoints."""
        assert self._http is not None
        return self._http

    async def _start(self) -> None:
        work = self.workdir
        admin_log = work / "tower-admin.log"
        # 1. the emulator
        self.kubeconfig = work / "kubeconfig"
        emu_port = free_port()
        self.procs["emulator"] = await Proc.spawn(
            "emulator",
            [
                PYTHON,
                "-m",
                "nats_tower_operator.cli",
                "dev-cluster",
                "--kubeconfig",
                str(self.kubeconfig),
                "--port",
                str(emu_port),
                "--nack-crd",
            ],
            log=work / "emulator.log",
        )
        self.emulator_url = f"http://127.0.0.1:{emu_port}"
        # 2. the Tower stand-in (PocketBase + signer); ready once Tower's collections exist
        tower_port = free_port()
        self.procs["tower"] = await Proc.spawn(
            "tower",
            [
                PYTHON,
                "-m",
                "nats_tower_operator.cli",
                "tower",
                "serve",
                "--dir",
                str(work / "tower"),
                "--token",
                self.token,
                "--port",
                str(tower_port),
                "--superuser-email",
                SUPERUSER_EMAIL,
                "--superuser-password",
                self.superuser_password,
            ],
            log=work / "tower.log",
        )
        self.tower_url = f"http://127.0.0.1:{tower_port}"
        await _wait_for(
            "tower",
            lambda: self._ok(f"{self.tower_url}/api/collections/nats_auth_operators/records"),
            proc=self.procs["tower"],
        )
        # 3. provision over HTTP: installation (placeholder URL), account
        tower_args = ("--tower-url", self.tower_url, "--token", self.token)
        self.installation = json.loads(
            await _run_cli(
                "tower",
                "create-installation",
                *tower_args,
                "--nats-url",
                PLACEHOLDER_NATS_URL,
                "--description",
                "bench",
                log=admin_log,
            )
        )
        public_key = str(self.installation["public_key"])
        self.account = json.loads(
            await _run_cli(
                "tower",
                "create-account",
                *tower_args,
                "--installation",
                public_key,
                "--name",
                ACCOUNT,
                log=admin_log,
            )
        )
        # 4. nats-server for the installation
        nats_dir = work / "nats"
        nats_dir.mkdir()
        conf = nats_dir / "nats-server.conf"
        await _run_cli(
            "tower",
            "nats-config",
            *tower_args,
            "--installation",
            public_key,
            "--out",
            str(conf),
            "--resolver-dir",
            str(nats_dir / "jwt"),
            log=admin_log,
        )
        nats_port = free_port()
        with conf.open("a") as handle:
            handle.write(f'\nhost: "127.0.0.1"\nport: {nats_port}\n')
        self.procs["nats"] = await Proc.spawn(
            "nats",
            [str(Path(PYTHON).parent / "nats-server"), "-c", str(conf)],
            log=nats_dir / "nats-server.log",
        )
        self.nats_url = f"nats://127.0.0.1:{nats_port}"
        await _wait_for("nats-server", lambda: _tcp_open(nats_port), proc=self.procs["nats"])
        # 5. point the installation at nats-server (REST; Tower's hooks push every account
        #    JWT to it), link the namespaces (REST)
        await self.tower_request(
            "PATCH",
            f"nats_auth_operators/records/{self.installation['id']}",
            json={"url": self.nats_url},
        )
        await asyncio.gather(
            *(
                self.tower_request(
                    "POST",
                    "nats_auth_k8s_access/records",
                    json={
                        "account": self.account["id"],
                        "cluster": CLUSTER_ID,
                        "namespace": namespace,
                    },
                )
                for namespace in self.namespaces
            )
        )
        operator = await self.tower_request(
            "GET", f"nats_auth_operators/records/{self.installation['id']}"
        )
        if operator.get("url") != self.nats_url:
            raise RuntimeError("the installation's url does not point at the bench nats-server")
        self.installations_file = work / "installations.yaml"
        self.installations_file.write_text(f"{public_key}: {{}}\n")
        # 6. the emulator is up: namespaces
        await _wait_for(
            "emulator",
            lambda: self._ok(f"{self.emulator_url}/_emulator/healthz"),
            proc=self.procs["emulator"],
        )
        await _wait_for("kubeconfig", lambda: _file_exists(self.kubeconfig))
        async with self.kube_client() as kube:
            for namespace in self.namespaces:
                if namespace not in {"default", "kube-system"}:
                    await kube.create(
                        NAMESPACES,
                        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
                    )
        # 7. PocketBase's superuser, to read Tower's request log
        await self._superuser_login()

    async def _ok(self, url: str) -> bool:
        headers = {"X-Token": self.token}
        response = await self.http.get(url, headers=headers, timeout=2.0)
        return response.status_code == 200

    # -- the operator ----------------------------------------------------------------------

    def operator_env(self, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
        """The full environment of an operator process for this system."""
        env = dict(os.environ)
        env.update(
            {
                "NATS_TOWER_URL": self.tower_url,
                "NATS_TOWER_API_TOKEN": self.token,
                "NATS_TOWER_CLUSTER_ID": CLUSTER_ID,
                "NATS_TOWER_DEFAULT_INSTALLATION": str(self.installation["public_key"]),
                "NATS_TOWER_INSTALLATIONS_FILE_PATH": str(self.installations_file),
                "NATS_TOWER_LOG_FORMAT": "json",
                "KUBECONFIG": str(self.kubeconfig),
            }
        )
        env.update(overrides or {})
        return env

    async def start_operator(
        self,
        overrides: Mapping[str, str] | None = None,
        *,
        wiring: Wiring = SHIPPED,
        ready_timeout: float = 60.0,
    ) -> Proc:
        """Start the operator; return once ``/readyz`` answers 200.

        ``nats-tower-operator run`` with the env ``overrides``; with a ``wiring`` other than
        the shipped one, ``bench/parity_operator.py`` (same settings, the Go operator's costs).
        """
        if "operator" in self.procs:
            raise RuntimeError("the operator is already running")
        self.operator_env_overrides = dict(overrides or {})
        self.operator_wiring = wiring
        port = free_port()
        self.health_url = f"http://127.0.0.1:{port}"
        env = self.operator_env(
            {**self.operator_env_overrides, "NATS_TOWER_HEALTH_ADDR": f"127.0.0.1:{port}"}
        )
        proc = await Proc.spawn(
            "operator",
            wiring.argv(),
            log=self.workdir / "operator.log",
            env=env,
        )
        self.procs["operator"] = proc
        await self.wait_ready(timeout=ready_timeout)
        return proc

    async def wait_ready(self, *, timeout: float = 60.0) -> None:
        """Poll the operator's ``/readyz`` until it answers 200."""
        await _wait_for(
            "operator /readyz",
            lambda: self._ok(f"{self.health_url}/readyz"),
            proc=self.procs["operator"],
            timeout=timeout,
        )

    async def stop_operator(self) -> int | None:
        """SIGTERM the operator (SIGKILL after 20 s); its exit code."""
        proc = self.procs.pop("operator", None)
        return None if proc is None else await proc.stop(timeout=20.0)

    @property
    def operator(self) -> Proc:
        """The running operator process."""
        return self.procs["operator"]

    async def metrics(self) -> str:
        """The operator's ``/metrics`` text."""
        response = await self.http.get(f"{self.health_url}/metrics", timeout=5.0)
        response.raise_for_status()
        return response.text

    async def wait_operator_idle(
        self, *, settle: float = 1.0, timeout: float = 60.0, poll: float = 0.1
    ) -> tuple[float, float]:
        """Wait until queue depth is 0 and reconcile totals stop moving for ``settle`` s.

        Returns ``(idle_at, reconciles)``: the monotonic time the operator last changed
        (the last reconcile counted while the queue was empty) and the reconcile total.
        """
        deadline = time.monotonic() + timeout
        last_total = -1.0
        changed_at = time.monotonic()
        while True:
            self.operator.check_alive()
            text = await self.metrics()
            now = time.monotonic()
            depth = metric_sum(text, "nats_tower_operator_workqueue_depth")
            total = metric_sum(text, "nats_tower_operator_reconcile_total")
            if total != last_total or depth > 0:
                last_total, changed_at = total, now
            elif now - changed_at >= settle:
                return changed_at, total
            if now > deadline:
                raise TimeoutError(
                    f"operator not idle within {timeout:g} s (depth {depth:g}, "
                    f"reconciles {total:g})"
                )
            await asyncio.sleep(poll)

    # -- Tower and emulator admin ------------------------------------------------------------

    async def tower_request(
        self, method: str, path: str, *, json: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """One Tower REST call under ``/api/collections/``; the JSON answer."""
        response = await self.http.request(
            method,
            f"{self.tower_url}/api/collections/{path}",
            headers={"X-Token": self.token},
            json=json,
        )
        if response.status_code >= 400:
            raise RuntimeError(f"Tower {method} {path}: {response.status_code} {response.text}")
        result: dict[str, Any] = response.json() if response.content else {}
        return result

    async def _superuser_login(self) -> None:
        """Log in as PocketBase's superuser (the one ``tower serve`` was given)."""
        response = await self.http.post(
            f"{self.tower_url}/api/collections/_superusers/auth-with-password",
            json={"identity": SUPERUSER_EMAIL, "password": self.superuser_password},
        )
        if response.status_code != 200:
            raise RuntimeError(f"PocketBase superuser login: HTTP {response.status_code}")
        self._superuser_token = str(response.json()["token"])

    async def tower_log(self, *, since: str, until: str | None = None) -> list[dict[str, Any]]:
        """Tower's request log entries in ``[since, until]``, not sent by the bench.

        PocketBase's ``GET /api/logs`` (superuser only; not itself logged); ``created`` is
        when a request finished, ``data`` holds method, url, status, execTime (ms), userAgent.
        """
        conditions = [
            "data.type = 'request'",
            f"data.userAgent != '{BENCH_USER_AGENT}'",
            f"created >= '{since}'",
        ]
        if until is not None:
            conditions.append(f"created <= '{until}'")
        items: list[dict[str, Any]] = []
        page = 1
        per_page = 1000  # PocketBase's maximum
        while True:
            params: dict[str, str | int] = {
                "filter": " && ".join(conditions),
                "sort": "created,id",
                "page": page,
                "perPage": per_page,
                "skipTotal": 1,
                "fields": "created,data.method,data.url,data.status,data.execTime",
            }
            response = await self.http.get(
                f"{self.tower_url}/api/logs",
                params=params,
                headers={"Authorization": self._superuser_token},
                timeout=60.0,
            )
            if response.status_code == 401:
                await self._superuser_login()
                continue
            response.raise_for_status()
            batch: list[dict[str, Any]] = response.json()["items"]
            items += batch
            if len(batch) < per_page:
                return items
            page += 1

    async def tower_mark(self) -> TowerMark:
        """A window boundary: now, and the running operator's own Tower request counts."""
        counts: Counter[str] = Counter()
        if "operator" in self.procs and self.operator.alive:
            with contextlib.suppress(httpx.HTTPError):
                counts = operator_tower_requests(await self.metrics())
        return TowerMark(at=tower_timestamp(), operator_count=counts)

    async def flush_tower_log(self) -> None:
        """Make PocketBase write the log entries it holds back.

        PocketBase buffers log entries and writes them when 200 are pending or 3 s after the
        last entry was added; every new entry (e.g. the operator's readiness check, every
        15 s) restarts those 3 s. 200 ``GET /api/health`` as the bench (left out of every
        count) fill the buffer, so everything before them is written at once.
        """
        limit = asyncio.Semaphore(20)

        async def one() -> None:
            async with limit:
                with contextlib.suppress(httpx.HTTPError):
                    await self.http.get(f"{self.tower_url}/api/health", timeout=5.0)

        await asyncio.gather(*(one() for _ in range(200)))

    async def tower_requests(
        self,
        start: TowerMark,
        end: TowerMark | None = None,
        *,
        settle: float = 3.5,
        timeout: float = 30.0,
    ) -> TowerRequests:
        """The operator's Tower requests between two marks (``end``: now), from Tower's log.

        PocketBase writes its log late (see :meth:`flush_tower_log`), so the log is read until
        its count equals the operator's own count for the window (seen twice); if it does
        not within ``settle`` s, the log is flushed once and read until it matches or has
        not changed for ``settle`` s (everything bounded by ``timeout``).
        """
        end = end or await self.tower_mark()
        expected = sum((end.operator_count - start.operator_count).values())
        began = time.monotonic()
        last = -1
        changed_at = began
        flushed = False
        while True:
            items = await self.tower_log(since=start.at, until=end.at)
            now = time.monotonic()
            if len(items) != last:
                last, changed_at = len(items), now
            elif len(items) == expected or now - began > timeout:
                break
            elif now - changed_at >= settle:
                if flushed:
                    break
                await self.flush_tower_log()
                flushed = True
                changed_at = time.monotonic()
            await asyncio.sleep(0.5)
        result = TowerRequests.from_log(items)
        result.operator_count = end.operator_count - start.operator_count
        result.log_settle_s = time.monotonic() - began
        return result

    async def audit(self) -> list[dict[str, Any]]:
        """The emulator's audit records (every API request since the last clear)."""
        response = await self.http.get(f"{self.emulator_url}/_emulator/audit", timeout=60.0)
        response.raise_for_status()
        records: list[dict[str, Any]] = response.json()["records"]
        return records

    async def clear_audit(self) -> None:
        """Forget the emulator's audit records."""
        response = await self.http.delete(f"{self.emulator_url}/_emulator/audit")
        response.raise_for_status()

    def kube_client(self) -> KubeClient:
        """An unthrottled Kubernetes client for the bench itself (the caller closes it).

        Its requests are counted in :attr:`kube_requests` at its transport.
        """
        config = KubeConfig.from_kubeconfig(str(self.kubeconfig))
        connections = 200
        # With a transport of its own, httpx ignores the client's limits and TLS settings.
        inner = httpx.AsyncHTTPTransport(
            verify=config.ssl_context(),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )
        return KubeClient(
            config,
            qps=0,
            max_connections=connections,
            transport=CountingTransport(inner, self.kube_requests),
            user_agent=BENCH_USER_AGENT,
        )


async def _tcp_open(port: int) -> bool:
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def _file_exists(path: Path) -> bool:
    return path.exists() and path.stat().st_size > 0


def labelled_pod(
    name: str, *, namespace: str, secret: str, installation: str | None = None
) -> dict[str, Any]:
    """A pod carrying the operator's labels (without ``installation``, the default applies)."""
    labels = {SECRET_LABEL: secret, ACCOUNT_LABEL: ACCOUNT, "app": "bench"}
    if installation is not None:
        labels[INSTALLATION_LABEL] = installation
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "containers": [{"name": "app", "image": "busybox"}],
            "volumes": [{"name": "creds", "secret": {"secretName": secret}}],
        },
    }


@dataclass
class PodCreates:
    """The outcome of :func:`create_pods`: when each pod's create returned, and counts."""

    created_at: dict[tuple[str, str], float] = field(default_factory=dict)
    sent: int = 0
    errors: int = 0


async def create_pods(
    kubeconfig: Path,
    plan: Sequence[tuple[str, str, str]],
    *,
    concurrency: int,
    into: PodCreates,
    installation: str | None = None,
    body: Callable[[str, str, str], dict[str, Any]] | None = None,
) -> None:
    """Create the pods of ``plan`` (namespace, pod, secret) with ``concurrency`` in flight.

    Records in ``into.created_at[(namespace, secret)]`` the monotonic time each create
    returned 201. Uses a bare aiohttp session (one connection per concurrent create): the
    bench client should cost the 2-core machine as little CPU as possible, and httpx's
    connection pool costs several times more per request. With ``installation`` the pods
    carry the installation label; without it the operator's default installation applies.
    """
    config = KubeConfig.from_kubeconfig(str(kubeconfig))
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if config.token:
        headers["Authorization"] = f"Bearer {config.token}"
    limit = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(
        config.server, connector=connector, headers=headers, timeout=timeout
    ) as session:

        async def one(namespace: str, pod: str, secret: str) -> None:
            manifest = (
                body(namespace, pod, secret)
                if body is not None
                else labelled_pod(
                    pod, namespace=namespace, secret=secret, installation=installation
                )
            )
            async with limit:
                into.sent += 1
                try:
                    async with session.post(
                        f"/api/v1/namespaces/{namespace}/pods", data=json.dumps(manifest)
                    ) as response:
                        await response.read()
                        if response.status != 201:
                            into.errors += 1
                            return
                except (aiohttp.ClientError, TimeoutError):
                    into.errors += 1
                    return
                into.created_at[(namespace, secret)] = time.monotonic()

        await asyncio.gather(*(one(*item) for item in plan))


def bench_namespaces(count: int) -> tuple[str, ...]:
    """``bench-0`` ... ``bench-<count-1>``."""
    return tuple(f"bench-{i}" for i in range(count))


def run_main(coro: Any) -> int:
    """``asyncio.run`` a benchmark's main coroutine; Ctrl-C tears down and exits 130."""
    try:
        code: int = asyncio.run(coro)
        return code
    except KeyboardInterrupt:
        say("interrupted; everything stopped")
        return 130
    finally:
        _kill_leftovers()
