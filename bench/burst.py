"""Scenarios 1 and 2 of docs benchmarks: a burst of labelled pods, and Tower economy.

Creates ``--pods`` labelled pods spread over ``--namespaces`` namespaces (each pod with its own
Secret name) as fast as the client can, while a watch on Secrets labelled
``nats-tower.com/nats-tower-secret=true`` records when each Secret arrives. Prints the time
from the first create to the last Secret, pod-create -> Secret latency percentiles, the
operator's CPU seconds and peak RSS, Tower requests by endpoint and per new credential (counted
in Tower's own request log, PocketBase's ``/api/logs``, and checked against the operator's
``tower_requests_total``), the Tower-side time of each user create (the log's ``execTime``:
PocketBase + the JS hook + the signing service), and proves a random sample of the Secrets'
creds with a real NATS round trip.

``--compare`` runs the scenario twice on fresh systems (our defaults, then the Go operator's
tuning and costs) with ``--compare-pods`` pods and prints both side by side; ``--compare-each``
runs the defaults and then each Go-parity knob alone (with ``--compare`` too: also all
together). The tuning is the operator's env settings; its costs (no Tower lookup cache, every
pod watched) are not settings, so those runs start ``bench/parity_operator.py`` instead of
``nats-tower-operator run`` (``common.Wiring``).

Run: ``.venv/bin/python bench/burst.py [--pods 1000] [--namespaces 10] [--compare]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import (
    GO_PARITY_ENV,
    GO_PARITY_WIRING,
    PARITY_OPERATOR,
    REPO,
    SHIPPED,
    BenchSystem,
    PodCreates,
    TowerRequests,
    Wiring,
    bench_namespaces,
    create_pods,
    machine,
    median,
    operator_kube_requests,
    own_cpu_seconds,
    percentile,
    run_main,
    say,
    start_profiler,
    table,
)

from nats_tower_operator.kube import SECRETS, Gone, KubeClient, KubeError
from nats_tower_operator.sandbox import decode_secret, nats_round_trip

SECRET_SELECTOR = "nats-tower.com/nats-tower-secret=true"
TARGET_TOTAL_S = 15.0
TARGET_REQ_PER_CRED = 1.3


@dataclass
class BurstResult:
    """What one burst run measured."""

    label: str
    pods: int
    namespaces: int
    created: int = 0
    create_errors: int = 0
    create_s: float = float("nan")
    secrets: int = 0
    total_s: float = float("nan")
    latencies: list[float] = field(default_factory=list)
    timed_out: bool = False
    operator_cpu_s: float = float("nan")
    operator_cpu_total_s: float = float("nan")
    operator_peak_rss_mb: float = float("nan")
    other_cpu_s: dict[str, float] = field(default_factory=dict)
    tower: TowerRequests = field(default_factory=TowerRequests)
    kube_by_request: dict[str, int] = field(default_factory=dict)
    verified: int = 0
    verify_failures: list[str] = field(default_factory=list)

    @property
    def requests_per_credential(self) -> float:
        """Tower requests per Secret written during the run."""
        return self.tower.total / self.secrets if self.secrets else float("nan")


class SecretWatch:
    """Records the first time each labelled Secret with non-empty ``nats.creds`` is seen."""

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube
        self.seen: dict[tuple[str, str], float] = {}
        self.changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    def _note(self, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        if key not in self.seen and (obj.get("data") or {}).get("nats.creds"):
            self.seen[key] = time.monotonic()
            self.changed.set()

    async def _run(self) -> None:
        for _attempt in range(100):  # bounded: relists after 410 or a closed stream
            listing = await self.kube.list(SECRETS, label_selector=SECRET_SELECTOR)
            for item in listing.items:
                self._note(item)
            self.ready.set()
            with contextlib.suppress(Gone, KubeError):
                async with contextlib.aclosing(
                    self.kube.watch(
                        SECRETS,
                        resource_version=listing.resource_version,
                        label_selector=SECRET_SELECTOR,
                        timeout_seconds=600,
                    )
                ) as events:
                    async for event in events:
                        if event.type in ("ADDED", "MODIFIED"):
                            self._note(event.object)

    async def start(self) -> None:
        """Start watching; return once the initial list is in."""
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self.ready.wait(), timeout=30)

    async def wait_for(self, keys: set[tuple[str, str]], *, deadline: float) -> bool:
        """Wait until every key was seen or ``deadline`` (monotonic) passes."""
        while not keys.issubset(self.seen.keys()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if self._task is not None and self._task.done():
                self._task.result()
                raise RuntimeError("the Secret watch ended")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), timeout=min(remaining, 1.0))
        return True

    async def stop(self) -> None:
        """Stop watching."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


