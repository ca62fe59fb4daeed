"""Request building: paths, query parameters, headers and bodies (pure core)."""

from __future__ import annotations

import json

import httpx
import pytest

from nats_tower_operator.kube import (
    CRDS,
    EVENTS,
    LEASES,
    NACK_ACCOUNTS,
    NAMESPACES,
    PODS,
    SECRETS,
    SELF_SUBJECT_ACCESS_REVIEWS,
)
from nats_tower_operator.kube.requests import (
    METADATA_ACCEPT,
    METADATA_LIST_ACCEPT,
    create_request,
    delete_request,
    discovery_request,
    discovery_serves,
    get_request,
    list_page,
    list_request,
    patch_request,
    replace_request,
    watch_request,
)


def test_api_versions_and_paths() -> None:
    assert PODS.api_version == "v1"
    assert LEASES.api_version == "coordination.k8s.io/v1"
    assert NACK_ACCOUNTS.api_version == "jetstream.nats.io/v1beta2"
    assert NACK_ACCOUNTS.kind == "Account"
    assert PODS.path("default") == "/api/v1/namespaces/default/pods"
    assert PODS.path(None) == "/api/v1/pods"
    assert SECRETS.path("a", "b") == "/api/v1/namespaces/a/secrets/b"
    assert PODS.path("a", "p", "status") == "/api/v1/namespaces/a/pods/p/status"
    assert NAMESPACES.path(None, "kube-system") == "/api/v1/namespaces/kube-system"
    assert (
        NACK_ACCOUNTS.path("x", "acc")
        == "/apis/jetstream.nats.io/v1beta2/namespaces/x/accounts/acc"
    )
    assert CRDS.path(None, "accounts.jetstream.nats.io") == (
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/accounts.jetstream.nats.io"
    )
    assert SELF_SUBJECT_ACCESS_REVIEWS.path(None) == (
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
    )
    assert EVENTS.group_version_path == "/api/v1"


def test_path_segments_are_quoted_and_scope_checked() -> None:
    assert SECRETS.path("ns", "a/b") == "/api/v1/namespaces/ns/secrets/a%2Fb"
    with pytest.raises(ValueError):
        SECRETS.path("ns", "..")
    with pytest.raises(ValueError):
        NAMESPACES.path("ns")
    with pytest.raises(ValueError):
        PODS.path("ns", None, "status")
    with pytest.raises(ValueError):
        get_request(SECRETS, "x")  # namespaced object without a namespace


def test_list_request_params_and_selector_encoding() -> None:
    req = list_request(
        PODS,
        namespace="ns",
        label_selector="nats-tower.com/nats-tower-secret,app in (a,b),tier!=x",
        field_selector="status.phase=Running",
        limit=50,
        continue_token="tok",
    )
    assert req.verb == "list" and req.is_read and req.stat_key == "list pods"
    url = httpx.URL("https://k" + req.path, params=req.params)
    assert url.params["labelSelector"] == "nats-tower.com/nats-tower-secret,app in (a,b),tier!=x"
    assert url.params["fieldSelector"] == "status.phase=Running"
    assert url.params["limit"] == "50" and url.params["continue"] == "tok"
    raw = url.query.decode()
    assert "labelSelector=nats-tower.com%2Fnats-tower-secret%2Capp+in+%28a%2Cb%29" in raw
    assert "tier%21%3Dx" in raw
    assert dict(req.headers)["Accept"] == "application/json"


def test_metadata_only_accept_headers() -> None:
    assert dict(list_request(PODS, metadata_only=True).headers)["Accept"] == METADATA_LIST_ACCEPT
    assert METADATA_LIST_ACCEPT.startswith(
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,"
    )
    get = get_request(PODS, "p", namespace="n", metadata_only=True)
    assert dict(get.headers)["Accept"] == METADATA_ACCEPT
    watch = watch_request(PODS, resource_version="1", metadata_only=True)
    assert dict(watch.headers)["Accept"] == METADATA_ACCEPT
    assert METADATA_ACCEPT == (
        "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
    )


