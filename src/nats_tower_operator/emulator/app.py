"""The HTTP face of the emulator: routing, query parameters, watch streams, admin endpoints.

Handlers only translate HTTP to :class:`~nats_tower_operator.emulator.store.Store` calls and
back: they parse the path (``/api/v1/namespaces/{ns}/{resource}/{name}/{subresource}`` and
the ``/apis/{group}/{version}/...`` forms), apply faults, authorization and audit, negotiate
the representation, and render objects, lists, Tables, PartialObjectMetadata, Status errors
and newline-delimited watch events. ``/_emulator/...`` holds the admin endpoints (faults,
audit, access rules) that tests in other processes use.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web

from nats_tower_operator.emulator import discovery, errors, protobuf
from nats_tower_operator.emulator import representation as rep_mod
from nats_tower_operator.emulator.audit import AuditLog, AuditRecord
from nats_tower_operator.emulator.auth import AccessControl, Attributes
from nats_tower_operator.emulator.errors import ApiError
from nats_tower_operator.emulator.faults import Faults
from nats_tower_operator.emulator.jsonutil import JsonObj, dumps
from nats_tower_operator.emulator.protobuf import ProtobufError
from nats_tower_operator.emulator.representation import Representation
from nats_tower_operator.emulator.resources import ResourceType
from nats_tower_operator.emulator.selectors import FieldSelector, LabelSelector, SelectorError
from nats_tower_operator.emulator.store import Store
from nats_tower_operator.emulator.watch import TooOld, Watcher

__all__ = ["ServerSettings", "build_app"]

log = logging.getLogger(__name__)

_JSON = "application/json"
_PROTO_OPENAPI = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
_PROTO_OPENAPI_PREFIX = "application/com.github.proto-openapi.spec.v2"


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Timing knobs of the HTTP layer."""

    bookmark_interval: float = 60.0
    """Seconds between periodic BOOKMARK events (real servers: about a minute)."""
    watch_timeout: float = 1800.0
    """Watch duration when the client sends no ``timeoutSeconds``."""


@dataclass(slots=True)
class _Target:
    group: str
    version: str
    resource: str
    namespace: str | None
    name: str
    subresource: str
    legacy_watch: bool = False


def _not_found() -> ApiError:
    return ApiError(
        errors.status_body(
            code=404,
            reason="NotFound",
            message="the server could not find the requested resource",
            details={},
        )
    )


def _json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(body=dumps(body), status=status, content_type=_JSON, headers=headers)


