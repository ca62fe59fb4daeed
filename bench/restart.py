"""Scenario 4 of docs benchmarks, scaled: restart the operator over existing Secrets.

Creates ``--pods`` labelled pods over ``--namespaces`` namespaces, waits until the operator has
written every Secret and is idle, stops it (SIGTERM), marks the time (Tower's requests are
counted from Tower's own request log, PocketBase's ``/api/logs``, from then on) and clears the
emulator's audit log, and starts it again. Measures the time from the new process's start to
``/readyz`` and to "queue idle" (``nats_tower_operator_workqueue_depth`` 0 and reconcile totals
no longer moving), and counts Tower requests and Kubernetes writes (create/update/patch/delete
in the emulator's audit) during the restart, until idle and over a further ``--observe``
seconds. Target: zero Kubernetes writes and no Tower request but the readiness proof (``GET
nats_auth_operators``: the token sees an installation, the configured installation exists).

Run: ``.venv/bin/python bench/restart.py [--pods 2000] [--namespaces 10]``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from burst import SecretWatch
from common import (
    READINESS_ENDPOINT,
    WRITE_VERBS,
    BenchSystem,
    PodCreates,
    TowerRequests,
    bench_namespaces,
    create_pods,
    machine,
    median,
    metric_sum,
    percentile,
    rss_mb,
    run_main,
    say,
    table,
)

TARGET_S = 30.0


@dataclass
class RestartResult:
    """What one restart run measured."""

    pods: int
    namespaces: int
    setup_s: float = float("nan")
    secrets: int = 0
    stop_code: int | None = None
    ready_s: float = float("nan")
    idle_s: float = float("nan")
    reconciles: dict[str, float] = field(default_factory=dict)
    cpu_to_idle_s: float = float("nan")
    peak_rss_mb: float = float("nan")
    rss_empty_mb: float = float("nan")
    rss_after_mb: float = float("nan")
    tower_setup: TowerRequests = field(default_factory=TowerRequests)
    tower_at_idle: TowerRequests = field(default_factory=TowerRequests)
    tower_after_observe: TowerRequests = field(default_factory=TowerRequests)
    writes_at_idle: Counter[str] = field(default_factory=Counter)
    writes_after_observe: Counter[str] = field(default_factory=Counter)
    reads_after_observe: Counter[str] = field(default_factory=Counter)
    observe_s: float = 0.0
    explicit_installation: bool = False


def _split_audit(records: list[dict[str, Any]]) -> tuple[Counter[str], Counter[str]]:
    writes: Counter[str] = Counter()
    reads: Counter[str] = Counter()
    for record in records:
        resource = record.get("resource") or record.get("path") or "?"
        if record.get("subresource"):
            resource = f"{resource}/{record['subresource']}"
        key = f"{record.get('verb')} {resource}"
        (writes if record.get("verb") in WRITE_VERBS else reads)[key] += 1
    return writes, reads


async def run_restart(
    *,
    pods: int,
    namespaces: int,
    concurrency: int,
    setup_limit: float,
    observe: float,
    explicit_installation: bool,
) -> RestartResult:
    """Set up ``pods`` issued Secrets, restart the operator, measure."""
    result = RestartResult(
        pods=pods,
        namespaces=namespaces,
        observe_s=observe,
        explicit_installation=explicit_installation,
    )
    names = bench_namespaces(namespaces)
    plan = [(names[i % namespaces], f"pod-{i}", f"creds-{i}") for i in range(pods)]
    expected = {(namespace, secret) for namespace, _pod, secret in plan}
    async with BenchSystem.running(namespaces=names) as system:
        say(f"system up in {system.workdir}; starting the operator")
        installation = str(system.installation["public_key"]) if explicit_installation else None
        setup_mark = await system.tower_mark()
        first = await system.start_operator()
        result.rss_empty_mb = rss_mb(first.pid)
        started = time.monotonic()
        async with system.kube_client() as kube:
            watch = SecretWatch(kube)
            await watch.start()
            try:
                say(f"creating {pods} pods in {namespaces} namespaces")
                await create_pods(
                    system.kubeconfig,
                    plan,
                    concurrency=concurrency,
                    into=PodCreates(),
                    installation=installation,
                )
                await watch.wait_for(expected, deadline=started + setup_limit)
            finally:
                await watch.stop()
        result.secrets = len(expected & watch.seen.keys())
        if result.secrets < pods:
            say(f"only {result.secrets}/{pods} Secrets within {setup_limit:g} s; restarting anyway")
        await system.wait_operator_idle(settle=1.0, timeout=60.0)
        result.setup_s = time.monotonic() - started
        say(f"{result.secrets} Secrets issued in {result.setup_s:.1f} s; restarting the operator")

        result.tower_setup = await system.tower_requests(setup_mark)
        result.stop_code = await system.stop_operator()
        restart_mark = await system.tower_mark()
        await system.clear_audit()
        spawned = time.monotonic()
        operator = await system.start_operator(ready_timeout=120.0)
        result.ready_s = time.monotonic() - spawned
        idle_at, _total = await system.wait_operator_idle(settle=2.0, timeout=120.0)
        idle_mark = await system.tower_mark()
        result.idle_s = idle_at - spawned
        result.cpu_to_idle_s = operator.cpu_seconds()
        text = await system.metrics()
        result.reconciles = {
            outcome: metric_sum(text, "nats_tower_operator_reconcile_total", result=outcome)
            for outcome in ("success", "requeue", "error", "terminal")
        }
        result.writes_at_idle, _reads = _split_audit(await system.audit())
        say(f"idle; observing {observe:g} s more")
        await asyncio.sleep(observe)
        operator.check_alive()
        result.peak_rss_mb = operator.peak_rss_mb()
        result.rss_after_mb = rss_mb(operator.pid)
        observe_mark = await system.tower_mark()
        result.writes_after_observe, result.reads_after_observe = _split_audit(await system.audit())
        result.tower_at_idle = await system.tower_requests(restart_mark, idle_mark)
        result.tower_after_observe = await system.tower_requests(restart_mark, observe_mark)
    return result


def _fmt(value: float, unit: str = "", digits: int = 2) -> str:
    return "-" if value != value else f"{value:.{digits}f}{unit}"


def _counts(counter: dict[str, Any] | Counter[str]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(counter.items())) or "none"


def print_result(r: RestartResult) -> None:
    """Print the figures and the targets."""
    tower_idle = r.tower_at_idle.total
    tower_obs = r.tower_after_observe.total
    other_obs = r.tower_after_observe.without(READINESS_ENDPOINT)
    create_ms = r.tower_setup.create_exec_ms
    writes_idle = sum(r.writes_at_idle.values())
    writes_obs = sum(r.writes_after_observe.values())
    say()
    labels = "installation label on pods" if r.explicit_installation else "default installation"
    say(f"restart: {r.pods} pods, {r.namespaces} namespaces, {labels}; {machine()}")
    rows = [
        ("Secrets issued before restart", f"{r.secrets}/{r.pods} (in {r.setup_s:.1f} s)"),
        ("old operator exit code", str(r.stop_code)),
        ("process start -> /readyz", _fmt(r.ready_s, " s")),
        ("process start -> queue idle", _fmt(r.idle_s, " s")),
        *((f"  reconciles: {k}", f"{v:g}") for k, v in r.reconciles.items()),
        ("operator CPU until idle", _fmt(r.cpu_to_idle_s, " s")),
        ("operator RSS, empty cluster (first start)", _fmt(r.rss_empty_mb, " MiB", 1)),
        ("operator peak RSS after restart", _fmt(r.peak_rss_mb, " MiB", 1)),
        (f"operator RSS at idle + {r.observe_s:g} s", _fmt(r.rss_after_mb, " MiB", 1)),
        ("Tower requests until idle", str(tower_idle)),
        (f"Tower requests until idle + {r.observe_s:g} s", str(tower_obs)),
        (
            f"  of which not {READINESS_ENDPOINT} (readiness)",
            str(other_obs),
        ),
        (
            f"  operator's own count (metric) until idle + {r.observe_s:g} s",
            str(r.tower_after_observe.operator_total),
        ),
        ("Kubernetes writes until idle", str(writes_idle)),
        (f"Kubernetes writes until idle + {r.observe_s:g} s", str(writes_obs)),
    ]
    say(table(rows, header=("figure", "value")))
    say(f"Tower requests by endpoint: {_counts(r.tower_after_observe.by_endpoint)}")
    say(
        f"setup (before the restart): {r.tower_setup.total} Tower requests for {r.secrets} "
        f"Secrets ({_fmt(r.tower_setup.total / r.secrets if r.secrets else float('nan'))} per "
        f"credential; operator's own count {r.tower_setup.operator_total}); Tower-side latency "
        f"per create p50/p95/max {_fmt(median(create_ms), '', 1)}/"
        f"{_fmt(percentile(create_ms, 95), '', 1)}/"
        f"{_fmt(max(create_ms, default=float('nan')), '', 1)} ms"
    )
    say(f"Kubernetes writes: {_counts(r.writes_after_observe)}")
    say(f"Kubernetes reads: {_counts(r.reads_after_observe)}")
    say()
    reconciled = sum(r.reconciles.values()) >= r.secrets
    ok = r.idle_s <= TARGET_S and reconciled and other_obs == 0 and writes_obs == 0
    say(
        f"target 4 (synced and every object reconciled in <= {TARGET_S:g} s, no Tower "
        f"request but the readiness proof, zero Kubernetes writes): {'MET' if ok else 'MISSED'} "
        f"({_fmt(r.idle_s, ' s')}, {tower_obs} Tower requests of which {other_obs} not "
        f"readiness, {writes_obs} writes, {sum(r.reconciles.values()):g} reconciles for "
        f"{r.secrets} Secrets)"
    )


async def main(argv: list[str]) -> int:
    """Parse flags, run, print; 0 when the restart made no Tower request (but the readiness
    proof) and no write."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=2000)
    parser.add_argument("--namespaces", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=64, help="concurrent pod creates")
    parser.add_argument(
        "--setup-time-limit", type=float, default=120.0, help="s to issue the Secrets"
    )
    parser.add_argument("--observe", type=float, default=10.0, help="s to keep counting after idle")
    parser.add_argument(
        "--explicit-installation",
        action="store_true",
        help="label pods with the installation instead of relying on the default",
    )
    args = parser.parse_args(argv)
    if min(args.pods, args.namespaces, args.concurrency) < 1:
        parser.error("counts must be positive")
    result = await run_restart(
        pods=args.pods,
        namespaces=args.namespaces,
        concurrency=args.concurrency,
        setup_limit=args.setup_time_limit,
        observe=args.observe,
        explicit_installation=args.explicit_installation,
    )
    print_result(result)
    clean = (
        result.tower_after_observe.without(READINESS_ENDPOINT) == 0
        and not result.writes_after_observe
        and result.secrets == result.pods
    )
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(run_main(main(sys.argv[1:])))
