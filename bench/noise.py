"""Scenario 3 of docs benchmarks: unlabelled pods and their churn cost the operator nothing.

Starts the system with the operator idle, measures its RSS, creates ``--pods`` pods WITHOUT
the operator's labels, then patches them (annotation changes: one MODIFIED watch event
each) as fast as the bench can, up to ``--rate`` per second for ``--seconds``. Reports the
operator's RSS before/after and its CPU share during the churn. With the server-side label
selector the API server never sends those events to the operator.

``--compare`` runs the same without the server-side selector (watch every pod and filter in
the process, as the Go operator does; not a setting of the operator, so that run starts
``bench/parity_operator.py --no-server-side-selector``, see ``common.Wiring``) next to the
defaults.

Run: ``.venv/bin/python bench/noise.py [--pods 20000 --rate 1000 --seconds 30] [--compare]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from common import (
    SHIPPED,
    BenchSystem,
    PodCreates,
    Wiring,
    create_pods,
    machine,
    rss_mb,
    run_main,
    say,
    table,
)

from nats_tower_operator.kube import KubeConfig

NAMESPACE = "bench-0"
TARGET_RSS_GROWTH_MB = 10.0
TARGET_CPU_SHARE = 0.02


def unlabelled_pod(namespace: str, pod: str, _secret: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": pod, "namespace": namespace, "labels": {"app": "noise"}},
        "spec": {"containers": [{"name": "app", "image": "busybox"}]},
    }


@dataclass
class NoiseResult:
    label: str
    pods: int
    rss_idle: float
    rss_after_pods: float
    rss_after_churn: float
    patches: int
    churn_seconds: float
    cpu_share: float


async def churn(system: BenchSystem, pods: int, *, rate: float, seconds: float) -> int:
    """Patch pods round-robin at up to ``rate``/s for ``seconds``; return patches done."""
    config = KubeConfig.from_kubeconfig(str(system.kubeconfig))
    headers = {"Content-Type": "application/merge-patch+json", "Accept": "application/json"}
    if config.token:
        headers["Authorization"] = f"Bearer {config.token}"
    done = 0
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession(
        config.server, headers=headers, connector=aiohttp.TCPConnector(limit=32)
    ) as session:

        async def one(i: int) -> None:
            nonlocal done
            patch = {"metadata": {"annotations": {"noise/tick": str(i)}}}
            async with session.patch(
                f"/api/v1/namespaces/{NAMESPACE}/pods/noise-{i % pods}", data=json.dumps(patch)
            ) as response:
                await response.read()
                if response.status == 200:
                    done += 1

        i = 0
        while time.monotonic() < deadline:
            second_start = time.monotonic()
            batch = int(rate)
            for start in range(0, batch, 32):
                await asyncio.gather(*(one(i + k) for k in range(min(32, batch - start))))
                i += min(32, batch - start)
                if time.monotonic() >= deadline:
                    break
            spare = 1.0 - (time.monotonic() - second_start)
            if spare > 0:
                await asyncio.sleep(spare)
    return done


async def run_noise(
    label: str, wiring: Wiring, *, pods: int, rate: float, seconds: float
) -> NoiseResult:
    async with BenchSystem.running(namespaces=(NAMESPACE,)) as system:
        say(f"[{label}] workdir {system.workdir}")
        operator = await system.start_operator(wiring=wiring)
        await asyncio.sleep(2.0)
        rss_idle = rss_mb(operator.pid)
        plan = [(NAMESPACE, f"noise-{i}", f"noise-{i}") for i in range(pods)]
        created = PodCreates()
        await create_pods(
            system.kubeconfig, plan, concurrency=64, into=created, body=unlabelled_pod
        )
        await asyncio.sleep(3.0)
        rss_after_pods = rss_mb(operator.pid)
        cpu_before = operator.cpu_seconds()
        started = time.monotonic()
        patches = await churn(system, pods, rate=rate, seconds=seconds)
        elapsed = time.monotonic() - started
        await asyncio.sleep(2.0)
        cpu_share = (operator.cpu_seconds() - cpu_before) / (time.monotonic() - started)
        operator.check_alive()
        return NoiseResult(
            label=label,
            pods=len(created.created_at),
            rss_idle=rss_idle,
            rss_after_pods=rss_after_pods,
            rss_after_churn=rss_mb(operator.pid),
            patches=patches,
            churn_seconds=elapsed,
            cpu_share=cpu_share,
        )


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=20000)
    parser.add_argument("--rate", type=float, default=1000.0, help="pod updates per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--compare", action="store_true", help="also without the selector")
    args = parser.parse_args(argv)
    say(
        f"noise: {args.pods} unlabelled pods, up to {args.rate:g} updates/s for "
        f"{args.seconds:g} s; {machine()}"
    )
    runs: list[tuple[str, Wiring]] = [("defaults", SHIPPED)]
    if args.compare:
        runs.append(("no server-side selector", Wiring(server_side_selector=False)))
    results = [
        await run_noise(label, wiring, pods=args.pods, rate=args.rate, seconds=args.seconds)
        for label, wiring in runs
    ]
    rows = []
    for r in results:
        rows += [
            (f"[{r.label}] pods created", r.pods),
            (f"[{r.label}] operator RSS idle", f"{r.rss_idle:.1f} MiB"),
            (f"[{r.label}] RSS after the pods", f"{r.rss_after_pods:.1f} MiB"),
            (f"[{r.label}] RSS after the churn", f"{r.rss_after_churn:.1f} MiB"),
            (f"[{r.label}] updates done", f"{r.patches} ({r.patches / r.churn_seconds:.0f}/s)"),
            (f"[{r.label}] operator CPU during churn", f"{r.cpu_share * 100:.2f} % of a core"),
        ]
    say(table(rows, header=("figure", "value")))
    first = results[0]
    growth = max(first.rss_after_pods, first.rss_after_churn) - first.rss_idle
    met = growth <= TARGET_RSS_GROWTH_MB and first.cpu_share < TARGET_CPU_SHARE
    say(
        f"target 3 (RSS within {TARGET_RSS_GROWTH_MB:g} MB, CPU < 2 %): "
        f"{'MET' if met else 'MISSED'} (+{growth:.1f} MiB, {first.cpu_share * 100:.2f} %)"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(run_main(main(sys.argv[1:])))
