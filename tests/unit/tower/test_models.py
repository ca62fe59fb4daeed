"""Strict parsing of Tower records into models: record ids, JWT claims, secrets out of reprs."""

from __future__ import annotations

import base64
import json
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
    UserSummary,
    is_record_id,
)
from nats_tower_operator.tower.models import jwt_claims

SEED = "SUAM" + "A" * 54
JWT = "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJVQUJDIn0.c2lnbmF0dXJl"
CREDS = f"-----BEGIN NATS USER JWT-----\n{JWT}\n------END NATS USER JWT------\n{SEED}\n"

USER_ID = "u1u1u1u1u1u1u1u"
ACCOUNT_ID = "a1a1a1a1a1a1a1a"
OPERATOR_ID = "o1o1o1o1o1o1o1o"
ROLE_ID = "r1r1r1r1r1r1r1r"

BAD_IDS = [
    "u1",
    "",
    "U1U1U1U1U1U1U1U",
    "u1u1u1u1u1u1u1u1",
    "u1u1u1u1u1u1u1-",
    "../../x/records",
    15,
]


def b64url(data: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def jwt_with(claims: object) -> str:
    """A JWT-shaped token (header.payload.signature) whose payload is ``claims``."""
    return f"{b64url({'typ': 'JWT', 'alg': 'ed25519-nkey'})}.{b64url(claims)}.c2lnbmF0dXJl"


def user_record(**over: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": USER_ID,
        "account": ACCOUNT_ID,
        "name": "ns-app",
        "description": "pod app",
        "signing_key": "",
        "public_key": "UABC",
        "creds": CREDS,
        "jwt": JWT,
    }
    record.update(over)
    return record


def test_record_ids_are_15_lowercase_alphanumerics() -> None:
    assert is_record_id("abcdefghij12345")
    assert is_record_id(USER_ID)
    for bad in BAD_IDS:
        assert not is_record_id(bad), bad
    assert not is_record_id(None)
    assert not is_record_id("abcdefghij1234\n")


def test_installation_urls_are_split_trimmed_and_empties_dropped() -> None:
    inst = Installation.from_record(
        {"id": OPERATOR_ID, "public_key": "OABC", "url": " nats://a:4222 ,, nats://b:4222 ,"}
    )
    assert inst.urls == ("nats://a:4222", "nats://b:4222")
    assert Installation.from_record({"id": OPERATOR_ID, "public_key": "OABC"}).urls == ()


def test_user_parses_and_hides_secrets_in_repr() -> None:
    user = User.from_record(user_record())
    assert user.signing_key_id is None  # PocketBase sends "" for an unset relation
    assert user.creds == CREDS and user.jwt == JWT
    text = repr(user)
    assert "ns-app" in text
    assert SEED not in text and JWT not in text and "BEGIN" not in text
    assert User.from_record(user_record(signing_key=ROLE_ID)).signing_key_id == ROLE_ID


def test_issued_credential_repr_hides_creds() -> None:
    cred = IssuedCredential(
        user_id=USER_ID,
        user_public_key="UABC",
        creds=CREDS,
        urls=("nats://a",),
        account_name="acct",
        account_id=ACCOUNT_ID,
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


@pytest.mark.parametrize("bad", BAD_IDS)
@pytest.mark.parametrize(
    ("model", "record", "field"),
    [
        (Installation, {"id": OPERATOR_ID, "public_key": "OABC"}, "id"),
        (
            Account,
            {"id": ACCOUNT_ID, "operator": OPERATOR_ID, "name": "x", "public_key": "A"},
            "id",
        ),
        (
            Account,
            {"id": ACCOUNT_ID, "operator": OPERATOR_ID, "name": "x", "public_key": "A"},
            "operator",
        ),
        (User, user_record(), "id"),
        (User, user_record(), "account"),
        (User, user_record(), "signing_key"),
        (Role, {"id": ROLE_ID, "account": ACCOUNT_ID, "role": "r", "public_key": "A"}, "account"),
        (
            K8sAccess,
            {"id": "k" * 15, "account": ACCOUNT_ID, "cluster": "c", "namespace": "n"},
            "id",
        ),
        (UserSummary, {"id": USER_ID, "account": ACCOUNT_ID, "name": "n"}, "account"),
    ],
)
def test_bad_record_ids_are_rejected(
    model: Any, record: dict[str, Any], field: str, bad: object
) -> None:
    if bad == "" and field == "signing_key":
        return  # "" is how PocketBase sends an unset relation
    with pytest.raises(TowerBadResponse, match=field):
        model.from_record({**record, field: bad})


@pytest.mark.parametrize("record", [None, [], "x", 3])
def test_non_objects_raise_bad_response(record: object) -> None:
    for model in (Installation, Account, Role, User, K8sAccess, UserSummary):
        with pytest.raises(TowerBadResponse):
            model.from_record(record)


def test_role_lists() -> None:
    base = {"id": ROLE_ID, "account": ACCOUNT_ID, "role": "ro", "public_key": "AKEY"}
    role = Role.from_record({**base, "publish": ["a.>"], "subscribe": None})
    assert role.publish == ("a.>",) and role.subscribe == ()
    with pytest.raises(TowerBadResponse, match="publish"):
        Role.from_record({**base, "publish": "a.>", "subscribe": []})
    with pytest.raises(TowerBadResponse, match="subscribe"):
        Role.from_record({**base, "publish": [], "subscribe": [1]})


def test_account_and_access_require_their_relations() -> None:
    with pytest.raises(TowerBadResponse, match="operator"):
        Account.from_record({"id": ACCOUNT_ID, "name": "x", "public_key": "A"})
    with pytest.raises(TowerBadResponse, match="namespace"):
        K8sAccess.from_record({"id": "k" * 15, "account": ACCOUNT_ID, "cluster": "c"})
    link = K8sAccess.from_record(
        {"id": "k" * 15, "account": ACCOUNT_ID, "cluster": "c", "namespace": "ns"}
    )
    assert (link.account_id, link.cluster, link.namespace) == (ACCOUNT_ID, "c", "ns")


# ------------------------------------------------------------------ JWT claims, UserSummary


def test_user_summary_is_issued_at_the_jwts_iat() -> None:
    record = {
        "id": USER_ID,
        "account": ACCOUNT_ID,
        "name": "c1/ns/app",
        "jwt": jwt_with({"sub": "UABC", "iat": 1_700_000_123, "nats": {"type": "user"}}),
    }
    summary = UserSummary.from_record(record)
    assert summary == UserSummary(
        id=USER_ID, account_id=ACCOUNT_ID, name="c1/ns/app", issued_at=1_700_000_123.0
    )
    assert "jwt" in UserSummary.FIELDS.split(",") and "creds" not in UserSummary.FIELDS
    assert "created" not in UserSummary.FIELDS  # Tower's users have no created field


def test_user_summary_without_a_readable_iat_has_no_issue_time() -> None:
    base = {"id": USER_ID, "account": ACCOUNT_ID, "name": "n"}
    assert UserSummary.from_record(base).issued_at is None  # jwt not listed
    assert UserSummary.from_record({**base, "jwt": ""}).issued_at is None
    assert UserSummary.from_record({**base, "jwt": "garbage"}).issued_at is None
    assert UserSummary.from_record({**base, "jwt": jwt_with({"sub": "U"})}).issued_at is None
    with pytest.raises(TowerBadResponse, match="jwt"):
        UserSummary.from_record({**base, "jwt": 5})


@pytest.mark.parametrize(
    "iat",
    [
        "1700000000",
        -5,
        0,
        None,
        [1],
        {"t": 1},
        True,
    ],
)
def test_junk_iat_gives_no_issue_time(iat: object) -> None:
    record = {"id": USER_ID, "account": ACCOUNT_ID, "name": "n", "jwt": jwt_with({"iat": iat})}
    assert UserSummary.from_record(record).issued_at is None


def test_jwt_claims_reads_the_payload_without_checking_the_signature() -> None:
    claims = {"sub": "UABC", "iat": 1, "nats": {"pub": {"allow": ["a.>"]}}}
    assert jwt_claims(jwt_with(claims)) == claims
    payload = base64.urlsafe_b64encode(b'{"iat":2}').decode()  # with padding
    assert jwt_claims(f"h.{payload}.s") == {"iat": 2}


@pytest.mark.parametrize(
    "token",
    [
        "",
        "a",
        "a.b",
        "a.b.c.d",
        "h.!!!!.s",
        "h.é.s",
        "h." + base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode() + ".s",
        "h." + b64url([1, 2]) + ".s",
        "h." + b64url("text") + ".s",
        "h." + base64.urlsafe_b64encode(b"{not json").decode() + ".s",
        "h." + base64.urlsafe_b64encode(b"null").decode() + ".s",
        "..",
    ],
)
def test_jwt_claims_of_junk_is_empty(token: str) -> None:
    assert jwt_claims(token) == {}


def test_public_api_is_exported() -> None:
    import nats_tower_operator.tower as tower

    for name in tower.__all__:
        assert getattr(tower, name) is not None, name
    for required in ("TowerClient", "CredentialIssuer", "TTLCache", "BatchLoader", "quote"):
        assert required in tower.__all__
