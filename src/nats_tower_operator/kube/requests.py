"""Pure request building and response interpretation for the Kubernetes REST API.

Nothing here does I/O: functions turn a call into an :class:`ApiRequest` and turn
response bytes into objects or typed errors. The client in ``client.py`` is the shell.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .errors import ServerError, error_from_response
from .models import JSON
from .resources import Resource

__all__ = [
    "METADATA_ACCEPT",
    "METADATA_LIST_ACCEPT",
    "PATCH_CONTENT_TYPES",
    "ApiRequest",
    "PatchType",
    "create_request",
    "decode_object",
    "delete_request",
    "discovery_request",
    "discovery_serves",
    "get_request",
    "list_page",
    "list_request",
    "patch_request",
    "replace_request",
    "watch_request",
]

PatchType = Literal["merge", "strategic", "json"]

JSON_CONTENT = "application/json"
METADATA_ACCEPT = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
METADATA_LIST_ACCEPT = (
    "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
)
PATCH_CONTENT_TYPES: Mapping[str, str] = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
}
READ_VERBS = frozenset({"get", "list", "watch", "discovery"})


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """One HTTP request to the API server, plus the (verb, plural) it is counted under."""

    verb: str
    plural: str
    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None

    @property
    def is_read(self) -> bool:
        """Whether the request only reads (and may therefore be retried after a 5xx)."""
        return self.verb in READ_VERBS

    @property
    def stat_key(self) -> str:
        """The key this request is counted under, e.g. ``"create secrets"``."""
        return f"{self.verb} {self.plural}"


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _namespace_for(resource: Resource, namespace: str | None, *, named: bool) -> str | None:
    """Validate scope: a namespaced resource needs a namespace for single-object verbs."""
    if not resource.namespaced:
        if namespace is not None:
            raise ValueError(f"{resource.plural} is cluster-scoped; no namespace allowed")
        return None
    if named and not namespace:
        raise ValueError(f"{resource.plural} is namespaced; a namespace is required")
    return namespace or None


def _selectors(label_selector: str | None, field_selector: str | None) -> list[tuple[str, str]]:
    params = []
    if label_selector:
        params.append(("labelSelector", label_selector))
    if field_selector:
        params.append(("fieldSelector", field_selector))
    return params


def get_request(
    resource: Resource, name: str, *, namespace: str | None = None, metadata_only: bool = False
) -> ApiRequest:
    """GET one object (optionally as ``PartialObjectMetadata``)."""
    ns = _namespace_for(resource, namespace, named=True)
    headers = (("Accept", METADATA_ACCEPT if metadata_only else JSON_CONTENT),)
    return ApiRequest("get", resource.plural, "GET", resource.path(ns, name), headers=headers)


def list_request(  # noqa: PLR0913 - keyword-only list parameters of the Kubernetes API
    resource: Resource,
    *,
    namespace: str | None = None,
    label_selector: str | None = None,
    field_selector: str | None = None,
    limit: int | None = 500,
    continue_token: str | None = None,
    metadata_only: bool = False,
) -> ApiRequest:
    """GET one page of a collection (all namespaces when ``namespace`` is None)."""
    ns = _namespace_for(resource, namespace, named=False)
    params = _selectors(label_selector, field_selector)
    if limit:
        params.append(("limit", str(limit)))
    if continue_token:
        params.append(("continue", continue_token))
    headers = (("Accept", METADATA_LIST_ACCEPT if metadata_only else JSON_CONTENT),)
    return ApiRequest(
        "list", resource.plural, "GET", resource.path(ns), params=tuple(params), headers=headers
    )


def watch_request(  # noqa: PLR0913 - keyword-only watch parameters of the Kubernetes API
    resource: Resource,
    *,
    resource_version: str,
    namespace: str | None = None,
    label_selector: str | None = None,
    field_selector: str | None = None,
    metadata_only: bool = False,
    timeout_seconds: int = 300,
    allow_bookmarks: bool = True,
) -> ApiRequest:
    """GET a watch stream starting after ``resource_version``."""
    ns = _namespace_for(resource, namespace, named=False)
    params = [("watch", "true"), *_selectors(label_selector, field_selector)]
    if resource_version:
        params.append(("resourceVersion", resource_version))
    if allow_bookmarks:
        params.append(("allowWatchBookmarks", "true"))
    params.append(("timeoutSeconds", str(int(timeout_seconds))))
    headers = (("Accept", METADATA_ACCEPT if metadata_only else JSON_CONTENT),)
    return ApiRequest(
        "watch", resource.plural, "GET", resource.path(ns), params=tuple(params), headers=headers
    )


def _with_type(resource: Resource, body: Mapping[str, Any]) -> JSON:
    out = dict(body)
    out.setdefault("apiVersion", resource.api_version)
    out.setdefault("kind", resource.kind)
    return out


def _body_namespace(body: Mapping[str, Any]) -> str | None:
    meta = body.get("metadata")
    ns = meta.get("namespace") if isinstance(meta, Mapping) else None
    return ns if isinstance(ns, str) and ns else None


def _body_name(body: Mapping[str, Any]) -> str | None:
    meta = body.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    return name if isinstance(name, str) and name else None


def create_request(
    resource: Resource, body: Mapping[str, Any], *, namespace: str | None = None
) -> ApiRequest:
    """POST a new object; the namespace defaults to ``body.metadata.namespace``."""
    if resource.namespaced and namespace is None:
        namespace = _body_namespace(body)
    ns = _namespace_for(resource, namespace, named=True)
    return ApiRequest(
        "create",
        resource.plural,
        "POST",
        resource.path(ns),
        headers=(("Content-Type", JSON_CONTENT), ("Accept", JSON_CONTENT)),
        body=_dumps(_with_type(resource, body)),
    )


def replace_request(
    resource: Resource, name: str, body: Mapping[str, Any], *, namespace: str | None = None
) -> ApiRequest:
    """PUT a whole object; its ``metadata.resourceVersion`` (if set) is the precondition."""
    if resource.namespaced and namespace is None:
        namespace = _body_namespace(body)
    ns = _namespace_for(resource, namespace, named=True)
    body_name = _body_name(body)
    if body_name is not None and body_name != name:
        raise ValueError("body metadata.name does not match the name being replaced")
    return ApiRequest(
        "replace",
        resource.plural,
        "PUT",
        resource.path(ns, name),
        headers=(("Content-Type", JSON_CONTENT), ("Accept", JSON_CONTENT)),
        body=_dumps(_with_type(resource, body)),
    )


def patch_request(
    resource: Resource,
    name: str,
    patch: Mapping[str, Any] | list[Any],
    *,
    namespace: str | None = None,
    patch_type: PatchType = "merge",
) -> ApiRequest:
    """PATCH an object with a merge, strategic-merge or JSON patch."""
    ns = _namespace_for(resource, namespace, named=True)
    try:
        content_type = PATCH_CONTENT_TYPES[patch_type]
    except KeyError:
        raise ValueError(f"unknown patch type {patch_type!r}") from None
    if (patch_type == "json") != isinstance(patch, list):
        raise ValueError("a JSON patch is a list of operations; other patches are objects")
    return ApiRequest(
        "patch",
        resource.plural,
        "PATCH",
        resource.path(ns, name),
        headers=(("Content-Type", content_type), ("Accept", JSON_CONTENT)),
        body=_dumps(patch),
    )


def delete_request(
    resource: Resource,
    name: str,
    *,
    namespace: str | None = None,
    uid: str | None = None,
    resource_version: str | None = None,
    propagation_policy: str | None = None,
) -> ApiRequest:
    """DELETE an object, with uid/resourceVersion preconditions when given."""
    ns = _namespace_for(resource, namespace, named=True)
    options: JSON = {}
    preconditions = {
        k: v for k, v in (("uid", uid), ("resourceVersion", resource_version)) if v is not None
    }
    if preconditions:
        options["preconditions"] = preconditions
    if propagation_policy is not None:
        options["propagationPolicy"] = propagation_policy
    body = None
    headers: tuple[tuple[str, str], ...] = (("Accept", JSON_CONTENT),)
    if options:
        body = _dumps({"apiVersion": "v1", "kind": "DeleteOptions", **options})
        headers = (("Content-Type", JSON_CONTENT), *headers)
    return ApiRequest(
        "delete", resource.plural, "DELETE", resource.path(ns, name), headers=headers, body=body
    )


def discovery_request(resource: Resource) -> ApiRequest:
    """GET the APIResourceList of the resource's group version."""
    return ApiRequest(
        "discovery",
        resource.plural,
        "GET",
        resource.group_version_path,
        headers=(("Accept", JSON_CONTENT),),
    )