async def _verify(
    kube: KubeClient, keys: list[tuple[str, str]], *, sample: int, result: BurstResult
) -> None:
    chosen = random.sample(keys, min(sample, len(keys)))
    for n, (namespace, name) in enumerate(chosen):
        try:
            secret = await kube.get(SECRETS, name, namespace=namespace)
            values = decode_secret(secret)
            await nats_round_trip(values["nats.creds"], values["URLS"], subject=f"bench.verify.{n}")
            result.verified += 1
        except Exception as exc:  # reported, not raised: a failed check is a result
            result.verify_failures.append(f"{namespace}/{name}: {type(exc).__name__}: {exc}")


async def run_burst(
    *,
    label: str,
    pods: int,
    namespaces: int,
    overrides: dict[str, str],
    time_limit: float,
    concurrency: int,
    verify_sample: int,
    wiring: Wiring = SHIPPED,
    profile: Path | None = None,
) -> BurstResult:
    """One burst on a fresh system; the measurements."""
    result = BurstResult(label=label, pods=pods, namespaces=namespaces)
    names = bench_namespaces(namespaces)
    plan = [(names[i % namespaces], f"pod-{i}", f"creds-{i}") for i in range(pods)]
    expected = {(namespace, secret) for namespace, _pod, secret in plan}
    async with BenchSystem.running(namespaces=names) as system:
        say(f"[{label}] system up in {system.workdir}; starting the operator")
        operator = await system.start_operator(overrides, wiring=wiring)
        async with system.kube_client() as kube:
            # The window of the Kubernetes counts opens here: from now on the emulator's
            # audit has the operator's requests and the bench's own, the latter also counted
            # at the bench client's transport (its Secret watch included) and subtracted.
            await system.clear_audit()
            bench_requests_before = Counter(system.kube_requests)
            watch = SecretWatch(kube)
            await watch.start()
            try:
                tower_start = await system.tower_mark()
                bench_cpu_before = own_cpu_seconds()
                profiler = await start_profiler(operator.pid, profile) if profile else None
                cpu_before = operator.cpu_seconds()
                others_before = _other_cpu(system)
                creates = PodCreates()
                created_at = creates.created_at
                say(f"[{label}] creating {pods} pods in {namespaces} namespaces")
                started = time.monotonic()
                deadline = started + time_limit
                creating = asyncio.create_task(
                    create_pods(system.kubeconfig, plan, concurrency=concurrency, into=creates)
                )
                try:
                    await asyncio.wait_for(asyncio.shield(creating), timeout=time_limit)
                except TimeoutError:
                    creating.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await creating
                result.created = len(created_at)
                result.create_errors = creates.errors
                result.create_s = time.monotonic() - started
                done = await watch.wait_for(
                    {k for k in expected if k in created_at}, deadline=deadline
                )
                result.timed_out = not done or result.created < pods
                arrived = {k: t for k, t in watch.seen.items() if k in expected}
                result.secrets = len(arrived)
                if arrived:
                    result.total_s = max(arrived.values()) - started
                result.latencies = [
                    t - created_at[k] for k, t in arrived.items() if k in created_at
                ]
                if not result.timed_out:
                    # Let trailing work (Events, requeues) finish so Tower counts are complete.
                    with contextlib.suppress(TimeoutError):
                        await system.wait_operator_idle(settle=1.0, timeout=20.0)
                tower_end = await system.tower_mark()
                result.operator_cpu_s = operator.cpu_seconds() - cpu_before
                if profiler is not None:
                    await profiler.stop(signal_first=signal.SIGINT)
                    say(f"[{label}] py-spy profile of the operator: {profile}")
                result.operator_cpu_total_s = operator.cpu_seconds()
                result.operator_peak_rss_mb = operator.peak_rss_mb()
                result.other_cpu_s = {
                    name: after - others_before.get(name, 0.0)
                    for name, after in _other_cpu(system).items()
                }
                result.other_cpu_s["bench client"] = own_cpu_seconds() - bench_cpu_before
                audit = await system.audit()
                bench_requests = system.kube_requests - bench_requests_before
                bench_requests["create pods"] += creates.sent  # the aiohttp creates
                result.kube_by_request = operator_kube_requests(audit, bench_requests)
                result.tower = await system.tower_requests(tower_start, tower_end)
            finally:
                await watch.stop()
            say(f"[{label}] verifying {min(verify_sample, len(arrived))} Secrets over NATS")
            await _verify(kube, sorted(arrived), sample=verify_sample, result=result)
        code = await system.stop_operator()
        if code not in (0, None):
            say(f"[{label}] warning: the operator exited with {code}")
    return result


