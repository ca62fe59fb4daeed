"""HTTP layer (aiohttp): PocketBase's records API translated to :class:`TowerService` calls.

Routes: ``GET/POST /api/collections/{c}/records``, ``GET/PATCH/DELETE
/api/collections/{c}/records/{id}``, ``GET /api/health``, ``GET /api/openapi.json`` and
``GET/DELETE /api/_stats`` (request counts per method and collection). Every error is answered
with PocketBase's ``{"code","message","data"}`` body; nothing a client sends yields a 5xx.
Collection routes and the stats need the ``X-Token`` header (401 when missing, 403 when wrong).
"""

from __future__ import annotations

import hmac
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from nats_tower_operator.towerserver.errors import BadRequest, NotFound, TowerServerError
from nats_tower_operator.towerserver.openapi import openapi_document
from nats_tower_operator.towerserver.service import (
    DEFAULT_PER_PAGE,
    ListQuery,
    Record,
    TowerService,
)

__all__ = ["RequestStats", "build_app"]

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
TOKEN_HEADER = "X-Token"
SERVICE_KEY: web.AppKey[TowerService] = web.AppKey("service", TowerService)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RequestStats:
    """Counts requests per (method, collection), for benchmarks."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()

    def count(self, method: str, collection: str) -> None:
        """Add one request."""
        self._counts[(method, collection)] += 1

    def reset(self) -> None:
        """Forget every count."""
        self._counts.clear()

    def as_json(self) -> dict[str, Any]:
        """``{"total": N, "requests": {"GET nats_auth_users": n, ...}}``."""
        return {
            "total": sum(self._counts.values()),
            "requests": {f"{m} {c}": n for (m, c), n in sorted(self._counts.items())},
        }


def _error(status: int, message: str, data: Mapping[str, Any] | None = None) -> web.Response:
    return web.json_response(
        {"code": status, "message": message, "data": dict(data or {})}, status=status
    )


_STATUS_MESSAGES = {
    401: "The request requires valid record authorization token.",
    403: "The authorized record is not allowed to perform this action.",
    404: "The requested resource wasn't found.",
    405: "Method Not Allowed.",
    413: "Request entity too large.",
}


def _int_param(query: Mapping[str, str], name: str, default: int) -> int:
    try:
        return int(query.get(name, ""))
    except ValueError:
        return default


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _select_fields(record: Record, fields: str) -> Record:
    """Apply PocketBase's ``fields`` parameter (``*`` = all; modifiers after ``:`` ignored)."""
    wanted = {f.strip().split(":", 1)[0] for f in fields.split(",") if f.strip()}
    if not wanted or "*" in wanted:
        return record
    return {k: v for k, v in record.items() if k in wanted}


class _Api:
    """Route handlers bound to a service, a token and request statistics."""

    def __init__(self, service: TowerService, token: str, stats: RequestStats) -> None:
        self.service = service
        self.token = token
        self.stats = stats

    async def authorize(self, request: web.Request) -> web.Response | None:
        provided = request.headers.get(TOKEN_HEADER)
        if not provided:
            return _error(401, _STATUS_MESSAGES[401])
        raw = provided.encode("utf-8", "surrogateescape")
        if self.token and hmac.compare_digest(raw, self.token.encode()):
            return None
        if _utf8(provided) and await self.service.api_token_exists(provided):
            return None
        return _error(403, _STATUS_MESSAGES[403])

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path.startswith("/api/collections/"):
            collection = request.match_info.get("collection", path.split("/")[3])
            self.stats.count(request.method, collection)
        try:
            if path.startswith(("/api/collections/", "/api/_stats")):
                denied = await self.authorize(request)
                if denied is not None:
                    return denied
            return await handler(request)
        except TowerServerError as exc:
            return web.json_response(exc.body(), status=exc.status)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            message = _STATUS_MESSAGES.get(exc.status, exc.reason)
            return _error(exc.status, message)

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"code": 200, "message": "API is healthy.", "data": {}})

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(openapi_document())

    async def get_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats.as_json())

    async def reset_stats(self, request: web.Request) -> web.Response:
        self.stats.reset()
        return web.Response(status=204)

    @staticmethod
    def _ids(request: web.Request) -> tuple[str, str]:
        collection = request.match_info["collection"]
        record_id = request.match_info.get("id", "")
        if not _utf8(collection) or not _utf8(record_id) or len(record_id) > 255:
            raise NotFound()
        return collection, record_id

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            raise BadRequest(
                "Failed to load the submitted data due to invalid formatting."
            ) from None
        if not isinstance(body, dict):
            raise BadRequest("Failed to load the submitted data due to invalid formatting.")
        return body

    async def list_records(self, request: web.Request) -> web.Response:
        collection, _ = self._ids(request)
        q = request.query
        filter_text, sort_text = q.get("filter", ""), q.get("sort", "")
        if not _utf8(filter_text):
            raise BadRequest("Invalid filter parameters.")
        if not _utf8(sort_text):
            raise BadRequest("Invalid sort parameters.")
        query = ListQuery(
            filter=filter_text,
            sort=sort_text,
            page=_int_param(q, "page", 1),
            per_page=_int_param(q, "perPage", DEFAULT_PER_PAGE),
            skip_total=q.get("skipTotal", "").lower() in ("1", "true"),
        )
        page = await self.service.list_records(collection, query)
        body = page.as_json()
        body["items"] = [_select_fields(item, q.get("fields", "")) for item in page.items]
        return web.json_response(body)

    async def create_record(self, request: web.Request) -> web.Response:
        collection, _ = self._ids(request)
        self.service.check_collection(collection)
        record = await self.service.create(collection, await self._body(request))
        return web.json_response(_select_fields(record, request.query.get("fields", "")))

    async def get_record(self, request: web.Request) -> web.Response:
        collection, record_id = self._ids(request)
        record = await self.service.get(collection, record_id)
        return web.json_response(_select_fields(record, request.query.get("fields", "")))

    async def update_record(self, request: web.Request) -> web.Response:
        collection, record_id = self._ids(request)
        self.service.check_collection(collection)
        record = await self.service.update(collection, record_id, await self._body(request))
        return web.json_response(_select_fields(record, request.query.get("fields", "")))

    async def delete_record(self, request: web.Request) -> web.Response:
        collection, record_id = self._ids(request)
        await self.service.delete(collection, record_id)
        return web.Response(status=204)


async def _not_found(request: web.Request) -> web.Response:
    return _error(404, _STATUS_MESSAGES[404])


def build_app(
    service: TowerService,
    *,
    token: str,
    stats: RequestStats | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> web.Application:
    """The aiohttp application serving ``service`` behind the ``X-Token`` ``token``."""
    api = _Api(service, token, stats or RequestStats())
    app = web.Application(middlewares=[api.middleware], client_max_size=max_body_bytes)
    app[SERVICE_KEY] = service
    records = "/api/collections/{collection}/records"
    app.router.add_get("/api/health", api.health)
    app.router.add_get("/api/openapi.json", api.openapi)
    app.router.add_get("/api/_stats", api.get_stats)
    app.router.add_delete("/api/_stats", api.reset_stats)
    app.router.add_get(records, api.list_records)
    app.router.add_post(records, api.create_record)
    app.router.add_get(records + "/{id}", api.get_record)
    app.router.add_patch(records + "/{id}", api.update_record)
    app.router.add_delete(records + "/{id}", api.delete_record)
    app.router.add_route("*", "/{tail:.*}", _not_found)
    return app
