"""Command line entry point: ``nats-tower-operator <command>``.

Each package that has commands contributes them through its own ``cli`` module with
``register(subparsers)``; this module only assembles them and dispatches.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every subcommand registered."""
    from nats_tower_operator.emulator import cli as emulator_cli
    from nats_tower_operator.towerserver import cli as towerserver_cli

    parser = argparse.ArgumentParser(
        prog="nats-tower-operator",
        description="NATS credentials from NATS Tower, managed as Kubernetes Secrets.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    towerserver_cli.register(sub)
    emulator_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command named on the command line and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = args.handler
    code: int = handler(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
