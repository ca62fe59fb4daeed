"""``nats-tower-operator tower ...``: run the Tower-compatible server and administer its DB.

``register(subparsers)`` adds the ``tower`` command; every subcommand sets ``handler`` to a
function ``(args) -> int``. Admin commands open the database directly (SQLite allows that while
a server runs) and push account changes to the installation's nats-server themselves.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from nats_tower_operator.towerserver.errors import TowerServerError
from nats_tower_operator.towerserver.model import COLLECTIONS
from nats_tower_operator.towerserver.natsync import NatsSync, render_config, write_config
from nats_tower_operator.towerserver.server import TowerServer
from nats_tower_operator.towerserver.service import ListQuery, TowerService
from nats_tower_operator.towerserver.store import Store
from nats_tower_operator.towerserver.validation import split_subjects

__all__ = ["main", "register"]

log = logging.getLogger(__name__)


def _read_token(args: argparse.Namespace) -> str:
    if args.token_file:
        return str(Path(args.token_file).read_text().strip())
    return str(args.token or "")


async def _serve(args: argparse.Namespace) -> int:
    token = _read_token(args)
    if not token:
        print("tower serve: an API token is required (--token or --token-file)", file=sys.stderr)
        return 2
    config_dir = Path(args.nats_config_dir) if args.nats_config_dir else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with TowerServer.running(
        db_path=args.db,
        token=token,
        host=args.host,
        port=args.port,
        nats_config_dir=config_dir,
        push=not args.no_push,
    ) as server:
        print(f"tower server listening on {server.url}", flush=True)
        await stop.wait()
    return 0


def _print(value: Any) -> None:
    print(json.dumps(value, indent=2))


async def _with_service(
    args: argparse.Namespace, fn: Callable[[TowerService], Awaitable[Any]]
) -> int:
    store = Store(args.db)
    await store.open()
    service = TowerService(store)
    sync = NatsSync(service)
    await sync.start(push_all=False)
    try:
        result = await fn(service)
    except TowerServerError as exc:
        print(f"error: {exc.message} {json.dumps(exc.data)}", file=sys.stderr)
        return 1
    finally:
        await sync.close()
        await store.close()
    if result is not None:
        _print(result)
    return 0


def _subjects(value: str | None) -> list[str]:
    return split_subjects(value or "")


def _run(coro_fn: Callable[[argparse.Namespace], Coroutine[Any, Any, int]]) -> Callable[..., int]:
    def handler(args: argparse.Namespace) -> int:
        return asyncio.run(coro_fn(args))

    return handler


async def _create_installation(args: argparse.Namespace) -> int:
    return await _with_service(
        args, lambda s: s.create_installation(name=args.name, url=args.url or "")
    )


async def _create_account(args: argparse.Namespace) -> int:
    return await _with_service(
        args,
        lambda s: s.create_account(
            operator_id=args.installation, name=args.name, user_jwt_ttl=args.user_ttl
        ),
    )


async def _create_role(args: argparse.Namespace) -> int:
    return await _with_service(
        args,
        lambda s: s.create_role(
            account_id=args.account_id,
            role=args.role,
            publish=_subjects(args.publish),
            subscribe=_subjects(args.subscribe),
        ),
    )


async def _create_user(args: argparse.Namespace) -> int:
    return await _with_service(
        args,
        lambda s: s.create_user(
            account_id=args.account_id, name=args.name, signing_key_id=args.role_id or ""
        ),
    )


async def _link(args: argparse.Namespace) -> int:
    return await _with_service(
        args,
        lambda s: s.link_k8s(
            account_id=args.account_id, cluster=args.cluster, namespace=args.namespace
        ),
    )


async def _unlink(args: argparse.Namespace) -> int:
    async def fn(service: TowerService) -> dict[str, bool]:
        removed = await service.unlink_k8s(
            account_id=args.account_id, cluster=args.cluster, namespace=args.namespace
        )
        return {"removed": removed}

    return await _with_service(args, fn)


async def _list(args: argparse.Namespace) -> int:
    async def fn(service: TowerService) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in [args.collection] if args.collection else list(COLLECTIONS):
            items: list[Any] = []
            page = 1
            while True:
                result = await service.list_records(
                    name, ListQuery(filter=args.filter or "", page=page, per_page=500)
                )
                items.extend(result.items)
                if page >= result.total_pages:
                    break
                page += 1
            out[name] = items
        return out

    return await _with_service(args, fn)


async def _create_token(args: argparse.Namespace) -> int:
    async def fn(service: TowerService) -> dict[str, str]:
        return {"token": await service.create_api_token(name=args.name or "")}

    return await _with_service(args, fn)


async def _nats_config(args: argparse.Namespace) -> int:
    async def fn(service: TowerService) -> None:
        inputs = await service.config_inputs(args.installation)
        out = Path(args.out)
        resolver_dir = Path(args.resolver_dir) if args.resolver_dir else out.parent / "jwt"
        text = render_config(inputs, resolver_dir=resolver_dir.resolve())
        write_config(out, text)

    return await _with_service(args, fn)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``tower`` command and its subcommands."""
    tower = subparsers.add_parser("tower", help="NATS Tower-compatible server and its admin")
    sub = tower.add_subparsers(dest="tower_command", required=True)

    def add(
        name: str, help_text: str, fn: Callable[[argparse.Namespace], Coroutine[Any, Any, int]]
    ) -> Any:
        parser = sub.add_parser(name, help=help_text)
        parser.add_argument("--db", required=True, help="SQLite database file")
        parser.set_defaults(handler=_run(fn))
        return parser

    serve = add("serve", "serve the records API over HTTP", _serve)
    token = serve.add_mutually_exclusive_group()
    token.add_argument("--token", help="API token clients send as X-Token")
    token.add_argument("--token-file", help="file holding the API token")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8090)
    serve.add_argument("--nats-config-dir", help="keep nats-server configs of installations here")
    serve.add_argument(
        "--no-push", action="store_true", help="do not push account JWTs to nats-server"
    )

    p = add("create-installation", "create an installation (operator)", _create_installation)
    p.add_argument("--name", required=True)
    p.add_argument("--url", default="", help="nats-server client URL(s), comma separated")

    p = add("create-account", "create an account", _create_account)
    p.add_argument("--installation", required=True, help="operator public key (or record id)")
    p.add_argument("--name", required=True)
    p.add_argument("--user-ttl", type=int, default=0, help="user JWT lifetime in s (0 = none)")

    p = add("create-role", "create a role (scoped signing key)", _create_role)
    p.add_argument("--account-id", required=True)
    p.add_argument("--role", required=True)
    p.add_argument("--publish", default="", help="subjects, comma separated")
    p.add_argument("--subscribe", default="", help="subjects, comma separated")

    p = add("create-user", "create a user and print its record (with creds)", _create_user)
    p.add_argument("--account-id", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--role-id", default="", help="signing key (role) record id")

    for name, fn, help_text in (
        ("link", _link, "allow a cluster namespace to use an account"),
        ("unlink", _unlink, "remove a cluster namespace link"),
    ):
        p = add(name, help_text, fn)
        p.add_argument("--account-id", required=True)
        p.add_argument("--cluster", required=True)
        p.add_argument("--namespace", required=True)

    p = add("list", "print records as JSON", _list)
    p.add_argument("collection", nargs="?", choices=sorted(COLLECTIONS))
    p.add_argument("--filter", default="")

    p = add("create-token", "create an extra API token (nt_...)", _create_token)
    p.add_argument("--name", default="")

    p = add("nats-config", "write the nats-server config of an installation", _nats_config)
    p.add_argument("--installation", required=True, help="operator public key (or record id)")
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
