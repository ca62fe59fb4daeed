"""``nats-tower-operator tower ...``: run the NATS Tower stand-in and administer any Tower.

* ``tower serve`` starts the stand-in (PocketBase with Tower's collections, rules and hooks,
  plus its signing service) and prints the URL, the API token and PocketBase's admin UI
  with a superuser.
* ``tower create-installation | create-account | create-role | create-user | link | unlink |
  list | nats-config`` talk to a running Tower (the stand-in or a real NATS Tower) over its
  records API with the X-Token, naming installations by public key and accounts by name.
  ``--tower-url`` / ``--token`` default to ``NATS_TOWER_URL`` / ``NATS_TOWER_API_TOKEN``.

``register(subparsers)`` adds the ``tower`` command; every subcommand sets ``handler`` to a
function ``(args) -> int``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from nats_tower_operator.towerserver.admin import AdminError, TowerAdmin, split_subjects
from nats_tower_operator.towerserver.collections import TOWER_COLLECTIONS
from nats_tower_operator.towerserver.natsconfig import render_config, write_config
from nats_tower_operator.towerserver.pocketbase import PocketBaseError
from nats_tower_operator.towerserver.standin import Superuser, TowerStandIn

__all__ = ["main", "register"]

log = logging.getLogger(__name__)

Handler = Callable[[argparse.Namespace], int]


def _token(args: argparse.Namespace) -> str:
    if getattr(args, "token_file", None):
        return str(Path(args.token_file).read_text().strip())
    return str(args.token or os.environ.get("NATS_TOWER_API_TOKEN", "")).strip()


async def _serve(args: argparse.Namespace) -> int:
    token = _token(args)
    if not token:
        print("tower serve: an API token is required (--token or --token-file)", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    superuser = Superuser(args.superuser_email, args.superuser_password or os.urandom(12).hex())
    try:
        async with TowerStandIn.running(
            data_dir=Path(args.dir),
            token=token,
            host=args.host,
            port=args.port,
            superuser=superuser,
        ) as tower:
            print(f"NATS Tower stand-in listening on {tower.url}", flush=True)
            print(f"  API token (X-Token): {token}", flush=True)
            print(
                f"  admin UI: {tower.url}/_/  ({superuser.email} / {superuser.password})",
                flush=True,
            )
            await stop.wait()
    except PocketBaseError as exc:
        print(f"tower serve: {exc}", file=sys.stderr)
        return 1
    return 0


def _print(value: Any) -> None:
    print(json.dumps(value, indent=2))


def _admin_command(
    fn: Callable[[TowerAdmin, argparse.Namespace], Awaitable[Any]],
) -> Callable[[argparse.Namespace], Coroutine[Any, Any, int]]:
    async def run(args: argparse.Namespace) -> int:
        url = args.tower_url or os.environ.get("NATS_TOWER_URL", "http://127.0.0.1:8090")
        token = _token(args)
        if not token:
            print(
                "an API token is required (--token, --token-file or NATS_TOWER_API_TOKEN)",
                file=sys.stderr,
            )
            return 2
        async with TowerAdmin(url, token) as admin:
            try:
                result = await fn(admin, args)
            except AdminError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
        if result is not None:
            _print(result)
        return 0

    return run


async def _create_installation(admin: TowerAdmin, args: argparse.Namespace) -> Any:
    return await admin.create_installation(args.nats_url, args.description)


async def _create_account(admin: TowerAdmin, args: argparse.Namespace) -> Any:
    return await admin.create_account(args.installation, args.name, user_jwt_ttl=args.user_ttl)


async def _create_role(admin: TowerAdmin, args: argparse.Namespace) -> Any:
    return await admin.create_role(
        args.installation,
        args.account,
        args.role,
        publish=split_subjects(args.publish),
        subscribe=split_subjects(args.subscribe),
    )


async def _create_user(admin: TowerAdmin, args: argparse.Namespace) -> Any:
    return await admin.create_user(args.installation, args.account, args.name, role=args.role)


async def _link(admin: TowerAdmin, args: argparse.Namespace) -> Any:
    return await admin.link(
        args.installation, args.account, cluster=args.cluster, namespace=args.namespace
    )


async def _unlink(admin: TowerAdmin, args: argparse.Namespace) -> Any:
    removed = await admin.unlink(
        args.installation, args.account, cluster=args.cluster, namespace=args.namespace
    )
    return {"removed": removed}


async def _list(admin: TowerAdmin, args: argparse.Namespace) -> Any:
    names = [args.collection] if args.collection else list(TOWER_COLLECTIONS)
    return {name: await admin.list(name, args.filter) for name in names}


async def _nats_config(admin: TowerAdmin, args: argparse.Namespace) -> Any:
    inputs = await admin.nats_config_inputs(args.installation)
    out = Path(args.out)
    resolver_dir = Path(args.resolver_dir) if args.resolver_dir else out.parent / "jwt"
    write_config(out, render_config(inputs, resolver_dir=resolver_dir.resolve()))
    return None


def _sync(coro_fn: Callable[[argparse.Namespace], Coroutine[Any, Any, int]]) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        return asyncio.run(coro_fn(args))

    return handler


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``tower`` command and its subcommands."""
    tower = subparsers.add_parser(
        "tower", help="the NATS Tower stand-in (real PocketBase) and Tower administration"
    )
    sub = tower.add_subparsers(dest="tower_command", required=True)

    serve = sub.add_parser("serve", help="run the stand-in: PocketBase + Tower's collections")
    serve.add_argument("--dir", required=True, help="PocketBase data directory")
    token = serve.add_mutually_exclusive_group()
    token.add_argument("--token", help="the API token clients send as X-Token")
    token.add_argument("--token-file", help="file holding the API token")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8090)
    serve.add_argument("--superuser-email", default="admin@tower.local")
    serve.add_argument("--superuser-password", help="default: a random one, printed")
    serve.set_defaults(handler=_sync(_serve))

    def add(
        name: str, help_text: str, fn: Callable[[TowerAdmin, argparse.Namespace], Awaitable[Any]]
    ) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=help_text)
        parser.add_argument("--tower-url", help="Tower base URL (default: $NATS_TOWER_URL)")
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--token", help="API token (default: $NATS_TOWER_API_TOKEN)")
        group.add_argument("--token-file", help="file holding the API token")
        parser.set_defaults(handler=_sync(_admin_command(fn)))
        return parser

    p = add("create-installation", "create an installation (a NATS operator)", _create_installation)
    p.add_argument("--nats-url", required=True, help="nats-server client URL(s), comma separated")
    p.add_argument("--description", default="")

    p = add("create-account", "create an account", _create_account)
    p.add_argument("--installation", required=True, help="installation public key")
    p.add_argument("--name", required=True)
    p.add_argument(
        "--user-ttl",
        type=int,
        default=0,
        help="stand-in extension: user JWT lifetime in seconds (0 = users never expire)",
    )

    def account_args(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--installation", required=True, help="installation public key")
        parser.add_argument("--account", required=True, help="account name")

    p = add("create-role", "create a role (scoped signing key)", _create_role)
    account_args(p)
    p.add_argument("--role", required=True)
    p.add_argument("--publish", default="", help="subjects, comma separated")
    p.add_argument("--subscribe", default="", help="subjects, comma separated")

    p = add("create-user", "create a user and print its record (with creds)", _create_user)
    account_args(p)
    p.add_argument("--name", required=True)
    p.add_argument("--role", default="", help="role name")

    for name, fn, help_text in (
        ("link", _link, "allow a cluster namespace to use an account"),
        ("unlink", _unlink, "remove a cluster namespace link"),
    ):
        p = add(name, help_text, fn)
        account_args(p)
        p.add_argument("--cluster", required=True)
        p.add_argument("--namespace", required=True)

    p = add("list", "print records as JSON", _list)
    p.add_argument("collection", nargs="?", choices=sorted(TOWER_COLLECTIONS))
    p.add_argument("--filter", default="")

    p = add("nats-config", "write the nats-server config of an installation", _nats_config)
    p.add_argument("--installation", required=True, help="installation public key")
    p.add_argument("--out", required=True)
    p.add_argument("--resolver-dir", help="JWT directory of the full resolver")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tower ...`` without the rest of the operator's CLI (``python -m`` this module)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    parser = argparse.ArgumentParser(prog="nats-tower-operator")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