def _bool(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1")


class _Api:
    """Request handlers bound to the emulator's components."""

    def __init__(
        self,
        *,
        store: Store,
        faults: Faults,
        audit: AuditLog,
        access: AccessControl,
        settings: ServerSettings,
    ) -> None:
        self.store = store
        self.faults = faults
        self.audit = audit
        self.access = access
        self.settings = settings

    # --- entry point ----------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/_emulator/"):
            return await self.admin(request)
        user = self.access.user_for(request.headers.get("Authorization"))
        record: dict[str, Any] = {
            "verb": request.method.lower(),
            "group": "",
            "resource": "",
            "subresource": "",
            "namespace": "",
            "name": "",
            "path": request.path,
        }
        try:
            await self.faults.apply(request.method, request.path_qs)
            non_resource = self._non_resource(request)
            if non_resource is not None:
                response = non_resource
            else:
                target = self._parse(request.path)
                if target is None:
                    raise _not_found()
                verb = self._verb(request, target)
                record.update(
                    verb=verb,
                    group=target.group,
                    resource=target.resource,
                    subresource=target.subresource,
                    namespace=target.namespace or "",
                    name=target.name,
                    path="",
                )
                self.access.check(
                    Attributes(
                        user,
                        verb,
                        target.group,
                        target.resource,
                        target.subresource,
                        target.namespace or "",
                        target.name,
                    )
                )
                if verb == "watch":
                    entry = AuditRecord(user=user, code=200, **record)
                    return await self.watch(
                        request, target, opened=lambda: self.audit.record(entry)
                    )
                response = await self.resource(request, target, verb, user)
        except ApiError as exc:
            response = _json_response(exc.status, exc.code, exc.headers)
        self.audit.record(AuditRecord(user=user, code=response.status, **record))
        return response

    # --- non-resource endpoints -----------------------------------------------------------

    def _non_resource(self, request: web.Request) -> web.Response | None:  # noqa: C901, PLR0911, PLR0912 - a router: one branch per non-resource path
        path = request.path.rstrip("/") or "/"
        if request.method != "GET":
            if path in ("/version", "/api", "/apis") or path.startswith("/openapi"):
                raise errors.method_not_allowed(
                    "the server does not allow this method on the requested resource"
                )
            return None
        types = self.store.types()
        if path == "/version":
            return _json_response(discovery.version_info())
        if path in ("/healthz", "/readyz", "/livez"):
            return web.Response(text="ok", content_type="text/plain")
        if path == "/api":
            return _json_response(discovery.api_versions(request.host))
        if path == "/api/v1":
            return _json_response(discovery.resource_list(types, "", "v1"))
        if path == "/apis":
            return _json_response(discovery.group_list(types))
        if path == "/openapi/v2":
            if _PROTO_OPENAPI_PREFIX in request.headers.get("Accept", ""):
                # An empty protobuf message is a valid, empty OpenAPI v2 document.
                return web.Response(body=b"", content_type=_PROTO_OPENAPI)
            major, minor = discovery.SERVER_VERSION
            return _json_response(
                {
                    "swagger": "2.0",
                    "info": {"title": "Kubernetes", "version": f"v{major}.{minor}.0"},
                    "paths": {},
                    "definitions": {},
                }
            )
        if path == "/openapi/v3":
            return _json_response({"paths": {}})
        if path.startswith("/openapi/"):
            raise _not_found()
        parts = path.strip("/").split("/")
        if parts[0] == "apis" and len(parts) == 2:
            doc = discovery.group(types, parts[1])
            if doc is None:
                raise _not_found()
            return _json_response(doc)
        if parts[0] == "apis" and len(parts) == 3:
            doc = discovery.resource_list(types, parts[1], parts[2])
            if doc is None:
                raise _not_found()
            return _json_response(doc)
        return None

    # --- routing --------------------------------------------------------------------------

    def _parse(self, path: str) -> _Target | None:
        parts = [p for p in path.strip("/").split("/")]
        if not parts or not parts[0]:
            return None
        if parts[0] == "api" and len(parts) >= 3:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 4:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        legacy_watch = False
        if rest and rest[0] == "watch":
            legacy_watch = True
            rest = rest[1:]
        if not rest:
            return None
        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            candidate = self.store.find_type(group, version, rest[2])
            if candidate is not None and candidate.namespaced:
                namespace, rest = rest[1], rest[2:]
            elif group:
                return None
        if len(rest) > 3:
            return None
        resource = rest[0]
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        return _Target(group, version, resource, namespace, name, sub, legacy_watch)

    def _verb(self, request: web.Request, target: _Target) -> str:
        method = request.method
        if method == "GET":
            if target.legacy_watch or _bool(request.query.get("watch")):
                return "watch"
            return "get" if target.name else "list"
        if method == "POST":
            return "create"
        if method == "PUT":
            return "update"
        if method == "PATCH":
            return "patch"
        if method == "DELETE":
            return "delete" if target.name else "deletecollection"
        raise errors.method_not_allowed(
            "the server does not allow this method on the requested resource"
        )

    def _type(self, target: _Target) -> ResourceType:
        rt = self.store.type_for(target.group, target.version, target.resource)
        if target.namespace is not None and not rt.namespaced:
            raise _not_found()
        if rt.namespaced and target.namespace is None and target.name:
            raise _not_found()
        if target.subresource and target.subresource not in rt.subresources:
            raise _not_found()
        return rt

    # --- resource requests ----------------------------------------------------------------

    async def resource(  # noqa: C901, PLR0911 - a router: one branch per verb
        self, request: web.Request, target: _Target, verb: str, user: str
    ) -> web.Response:
        rt = self._type(target)
        if verb not in rt.verbs and not (target.subresource and verb in ("get", "update", "patch")):
            raise errors.method_not_allowed(
                "the server does not allow this method on the requested resource"
            )
        ns = target.namespace or ""
        if verb in ("update", "patch") and not target.name:
            raise errors.method_not_allowed(
                "the server does not allow this method on the requested resource"
            )
        dry_run = "All" in request.query.getall("dryRun", [])
        if verb == "get":
            obj = self.store.get(rt, ns, target.name)
            rep = rep_mod.negotiate(request.headers.get("Accept"), is_list=False, is_watch=False)
            return _json_response(self._render_one(rt, obj, rep, request))
        if verb == "list":
            return self.list(request, rt, target)
        if verb == "create":
            if target.name:
                raise errors.method_not_allowed(
                    "the server does not allow this method on the requested resource"
                )
            body = await self._body(request)
            if rt.virtual:
                return _json_response(self._access_review(body, user), 201)
            obj = self.store.create(rt, ns, body, dry_run=dry_run)
            return _json_response(self.store.view(rt, obj), 201)
        if verb == "update":
            body = await self._body(request)
            obj, created = self.store.update(
                rt, ns, target.name, body, subresource=target.subresource or None, dry_run=dry_run
            )
            return _json_response(self.store.view(rt, obj), 201 if created else 200)
        if verb == "patch":
            content_type = request.content_type
            body = await self._body(request)
            if content_type == "application/apply-patch+yaml" and not request.query.get(
                "fieldManager"
            ):
                raise errors.invalid(
                    "meta.k8s.io",
                    "PatchOptions",
                    "",
                    [
                        errors.Cause(
                            "FieldValueRequired",
                            "Required value: is required for apply patch",
                            "fieldManager",
                        )
                    ],
                )
            obj, created = self.store.patch(
                rt,
                ns,
                target.name,
                content_type,
                body,
                subresource=target.subresource or None,
                dry_run=dry_run,
                force=_bool(request.query.get("force")),
            )
            return _json_response(self.store.view(rt, obj), 201 if created else 200)
        if verb == "delete":
            return await self.delete(request, rt, ns, target.name, dry_run=dry_run)
        if verb == "deletecollection":
            return await self.delete_collection(request, rt, target, dry_run=dry_run)
        raise errors.method_not_allowed(
            "the server does not allow this method on the requested resource"
        )

    async def _body(self, request: web.Request) -> Any:
        raw = await request.read()
        if not raw:
            return None
        if request.content_type == protobuf.MEDIA_TYPE:
            try:
                return protobuf.decode(raw)
            except ProtobufError as exc:
                raise errors.unsupported_media_type(
                    f"the body of the request was in an unknown format - {exc}; accepted media "
                    "types include: application/json, application/yaml"
                ) from None
        try:
            if "yaml" in request.content_type:
                return yaml.safe_load(raw)
            return json.loads(raw)
        except (ValueError, yaml.YAMLError) as exc:
            raise errors.bad_request(
                f"couldn't get version/kind; json parse error: {exc}"
            ) from None

    def _render_one(
        self, rt: ResourceType, obj: JsonObj, rep: Representation, request: web.Request
    ) -> JsonObj:
        served = self.store.view(rt, obj)
        if rep.kind == "PartialObjectMetadata":
            return rep_mod.partial(served, rep)
        if rep.kind == "Table":
            return rep_mod.table(
                rt,
                [obj],
                rep,
                view=lambda o: self.store.view(rt, o),
                list_meta={"resourceVersion": obj["metadata"].get("resourceVersion", "")},
                include_object=request.query.get("includeObject", "Metadata"),
            )
        return served

    def _selectors(self, request: web.Request) -> tuple[LabelSelector, FieldSelector]:
        try:
            labels = LabelSelector.parse(request.query.get("labelSelector"))
            fields = FieldSelector.parse(request.query.get("fieldSelector"))
        except SelectorError as exc:
            raise errors.bad_request(str(exc)) from None
        return labels, fields

    def list(self, request: web.Request, rt: ResourceType, target: _Target) -> web.Response:
        labels, fields = self._selectors(request)
        limit_text = request.query.get("limit", "0") or "0"
        try:
            limit = int(limit_text)
        except ValueError:
            raise errors.bad_request(
                f'limit: Invalid value: "{limit_text}": must be an integer'
            ) from None
        page = self.store.list_page(
            rt,
            target.namespace,
            label_selector=labels,
            field_selector=fields,
            limit=limit,
            continue_token=request.query.get("continue") or None,
            resource_version=request.query.get("resourceVersion"),
            resource_version_match=request.query.get("resourceVersionMatch"),
        )
        list_meta: JsonObj = {"resourceVersion": str(page.resource_version)}
        if page.continue_token:
            list_meta["continue"] = page.continue_token
        if page.remaining is not None:
            list_meta["remainingItemCount"] = page.remaining
        rep = rep_mod.negotiate(request.headers.get("Accept"), is_list=True, is_watch=False)
        if rep.kind == "PartialObjectMetadataList":
            return _json_response(
                rep_mod.partial_list(
                    (self.store.view(rt, o) for o in page.items), rep, list_meta=list_meta
                )
            )
        if rep.kind == "Table":
            return _json_response(
                rep_mod.table(
                    rt,
                    page.items,
                    rep,
                    view=lambda o: self.store.view(rt, o),
                    list_meta=list_meta,
                    include_object=request.query.get("includeObject", "Metadata"),
                )
            )
        items = []
        for obj in page.items:
            served = self.store.view(rt, obj)
            if not rt.custom:
                served = {k: v for k, v in served.items() if k not in ("kind", "apiVersion")}
            items.append(served)
        return _json_response(
            {
                "kind": rt.list_kind,
                "apiVersion": rt.api_version,
                "metadata": list_meta,
                "items": items,
            }
        )

    async def _delete_options(self, request: web.Request) -> JsonObj:
        body = await self._body(request)
        options: JsonObj = body if isinstance(body, dict) else {}
        query = request.query
        if "propagationPolicy" in query:
            options["propagationPolicy"] = query["propagationPolicy"]
        if "orphanDependents" in query:
            options["orphanDependents"] = _bool(query["orphanDependents"])
        if options.get("orphanDependents") is not None and not options.get("propagationPolicy"):
            options["propagationPolicy"] = "Orphan" if options["orphanDependents"] else "Background"
        return options

    async def delete(
        self, request: web.Request, rt: ResourceType, ns: str, name: str, *, dry_run: bool
    ) -> web.Response:
        options = await self._delete_options(request)
        dry_run = dry_run or "All" in (options.get("dryRun") or [])
        pre = options.get("preconditions") or {}
        obj, deleted = self.store.delete(
            rt,
            ns,
            name,
            uid=pre.get("uid"),
            resource_version=pre.get("resourceVersion"),
            propagation=options.get("propagationPolicy"),
            dry_run=dry_run,
        )
        if deleted and not rt.return_deleted_object:
            details: JsonObj = {"name": name}
            if rt.group:
                details["group"] = rt.group
            details["kind"] = rt.plural
            details["uid"] = obj["metadata"]["uid"]
            return _json_response(
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": details,
                }
            )
        code = 202 if not deleted and options.get("orphanDependents") is False else 200
        return _json_response(self.store.view(rt, obj), code)

    async def delete_collection(
        self, request: web.Request, rt: ResourceType, target: _Target, *, dry_run: bool
    ) -> web.Response:
        options = await self._delete_options(request)
        labels, fields = self._selectors(request)
        page = self.store.list_page(
            rt, target.namespace, label_selector=labels, field_selector=fields
        )
        out = []
        for obj in page.items:
            meta = obj["metadata"]
            try:
                result, _ = self.store.delete(
                    rt,
                    meta.get("namespace", ""),
                    meta["name"],
                    propagation=options.get("propagationPolicy"),
                    dry_run=dry_run,
                )
            except ApiError as exc:
                if exc.code != 404:
                    raise
                continue
            out.append(self.store.view(rt, result))
        return _json_response(
            {
                "kind": rt.list_kind,
                "apiVersion": rt.api_version,
                "metadata": {"resourceVersion": str(self.store.resource_version)},
                "items": out,
            }
        )

    def _access_review(self, body: Any, user: str) -> JsonObj:
        if not isinstance(body, dict):
            raise errors.bad_request("the request body must be a SelfSubjectAccessReview")
        spec = body.get("spec") or {}
        attrs = spec.get("resourceAttributes")
        if isinstance(attrs, dict):
            allowed = self.access.allowed(
                Attributes(
                    user,
                    str(attrs.get("verb", "")),
                    str(attrs.get("group", "")),
                    str(attrs.get("resource", "")),
                    str(attrs.get("subresource", "")),
                    str(attrs.get("namespace", "")),
                    str(attrs.get("name", "")),
                )
            )
        else:
            allowed = True
        status: JsonObj = {"allowed": allowed}
        return {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": status,
        }

    # --- watch ----------------------------------------------------------------------------

    async def watch(
        self, request: web.Request, target: _Target, *, opened: Callable[[], None]
    ) -> web.StreamResponse:
        """Serve a watch; ``opened`` runs once the request is accepted (before streaming)."""
        rt = self._type(target)
        if target.name:
            raise errors.method_not_allowed(
                "the server does not allow this method on the requested resource"
            )
        query = request.query
        labels, fields = self._selectors(request)
        rep = rep_mod.negotiate(request.headers.get("Accept"), is_list=True, is_watch=True)
        timeout_text = query.get("timeoutSeconds")
        try:
            timeout = float(timeout_text) if timeout_text else 0.0
            if timeout <= 0:  # like kube-apiserver: 0 or absent means the server's default
                timeout = self.settings.watch_timeout
        except ValueError:
            raise errors.bad_request(f'timeoutSeconds: Invalid value: "{timeout_text}"') from None
        bookmarks = _bool(query.get("allowWatchBookmarks"))
        initial_events = _bool(query.get("sendInitialEvents"))
        rv = query.get("resourceVersion")
        watcher: Watcher | None = None
        gone: JsonObj | None = None
        try:
            watcher = self.store.watch(
                rt,
                target.namespace,
                label_selector=labels,
                field_selector=fields,
                resource_version=None if initial_events else rv,
            )
        except TooOld as exc:
            gone = errors.expired(
                f"too old resource version: {exc.requested} ({exc.oldest})"
            ).status
        if watcher is not None and initial_events:
            watcher.push("BOOKMARK", ("initial-events-end", self.store.resource_version))
        opened()
        response = web.StreamResponse(
            status=200, headers={"Content-Type": _JSON, "Cache-Control": "no-cache, private"}
        )
        response.enable_chunked_encoding()
        if watcher is None:
            with contextlib.suppress(ConnectionError):
                await response.prepare(request)
                await response.write(self._event("ERROR", gone, rt, rep))
                await response.write_eof()
            return response
        try:
            await response.prepare(request)
            aborted = await self._pump(
                request, response, watcher, rt, rep, timeout=timeout, bookmarks=bookmarks
            )
        except ConnectionError:
            log.debug("watch client went away")
            return response
        finally:
            self.store.stop_watch(watcher)
        if not aborted:
            with contextlib.suppress(ConnectionError):
                await response.write_eof()
        return response

    async def _pump(  # noqa: C901, PLR0913 - a watch stream's loop with its stop conditions
        self,
        request: web.Request,
        response: web.StreamResponse,
        watcher: Watcher,
        rt: ResourceType,
        rep: Representation,
        *,
        timeout: float,
        bookmarks: bool,
    ) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        interval = self.settings.bookmark_interval
        next_bookmark = loop.time() + interval
        while True:
            now = loop.time()
            until = min(deadline, next_bookmark) if bookmarks else deadline
            try:
                item = await asyncio.wait_for(watcher.queue.get(), max(until - now, 0))
            except TimeoutError:
                if loop.time() >= deadline:
                    if bookmarks:
                        await response.write(
                            self._event("BOOKMARK", self.store.resource_version, rt, rep)
                        )
                    return False
                await response.write(self._event("BOOKMARK", self.store.resource_version, rt, rep))
                next_bookmark = loop.time() + interval
                continue
            batch = [item]
            while len(batch) < 1000 and not watcher.queue.empty():
                batch.append(watcher.queue.get_nowait())
            chunks = []
            end = None
            for kind, obj in batch:
                if kind in ("CLOSE", "ABORT"):
                    end = kind
                    break
                chunks.append(self._event(kind, obj, rt, rep))
            if chunks:
                await response.write(b"".join(chunks))
            if end == "ABORT":
                if request.transport is not None:
                    request.transport.abort()
                return True
            if end == "CLOSE":
                return False

    def _event(self, kind: str, obj: Any, rt: ResourceType, rep: Representation) -> bytes:
        if kind == "ERROR":
            payload = obj
        elif kind == "BOOKMARK":
            annotations = None
            if isinstance(obj, tuple):
                annotations = {"k8s.io/initial-events-end": "true"}
                obj = obj[1]
            meta: JsonObj = {"resourceVersion": str(obj)}
            if annotations:
                meta["annotations"] = annotations
            if rep.kind == "PartialObjectMetadata":
                payload = {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": rep.api_version,
                    "metadata": meta,
                }
            elif rep.kind == "Table":
                payload = {
                    "kind": "Table",
                    "apiVersion": rep.api_version,
                    "metadata": meta,
                    "columnDefinitions": None,
                    "rows": None,
                }
            else:
                payload = {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta}
        else:
            served = self.store.view(rt, obj)
            if rep.kind == "PartialObjectMetadata":
                payload = rep_mod.partial(served, rep)
            elif rep.kind == "Table":
                payload = rep_mod.table(
                    rt,
                    [obj],
                    rep,
                    view=lambda o: self.store.view(rt, o),
                    list_meta={"resourceVersion": obj["metadata"].get("resourceVersion", "")},
                )
            else:
                payload = served
        return dumps({"type": kind, "object": payload}) + b"\n"

    # --- admin ----------------------------------------------------------------------------

    async def admin(self, request: web.Request) -> web.Response:  # noqa: C901, PLR0911 - a router: one branch per admin command
        path = request.path[len("/_emulator/") :].strip("/")
        method = request.method
        try:
            raw = await request.read()
            body = json.loads(raw) if raw.strip() else {}
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            if path == "healthz":
                return _json_response(
                    {"status": "ok", "resourceVersion": str(self.store.resource_version)}
                )
            if path == "faults/fail" and method == "POST":
                self.faults.fail_next(
                    int(body.get("count", 1)),
                    status=int(body.get("status", 500)),
                    retry_after=int(body.get("retry_after", 1)),
                    method=body.get("method"),
                    path=body.get("path"),
                )
                return _json_response({"ok": True})
            if path == "faults/delay" and method == "POST":
                count = body.get("count")
                self.faults.delay(
                    float(body["seconds"]),
                    count=None if count is None else int(count),
                    method=body.get("method"),
                    path=body.get("path"),
                )
                return _json_response({"ok": True})
            if path == "faults/drop-watches" and method == "POST":
                dropped = self.faults.drop_watches(abort=bool(body.get("abort", False)))
                return _json_response({"dropped": dropped})
            if path == "faults/compact" and method == "POST":
                return _json_response({"resourceVersion": str(self.faults.compact())})
            if path == "faults/clear" and method == "POST":
                self.faults.clear()
                return _json_response({"ok": True})
            if path == "audit" and method == "GET":
                return _json_response({"records": [r.as_dict() for r in self.audit.records]})
            if path == "audit" and method == "DELETE":
                self.audit.clear()
                return _json_response({"ok": True})
            if path == "access/deny" and method == "POST":
                self.access.deny(
                    verb=body.get("verb"),
                    group=body.get("group"),
                    resource=body.get("resource"),
                    namespace=body.get("namespace"),
                    user=body.get("user"),
                )
                return _json_response({"ok": True})
            if path == "access/deny" and method == "DELETE":
                self.access.allow()
                return _json_response({"ok": True})
        except (KeyError, ValueError, TypeError) as exc:
            return _json_response({"error": f"bad admin request: {exc}"}, 400)
        return _json_response({"error": f"unknown admin endpoint {method} /_emulator/{path}"}, 404)


def build_app(
    *,
    store: Store,
    faults: Faults,
    audit: AuditLog,
    access: AccessControl,
    settings: ServerSettings,
) -> web.Application:
    """Return the aiohttp application serving the emulated API."""
    api = _Api(store=store, faults=faults, audit=audit, access=access, settings=settings)
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", api.handle)
    return app
