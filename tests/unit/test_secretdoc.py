"""Managed Secret rendering and reading back what was recorded on it."""

from __future__ import annotations

import base64
import json

from nats_tower_operator.reconcilers.labels import USER_ID_ANNOTATION
from nats_tower_operator.reconcilers.secretdoc import (
    Issued,
    content_hash,
    creds_expiry,
    is_managed,
    ownership,
    parse_time,
    render_secret,
    summarize_secret,
    user_name,
)


def _enc(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _jwt(claims: dict[str, object]) -> str:
    return f"{_enc({'typ': 'JWT', 'alg': 'ed25519-nkey'})}.{_enc(claims)}.c2lnbmF0dXJlc2lnbmF0dXJl"


def _creds(claims: dict[str, object]) -> str:
    return (
        "-----BEGIN NATS USER JWT-----\n" + _jwt(claims) + "\n------END NATS USER JWT------\n\n"
        "-----BEGIN USER NKEY SEED-----\nSUAFAKE\n------END USER NKEY SEED------\n"
    )


ISSUED = Issued(
    user_id="abc123def456ghi",
    user_name="c1/default/mycreds",
    user_public_key="UABC",
    urls=("nats://a:4222", "nats://b:4222"),
    account_name="operator",
    installation="OINST",
    role="orders",
    generation=2,
    creds=_creds({"sub": "UABC", "exp": 2_000_000_000}),
)


def test_user_names_are_unique_per_namespace_and_generation() -> None:
    assert user_name("c1", "ns1", "s", 1) != user_name("c1", "ns2", "s", 1)
    assert user_name("c1", "ns", "s", 1) == "c1/ns/s"
    assert user_name("c1", "ns", "s", 3) == "c1/ns/s#3"


def test_render_then_read_back_ownership() -> None:
    body = render_secret(
        namespace="default", name="mycreds", issued=ISSUED, cluster_id="c1", now=1_700_000_000
    )
    assert body["type"] == "Opaque"
    assert base64.b64decode(body["data"]["URLS"]).decode() == "nats://a:4222,nats://b:4222"
    assert base64.b64decode(body["data"]["ACCOUNT_NAME"]).decode() == "operator"
    assert base64.b64decode(body["data"]["nats.creds"]).decode() == ISSUED.creds
    assert is_managed(body)
    own = ownership(body)
    assert own is not None
    assert (own.user_id, own.account, own.role, own.generation) == (
        "abc123def456ghi",
        "operator",
        "orders",
        2,
    )
    assert own.content_hash == content_hash(body["data"])
    assert own.expires_at == 2_000_000_000
    assert "SUAFAKE" not in repr(ISSUED)


def test_render_keeps_foreign_metadata_but_drops_stale_ours() -> None:
    base = {
        "metadata": {
            "name": "x",
            "labels": {"team": "a"},
            "annotations": {"keep": "1", "nats-tower.com/orphaned-since": "2020-01-01T00:00:00Z"},
            "resourceVersion": "7",
        }
    }
    body = render_secret(
        namespace="default", name="mycreds", issued=ISSUED, cluster_id="c1", now=0, base=base
    )
    assert body["metadata"]["labels"]["team"] == "a"
    assert body["metadata"]["annotations"]["keep"] == "1"
    assert "nats-tower.com/orphaned-since" not in body["metadata"]["annotations"]
    assert body["metadata"]["resourceVersion"] == "7"


def test_unmanaged_secret_has_no_ownership() -> None:
    assert ownership({"metadata": {"labels": {}}}) is None
    legacy = {"metadata": {"labels": {"nats-tower.com/nats-tower-secret": "true"}}}
    assert is_managed(legacy) and ownership(legacy) is None


def test_secret_whose_user_id_is_not_a_record_id_is_not_owned() -> None:
    body = render_secret(namespace="d", name="m", issued=ISSUED, cluster_id="c1", now=0)
    assert ownership(body) is not None
    for bad in ("abc123", "../../x", "ABC123DEF456GHI", "abc123def456ghi ", ""):
        body["metadata"]["annotations"][USER_ID_ANNOTATION] = bad
        assert is_managed(body)
        assert ownership(body) is None, bad
    del body["metadata"]["annotations"][USER_ID_ANNOTATION]
    assert ownership(body) is None


def test_creds_expiry() -> None:
    assert creds_expiry(_creds({"sub": "U"})) is None
    assert creds_expiry(_creds({"sub": "U", "exp": 123})) == 123
    assert creds_expiry("garbage") is None


def test_summary_drops_credentials_but_detects_changes() -> None:
    body = render_secret(namespace="d", name="m", issued=ISSUED, cluster_id="c", now=0)
    summary = summarize_secret(body)
    assert "data" not in summary and "SUAFAKE" not in json.dumps(summary)
    assert summary["digest"] == content_hash(body["data"])
    assert summary["urls"] == "nats://a:4222,nats://b:4222"
    assert summary["account_name"] == "operator"
    body["data"]["nats.creds"] = ""
    changed = summarize_secret(body)
    assert changed["digest"] != summary["digest"] and "nats.creds" not in changed["keys"]


def test_parse_time() -> None:
    assert parse_time("2024-01-01T00:00:00Z") == 1704067200
    assert parse_time("nope") is None and parse_time(None) is None