def _other_cpu(system: BenchSystem) -> dict[str, float]:
    """CPU seconds so far of every process but the operator; Tower's with its PocketBase."""
    cpu: dict[str, float] = {}
    for name, proc in system.procs.items():
        if name == "tower":
            pocketbase = proc.descendants_cpu_seconds()
            cpu["tower"] = proc.cpu_seconds() + pocketbase
            cpu["tower: pocketbase alone"] = pocketbase
        elif name != "operator":
            cpu[name] = proc.cpu_seconds()
    return cpu


def _fmt(value: float, unit: str = "", digits: int = 2) -> str:
    if value != value:  # NaN
        return "-"
    return f"{value:.{digits}f}{unit}"


def report_rows(r: BurstResult) -> list[tuple[str, str]]:
    """The printed figures of one run as (name, value) rows."""
    lat = r.latencies
    create_ms = r.tower.create_exec_ms
    nan = float("nan")
    return [
        ("pods created", f"{r.created}/{r.pods} ({r.create_errors} errors)"),
        ("pod creates took", _fmt(r.create_s, " s")),
        ("Secrets with creds", f"{r.secrets}/{r.pods}" + (" (TIME LIMIT)" if r.timed_out else "")),
        ("first create -> last Secret", _fmt(r.total_s, " s")),
        ("Secrets per second", _fmt(r.secrets / r.total_s if r.secrets else float("nan"), "", 1)),
        ("latency p50", _fmt(percentile(lat, 50), " s")),
        ("latency p95", _fmt(percentile(lat, 95), " s")),
        ("latency p99", _fmt(percentile(lat, 99), " s")),
        ("latency max", _fmt(max(lat) if lat else float("nan"), " s")),
        ("operator CPU during burst", _fmt(r.operator_cpu_s, " s")),
        ("operator CPU since start", _fmt(r.operator_cpu_total_s, " s")),
        ("operator peak RSS", _fmt(r.operator_peak_rss_mb, " MiB", 1)),
        *(
            (f"  CPU during burst: {name}", _fmt(value, " s"))
            for name, value in sorted(r.other_cpu_s.items())
        ),
        ("Kubernetes requests by the operator", str(sum(r.kube_by_request.values()))),
        *((f"  {key}", str(n)) for key, n in sorted(r.kube_by_request.items())),
        (
            "Kubernetes requests / new credential",
            _fmt(sum(r.kube_by_request.values()) / r.secrets if r.secrets else float("nan")),
        ),
        ("Tower requests (Tower's request log)", str(r.tower.total)),
        *((f"  {endpoint}", str(n)) for endpoint, n in sorted(r.tower.by_endpoint.items())),
        *(
            (f"  answered {status}", str(n))
            for status, n in sorted(r.tower.by_status.items())
            if not 200 <= status < 300
        ),
        ("  operator's own count (metric)", str(r.tower.operator_total)),
        ("Tower requests / new credential", _fmt(r.requests_per_credential)),
        ("Tower-side latency per create p50", _fmt(median(create_ms), " ms", 1)),
        ("Tower-side latency per create p95", _fmt(percentile(create_ms, 95), " ms", 1)),
        ("Tower-side latency per create max", _fmt(max(create_ms, default=nan), " ms", 1)),
        (
            "creds verified over NATS",
            f"{r.verified}/{r.verified + len(r.verify_failures)}",
        ),
    ]


