"""The stand-in's signing service: the ed25519 work NATS Tower's Go hooks do in-process.

PocketBase's JS hooks cannot sign with ed25519, so the hooks (``pb_hooks/``) call this small
HTTP service on loopback for every key, JWT and creds they need, and hand it the account
JWTs to push to nats-server. It keeps no state of its own besides the push queue: every
seed it signs with comes from the request (Tower stores seeds in its records), every key it
makes goes back to the hook that stores it.

Endpoints (JSON, POST unless noted; each needs the header ``X-Signer-Key``):

* ``/v1/operator`` -> a new operator nkey, its signing key and the operator JWT;
* ``/v1/account`` ``{operator_sign_seed, name, system}`` -> account keys and JWT;
* ``/v1/role`` -> a new scoped signing key (an account-type nkey);
* ``/v1/user`` ``{account_public_key, signing_seed, name, scoped, ttl}`` -> user keys,
  JWT and the decorated ``.creds`` text;
* ``/v1/account/update`` ``{operator_sign_seed, jwt, revoke, scope, remove_key, name,
  disabled}`` -> the re-signed account JWT;
* ``/v1/push`` ``{urls, creds, account_public_key, jwt}`` -> queued for nats-server (202);
* ``GET /v1/health``.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from nats_tower_operator.towerserver import jwt
from nats_tower_operator.towerserver.push import PushQueue, PushTarget

__all__ = ["Signer", "build_app"]

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], dict[str, Any]]
Clock = Callable[[], float]
_KEY_HEADER = "X-Signer-Key"


class BadInput(ValueError):
    """The request body lacks a field or holds an unusable value."""


def _str(body: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = body.get(name, "")
    if not isinstance(value, str) or (required and not value):
        raise BadInput(f"{name} must be a non-empty string")
    return value


def _strings(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadInput(f"{name} must be a list of strings")
    return [v for v in value if v]


def _keypair(prefix: str, key: jwt.NKey) -> dict[str, str]:
    return {
        f"{prefix}public_key": key.public_key,
        f"{prefix}private_key": jwt.private_key(key.seed),
        f"{prefix}seed": key.seed,
    }


def _seed(body: dict[str, Any], name: str) -> jwt.NKey:
    try:
        return jwt.nkey_from_seed(_str(body, name))
    except jwt.JwtError as exc:
        raise BadInput(f"{name} is not a valid nkey seed") from exc


class Signer:
    """The signing use cases; ``clock`` gives the JWTs' ``iat``."""

    def __init__(self, queue: PushQueue, *, clock: Clock = time.time) -> None:
        self.queue = queue
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock())

    def operator(self, body: dict[str, Any]) -> dict[str, Any]:
        operator = jwt.generate_nkey("operator")
        signing = jwt.generate_nkey("operator")
        name = body.get("name")
        token = jwt.operator_jwt(
            operator=operator,
            name=name if isinstance(name, str) and name else operator.public_key,
            iat=self._now(),
            signing_keys=[signing.public_key],
        )
        return {**_keypair("", operator), **_keypair("sign_", signing), "jwt": token}

    def account(self, body: dict[str, Any]) -> dict[str, Any]:
        operator_signer = _seed(body, "operator_sign_seed")
        account = jwt.generate_nkey("account")
        signing = jwt.generate_nkey("account")
        token = jwt.account_jwt(
            signer=operator_signer,
            account_public_key=account.public_key,
            name=_str(body, "name"),
            iat=self._now(),
            signing_keys=[signing.public_key],
            system=bool(body.get("system")),
        )
        return {**_keypair("", account), **_keypair("sign_", signing), "jwt": token}

    def role(self, body: dict[str, Any]) -> dict[str, Any]:
        return _keypair("", jwt.generate_nkey("account"))

    def user(self, body: dict[str, Any]) -> dict[str, Any]:
        signer = _seed(body, "signing_seed")
        ttl = body.get("ttl") or 0
        if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl < 0:
            raise BadInput("ttl must be a non-negative integer")
        user = jwt.generate_nkey("user")
        now = self._now()
        token = jwt.user_jwt(
            user_public_key=user.public_key,
            name=_str(body, "name"),
            iat=now,
            signer=signer,
            issuer_account=_str(body, "account_public_key"),
            scoped=bool(body.get("scoped")),
            expires=now + ttl if ttl else None,
        )
        creds = jwt.format_user_creds(token, user.seed)
        return {**_keypair("", user), "jwt": token, "creds": creds}

    def update_account(self, body: dict[str, Any]) -> dict[str, Any]:
        scope_body = body.get("scope")
        scope = None
        if scope_body is not None:
            if not isinstance(scope_body, dict):
                raise BadInput("scope must be an object")
            scope = jwt.RoleScope(
                public_key=_str(scope_body, "key"),
                role=_str(scope_body, "role"),
                publish=_strings(scope_body, "publish"),
                subscribe=_strings(scope_body, "subscribe"),
            )
        name = body.get("name")
        remove = body.get("remove_key")
        try:
            token = jwt.update_account_jwt(
                _str(body, "jwt"),
                signer=_seed(body, "operator_sign_seed"),
                iat=self._now(),
                revoke=_strings(body, "revoke"),
                scope=scope,
                remove_key=remove if isinstance(remove, str) and remove else None,
                name=name if isinstance(name, str) and name else None,
                disabled=bool(body.get("disabled")),
            )
        except jwt.JwtError as exc:
            raise BadInput(str(exc)) from exc
        return {"jwt": token}

    def push(self, body: dict[str, Any]) -> dict[str, Any]:
        urls = tuple(u.strip() for u in _str(body, "urls").split(",") if u.strip())
        self.queue.submit(
            PushTarget(
                urls=urls,
                system_user_creds=_str(body, "creds"),
                account_public_key=_str(body, "account_public_key"),
                account_jwt=_str(body, "jwt"),
            )
        )
        return {"queued": bool(urls)}


def build_app(signer: Signer, *, key: str) -> web.Application:
    """The HTTP app of ``signer``; every request must carry ``key`` in ``X-Signer-Key``."""

    def endpoint(
        handler: Handler, status: int = 200
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def serve(request: web.Request) -> web.Response:
            given = request.headers.get(_KEY_HEADER, "")
            if not hmac.compare_digest(given.encode(), key.encode()):
                return web.json_response({"message": "forbidden"}, status=403)
            try:
                body = await request.json()
            except ValueError:
                return web.json_response({"message": "the body is not JSON"}, status=400)
            if not isinstance(body, dict):
                return web.json_response({"message": "the body is not an object"}, status=400)
            try:
                return web.json_response(handler(body), status=status)
            except BadInput as exc:
                return web.json_response({"message": str(exc)}, status=400)

        return serve

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"pending_pushes": signer.queue.pending})

    app = web.Application(client_max_size=2**20)
    app.router.add_post("/v1/operator", endpoint(signer.operator))
    app.router.add_post("/v1/account", endpoint(signer.account))
    app.router.add_post("/v1/role", endpoint(signer.role))
    app.router.add_post("/v1/user", endpoint(signer.user))
    app.router.add_post("/v1/account/update", endpoint(signer.update_account))
    app.router.add_post("/v1/push", endpoint(signer.push, status=202))
    app.router.add_get("/v1/health", health)
    return app


def new_key() -> str:
    """A random shared key for one signer run."""
    return secrets.token_urlsafe(24)
