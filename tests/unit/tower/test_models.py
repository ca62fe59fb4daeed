"""Strict parsing of Tower records into models, and secrets kept out of reprs."""

from __future__ import annotations

from typing import Any

import pytest

from nats_tower_operator.tower import (
    Account,
    Installation,
    IssuedCredential,
    K8sAccess,
    Role,
    TowerBadResponse,
    User,
)

SEED = "SUAM" + "A" * 54
JWT = "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJVQUJDIn0.c2lnbmF0dXJl"
CREDS = f"-----BEGIN NATS USER JWT-----\n{JWT}\n------END NATS USER JWT------\n{SEED}\n"


def user_record(**over: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": "u1",
        "account": "a1",
        "name": "ns-app",
        "description": "pod app",
        "signing_key": "",
        "public_key": "UABC",
        "creds": CREDS,
        "jwt": JWT,
        "created": "2024-05-01 10:00:00.000Z",
    }
    record.update(over)
    return record


def test_installation_urls_are_split_trimmed_and_empties_dropped() -> None:
    inst = Installation.from_record(
        {"id": "o1", "public_key": "OABC", "url": " nats://a:4222 ,, nats://b:4222 ,", "name": "x"}
    )
    assert inst.urls == ("nats://a:4222", "nats://b:4222")
    assert Installation.from_record({"id": "o1", "public_key": "OABC"}).urls == ()


def test_user_parses_and_hides_secrets_in_repr() -> None:
    user = User.from_record(user_record())
    assert user.signing_key_id is None  # PocketBase sends "" for an unset relation
    assert user.creds == CREDS and user.jwt == JWT
    text = repr(user)
    assert "ns-app" in text
    assert SEED not in text and JWT not in text and "BEGIN" not in text
    assert User.from_record(user_record(signing_key="sk1")).signing_key_id == "sk1"


def test_issued_credential_repr_hides_creds() -> None:
    cred = IssuedCredential(
        user_id="u1",
        user_public_key="UABC",
        creds=CREDS,
        urls=("nats://a",),
        account_name="acct",
        account_id="a1",
        installation="OABC",
        created=True,
    )
    assert SEED not in repr(cred) and JWT not in repr(cred)


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"id": None}, "id"),
        ({"account": 5}, "account"),
        ({"name": ""}, "name"),
        ({"creds": None}, "creds"),
        ({"jwt": ["x"]}, "jwt"),
        ({"signing_key": 3}, "signing_key"),
        ({"description": {}}, "description"),
    ],
)
def test_user_bad_fields_raise_bad_response(over: dict[str, Any], field: str) -> None:
    record = user_record(**over)
    if over.get(field, 0) is None:
        del record[field]
    with pytest.raises(TowerBadResponse) as info:
        User.from_record(record)
    assert field in str(info.value)
    assert SEED not in str(info.value)


@pytest.mark.parametrize("record", [None, [], "x", 3])
def test_non_objects_raise_bad_response(record: object) -> None:
    for model in (Installation, Account, Role, User, K8sAccess):
        with pytest.raises(TowerBadResponse):
            model.from_record(record)


def test_role_lists() -> None:
    base = {"id": "r1", "account": "a1", "role": "ro", "public_key": "AKEY"}
    role = Role.from_record({**base, "publish": ["a.>"], "subscribe": None})
    assert role.publish == ("a.>",) and role.subscribe == ()
    with pytest.raises(TowerBadResponse, match="publish"):
        Role.from_record({**base, "publish": "a.>", "subscribe": []})
    with pytest.raises(TowerBadResponse, match="subscribe"):
        Role.from_record({**base, "publish": [], "subscribe": [1]})


def test_account_and_access_require_their_relations() -> None:
    with pytest.raises(TowerBadResponse, match="operator"):
        Account.from_record({"id": "a1", "name": "x", "public_key": "A"})
    with pytest.raises(TowerBadResponse, match="namespace"):
        K8sAccess.from_record({"id": "k", "account": "a1", "cluster": "c"})
    link = K8sAccess.from_record({"id": "k", "account": "a1", "cluster": "c", "namespace": "ns"})
    assert (link.account_id, link.cluster, link.namespace) == ("a1", "c", "ns")


def test_public_api_is_exported() -> None:
    import nats_tower_operator.tower as tower

    for name in tower.__all__:
        assert getattr(tower, name) is not None, name
    for required in ("TowerClient", "CredentialIssuer", "TTLCache", "BatchLoader", "quote"):
        assert required in tower.__all__
