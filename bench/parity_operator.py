"""The operator wired with the Go operator's costs, for the benchmark's comparisons only.

``nats-tower-operator run`` always caches Tower lookups and watches only the pods (and NACK
Accounts) that carry the operator's label. The Go operator does neither; its costs are not
a setting of this operator, so the bench rebuilds them here: the same start-up as
``nats-tower-operator run`` (settings from the ``NATS_TOWER_*`` env vars, logging, the
kubeconfig), then :func:`nats_tower_operator.bootstrap.build_operator` with
``tower_caching=False`` (``--no-tower-caching``: every lookup sent to Tower) and/or
``consumer_selector=None`` (``--no-server-side-selector``: every pod watched, filtered in the
process).

Run (the bench does, see ``common.Wiring``):
``.venv/bin/python bench/parity_operator.py [--no-tower-caching] [--no-server-side-selector]``
(or ``python -m bench.parity_operator ...`` from the repository root).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from nats_tower_operator.bootstrap import build_operator
from nats_tower_operator.kube import KubeConfig, KubeConfigError
from nats_tower_operator.logs import configure_logging
from nats_tower_operator.reconcilers.labels import SECRET_LABEL
from nats_tower_operator.settings import ConfigError, load_settings, unknown_variables


def main(argv: list[str]) -> int:
    """Start like ``nats-tower-operator run``, with the wiring the flags ask for."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--no-tower-caching",
        dest="tower_caching",
        action="store_false",
        help="send every account/access/installation lookup to Tower (the Go operator's way)",
    )
    parser.add_argument(
        "--no-server-side-selector",
        dest="server_side_selector",
        action="store_false",
        help="watch every pod and filter in the process (the Go operator's way)",
    )
    args = parser.parse_args(argv)
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
    consumer_selector = SECRET_LABEL if args.server_side_selector else None
    log.warning(
        "bench wiring (not a setting of the operator)",
        extra={"tower_caching": args.tower_caching, "consumer_selector": consumer_selector},
    )
    for warning in unknown_variables(os.environ):
        log.warning(warning)
    try:
        kube_config = KubeConfig.load()
    except KubeConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    operator = build_operator(
        settings,
        kube_config=kube_config,
        tower_caching=args.tower_caching,
        consumer_selector=consumer_selector,
    )
    return asyncio.run(operator.run())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
