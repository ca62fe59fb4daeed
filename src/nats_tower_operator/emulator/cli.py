"""``nats-tower-operator dev-cluster``: serve the Kubernetes API emulator until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from nats_tower_operator.emulator.crd import load_crd_file, load_nack_accounts_crd
from nats_tower_operator.emulator.server import Emulator

__all__ = ["register", "run_dev_cluster"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``dev-cluster`` subcommand."""
    parser = subparsers.add_parser(
        "dev-cluster",
        help="serve an in-process Kubernetes API emulator and write a kubeconfig for it",
        description="Serve the Kubernetes API emulator on loopback until Ctrl-C or SIGTERM.",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=int, default=0, help="port to listen on (default: any free port)"
    )
    parser.add_argument(
        "--kubeconfig",
        type=Path,
        required=True,
        help="where to write a kubeconfig for the emulator",
    )
    parser.add_argument(
        "--crd",
        action="append",
        default=[],
        metavar="FILE",
        help="register the CRDs in FILE (repeatable)",
    )
    parser.add_argument(
        "--nack-crd", action="store_true", help="register NACK's accounts.jetstream.nats.io CRD"
    )
    parser.add_argument(
        "--bookmark-interval", type=float, default=60.0, help="seconds between watch bookmarks"
    )
    parser.add_argument(
        "--tls", action="store_true", help="serve HTTPS with a throwaway self-signed certificate"
    )
    parser.set_defaults(handler=run_dev_cluster)


def run_dev_cluster(args: argparse.Namespace) -> int:
    """Entry point of ``dev-cluster``; returns the process exit code."""
    try:
        crds = [doc for path in args.crd for doc in load_crd_file(str(path))]
    except OSError as exc:
        print(f"dev-cluster: cannot read CRD file: {exc}", file=sys.stderr)
        return 2
    if args.nack_crd:
        crds.append(load_nack_accounts_crd())
    return asyncio.run(
        _serve(
            host=args.host,
            port=args.port,
            kubeconfig=args.kubeconfig,
            crds=crds,
            bookmark_interval=args.bookmark_interval,
            tls=args.tls,
        )
    )


async def _serve(
    *,
    host: str,
    port: int,
    kubeconfig: Path,
    crds: list[dict[str, object]],
    bookmark_interval: float,
    tls: bool,
) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    emu = Emulator(bookmark_interval=bookmark_interval, tls=tls)
    try:
        await emu.start(host=host, port=port)
    except (OSError, RuntimeError) as exc:
        print(f"dev-cluster: cannot start: {exc}", file=sys.stderr)
        await emu.stop()
        return 1
    try:
        for crd in crds:
            emu.register_crd(crd)
        path = emu.write_kubeconfig(kubeconfig)
        print(
            f"Kubernetes API emulator serving {emu.url}; kubeconfig written to {path}", flush=True
        )
        await stop.wait()
    finally:
        await emu.stop()
    print("Kubernetes API emulator stopped", flush=True)
    return 0