def test_watch_request_params() -> None:
    req = watch_request(
        NACK_ACCOUNTS, resource_version="42", namespace="n", label_selector="a=b", timeout_seconds=7
    )
    params = dict(req.params)
    assert params == {
        "watch": "true",
        "labelSelector": "a=b",
        "resourceVersion": "42",
        "allowWatchBookmarks": "true",
        "timeoutSeconds": "7",
    }
    assert req.path == "/apis/jetstream.nats.io/v1beta2/namespaces/n/accounts"
    no_bm = watch_request(PODS, resource_version="", allow_bookmarks=False)
    assert "allowWatchBookmarks" not in dict(no_bm.params)
    assert "resourceVersion" not in dict(no_bm.params)


def test_create_fills_type_and_takes_namespace_from_body() -> None:
    body = {"metadata": {"name": "s", "namespace": "team"}, "data": {}}
    req = create_request(SECRETS, body)
    assert (req.method, req.path) == ("POST", "/api/v1/namespaces/team/secrets")
    sent = json.loads(req.body or b"")
    assert sent["apiVersion"] == "v1" and sent["kind"] == "Secret"
    assert "kind" not in body  # the caller's dict is not mutated
    assert not req.is_read
    with pytest.raises(ValueError):
        create_request(SECRETS, {"metadata": {"name": "s"}})


def test_replace_and_patch_and_delete() -> None:
    body = {"metadata": {"name": "s", "namespace": "n", "resourceVersion": "7"}}
    req = replace_request(SECRETS, "s", body)
    assert (req.method, req.path) == ("PUT", "/api/v1/namespaces/n/secrets/s")
    assert json.loads(req.body or b"")["metadata"]["resourceVersion"] == "7"
    with pytest.raises(ValueError):
        replace_request(SECRETS, "other", body)

    merge = patch_request(SECRETS, "s", {"data": {"a": None}}, namespace="n")
    assert dict(merge.headers)["Content-Type"] == "application/merge-patch+json"
    strategic = patch_request(PODS, "p", {"a": 1}, namespace="n", patch_type="strategic")
    assert dict(strategic.headers)["Content-Type"] == "application/strategic-merge-patch+json"
    jp = patch_request(
        PODS, "p", [{"op": "remove", "path": "/x"}], namespace="n", patch_type="json"
    )
    assert dict(jp.headers)["Content-Type"] == "application/json-patch+json"
    with pytest.raises(ValueError):
        patch_request(PODS, "p", {"a": 1}, namespace="n", patch_type="json")

    plain = delete_request(SECRETS, "s", namespace="n")
    assert plain.method == "DELETE" and plain.body is None
    cond = delete_request(
        SECRETS, "s", namespace="n", uid="u1", resource_version="9", propagation_policy="Background"
    )
    assert json.loads(cond.body or b"") == {
        "apiVersion": "v1",
        "kind": "DeleteOptions",
        "preconditions": {"uid": "u1", "resourceVersion": "9"},
        "propagationPolicy": "Background",
    }


def test_list_page_and_discovery() -> None:
    items, rv, cont = list_page(
        SECRETS,
        {"metadata": {"resourceVersion": "5", "continue": "c"}, "items": [{"metadata": {}}]},
    )
    assert rv == "5" and cont == "c"
    assert items[0]["kind"] == "Secret" and items[0]["apiVersion"] == "v1"
    _, _, none = list_page(SECRETS, {"metadata": {"resourceVersion": "5", "continue": ""}})
    assert none is None
    assert discovery_request(NACK_ACCOUNTS).path == "/apis/jetstream.nats.io/v1beta2"
    assert discovery_serves({"resources": [{"name": "accounts"}]}, "accounts")
    assert not discovery_serves({"resources": [{"name": "streams"}]}, "accounts")