def print_single(r: BurstResult) -> None:
    """Print one run's table and the targets."""
    say()
    say(f"burst: {r.pods} pods, {r.namespaces} namespaces, operator {r.label}; {machine()}")
    say(table(report_rows(r), header=("figure", "value")))
    for failure in r.verify_failures:
        say(f"  VERIFY FAILED {failure}")
    say()
    ok_time = r.secrets == r.pods and r.total_s <= TARGET_TOTAL_S and not r.verify_failures
    ok_tower = r.requests_per_credential <= TARGET_REQ_PER_CRED
    say(
        f"target 1 (all Secrets, valid creds, <= {TARGET_TOTAL_S:g} s): "
        f"{'MET' if ok_time else 'MISSED'} ({_fmt(r.total_s, ' s')})"
    )
    say(
        f"target 2 (<= {TARGET_REQ_PER_CRED} Tower requests per credential): "
        f"{'MET' if ok_tower else 'MISSED'} ({_fmt(r.requests_per_credential)})"
    )


def print_compare(results: list[BurstResult], *, title: str) -> None:
    """Print several runs side by side."""
    say()
    first = results[0]
    say(f"burst {title}: {first.pods} pods, {first.namespaces} namespaces; {machine()}")
    columns = [dict(report_rows(r)) for r in results]
    keys: list[str] = []
    for column in columns:
        keys += [k for k in column if k not in keys]
    rows = [(k, *(column.get(k, "-") for column in columns)) for k in keys]
    say(table(rows, header=("figure", *(r.label for r in results))))
    for r in results:
        for failure in r.verify_failures:
            say(f"  VERIFY FAILED [{r.label}] {failure}")
    go_env = " ".join(f"{k}={v}" for k, v in GO_PARITY_ENV.items())
    go_argv = " ".join([str(PARITY_OPERATOR.relative_to(REPO)), *GO_PARITY_WIRING.flags()])
    say(f"go-parity = {go_env} {go_argv} ({GO_PARITY_WIRING.describe()})")


async def main(argv: list[str]) -> int:
    """Parse flags, run, print; 0 when every requested Secret arrived and verified."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--namespaces", type=int, default=10)
    parser.add_argument("--time-limit", type=float, default=90.0, help="s per run (default 90)")
    parser.add_argument("--concurrency", type=int, default=64, help="concurrent pod creates")
    parser.add_argument("--verify", type=int, default=20, help="Secrets checked over NATS")
    parser.add_argument("--compare", action="store_true", help="also run with Go-parity tuning")
    parser.add_argument(
        "--compare-each",
        action="store_true",
        help="runs with each Go-parity knob alone (next to the defaults)",
    )
    parser.add_argument("--compare-pods", type=int, default=200, help="pods per --compare run")
    parser.add_argument(
        "--compare-time-limit", type=float, default=100.0, help="s for the Go-parity run"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="record the operator with py-spy during the burst into this file (raw stacks)",
    )
    args = parser.parse_args(argv)
    if min(args.pods, args.namespaces, args.compare_pods, args.concurrency) < 1:
        parser.error("counts must be positive")
    shared = {
        "namespaces": args.namespaces,
        "concurrency": args.concurrency,
        "verify_sample": args.verify,
    }
    if not (args.compare or args.compare_each):
        result = await run_burst(
            label="defaults",
            pods=args.pods,
            overrides={},
            time_limit=args.time_limit,
            profile=args.profile,
            **shared,
        )
        print_single(result)
        return 0 if result.secrets == result.pods and not result.verify_failures else 1
    runs: list[tuple[str, dict[str, str], Wiring]] = [("defaults", {}, SHIPPED)]
    if args.compare:
        runs.append(("go-parity", dict(GO_PARITY_ENV), GO_PARITY_WIRING))
    if args.compare_each:
        runs += [
            ("workers=1", {"NATS_TOWER_WORKERS": "1"}, SHIPPED),
            ("qps=5", {"NATS_TOWER_KUBE_QPS": "5", "NATS_TOWER_KUBE_BURST": "10"}, SHIPPED),
            ("caching=false", {}, Wiring(tower_caching=False)),
            ("selector=false", {}, Wiring(server_side_selector=False)),
        ]
    results: list[BurstResult] = []
    for label, overrides, wiring in runs:
        results.append(
            await run_burst(
                label=label,
                pods=args.compare_pods,
                overrides=overrides,
                wiring=wiring,
                time_limit=(
                    args.compare_time_limit if overrides or not wiring.shipped else args.time_limit
                ),
                **shared,
            )
        )
    print_compare(results, title="--compare-each" if args.compare_each else "--compare")
    return 0 if not any(r.verify_failures for r in results) else 1


if __name__ == "__main__":
    sys.exit(run_main(main(sys.argv[1:])))