def _invalid_response(message: str) -> ServerError:
    return ServerError(502, "InvalidResponse", message)


def decode_object(status: int, body: bytes, headers: Mapping[str, str]) -> JSON:
    """Decode a JSON object response, raising the typed error for status >= 400."""
    if status >= 400:
        raise error_from_response(status, body, headers)
    try:
        data = json.loads(body) if body else {}
    except (ValueError, UnicodeDecodeError):
        raise _invalid_response("response body is not JSON") from None
    if not isinstance(data, dict):
        raise _invalid_response("response body is not a JSON object")
    return data


def list_page(resource: Resource, data: Mapping[str, Any]) -> tuple[list[JSON], str, str | None]:
    """Items, resourceVersion and continue token of one list page.

    Items without ``apiVersion``/``kind`` (the API omits them in lists) get the resource's.
    """
    raw_items = data.get("items") or []
    if not isinstance(raw_items, list):
        raise _invalid_response("list items is not an array")
    items: list[JSON] = []
    for item in raw_items:
        if not isinstance(item, dict):
            continue
        if "kind" not in item or "apiVersion" not in item:
            item = _with_type(resource, item)
        items.append(item)
    meta = data.get("metadata") if isinstance(data.get("metadata"), Mapping) else {}
    assert isinstance(meta, Mapping)
    rv = meta.get("resourceVersion")
    cont = meta.get("continue")
    return items, str(rv) if rv else "", str(cont) if cont else None


def discovery_serves(data: Mapping[str, Any], plural: str) -> bool:
    """Whether an APIResourceList lists ``plural``."""
    resources = data.get("resources")
    if not isinstance(resources, list):
        return False
    return any(isinstance(r, Mapping) and r.get("name") == plural for r in resources)
