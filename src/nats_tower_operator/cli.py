"""Command line entry point: ``nats-tower-operator <command>``.

Each package that has commands contributes them through its own ``cli`` module with
``register(subparsers)``; this module only assembles them and dispatches.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser(*, operator_only: bool = False) -> argparse.ArgumentParser:
    """Return the top-level parser with every subcommand registered.

    With ``operator_only`` only ``run`` is registered: the operator process then never
    imports the Tower-compatible server or the emulator (and their HTTP and NATS stacks),
    which keeps its memory small.
    """
    parser = argparse.ArgumentParser(
        prog="nats-tower-operator",
        description="NATS credentials from NATS Tower, managed as Kubernetes Secrets.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the operator (configured by NATS_TOWER_* env vars)")
    run.set_defaults(handler=_run)
    if operator_only:
        return parser
    check = sub.add_parser(
        "check",
        help="check the configuration, Tower (token, installations, access links) and RBAC; "
        "prints OK/FAIL with fixes",
    )
    check.set_defaults(handler=_check)
    sandbox = sub.add_parser(
        "sandbox",
        help="run nats-server, a Tower-compatible server, a Kubernetes emulator and the "
        "operator on this machine, apply the docs' examples and prove the credentials",
    )
    sandbox.add_argument("--keep", action="store_true", help="keep running after the checks")
    sandbox.add_argument("--workdir", help="directory for databases, configs and logs")
    sandbox.add_argument("--timeout", type=float, default=60.0, help="seconds to wait per Secret")
    sandbox.set_defaults(handler=_sandbox)
    from nats_tower_operator.emulator import cli as emulator_cli
    from nats_tower_operator.towerserver import cli as towerserver_cli

    towerserver_cli.register(sub)
    emulator_cli.register(sub)
    return parser


def _sandbox(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    from pathlib import Path

    from nats_tower_operator.sandbox import default_workdir, run_sandbox

    logging.basicConfig(level=logging.WARNING)
    workdir = Path(args.workdir).resolve() if args.workdir else default_workdir()
    try:
        return asyncio.run(run_sandbox(workdir=workdir, keep=args.keep, timeout=args.timeout))
    except KeyboardInterrupt:
        return 0


def _check(args: argparse.Namespace) -> int:
    import asyncio

    from nats_tower_operator.check import format_report, run_checks
    from nats_tower_operator.kube import KubeConfig, KubeConfigError
    from nats_tower_operator.settings import ConfigError, load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"FAIL  config  {problem}")
        return 1
    try:
        kube_config = KubeConfig.load()
    except KubeConfigError as exc:
        print(f"FAIL  config  {exc}")
        return 1
    lines = asyncio.run(run_checks(settings, kube_config))
    print(format_report(lines))
    return 0 if all(line.ok for line in lines) else 1


def _run(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    import os

    from nats_tower_operator.bootstrap import build_operator
    from nats_tower_operator.kube import KubeConfig, KubeConfigError
    from nats_tower_operator.logs import configure_logging
    from nats_tower_operator.settings import ConfigError, load_settings, unknown_variables

    try:
        settings = load_settings()
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"config error: {problem}", file=sys.stderr)
        return 2
    configure_logging(
        level=settings.log_level, fmt=settings.log_format, secrets=lambda: (settings.token(),)
    )
    log = logging.getLogger("nats_tower_operator")
    log.info("configuration", extra=settings.describe())
    for warning in unknown_variables(os.environ):
        log.warning(warning)
    try:
        kube_config = KubeConfig.load()
    except KubeConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    operator = build_operator(settings, kube_config=kube_config)
    return asyncio.run(operator.run())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command named on the command line and return its exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(operator_only=argv[:1] == ["run"])
    args = parser.parse_args(argv)
    handler = args.handler
    code: int = handler(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
