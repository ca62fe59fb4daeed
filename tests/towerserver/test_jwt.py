"""NATS JWT encoding: keys, claims, signatures, creds text (nats-server acceptance is in
test_nats_acceptance.py)."""

from __future__ import annotations

import base64
import hashlib
import json

import nkeys
import pytest

from nats_tower_operator.towerserver import jwt


def _segments(token: str) -> tuple[dict[str, object], dict[str, object]]:
    header, payload, _ = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return (
        json.loads(base64.urlsafe_b64decode(pad(header))),
        json.loads(base64.urlsafe_b64decode(pad(payload))),
    )


@pytest.mark.parametrize(("kind", "prefix"), [("operator", "O"), ("account", "A"), ("user", "U")])
def test_generated_keys_have_nats_prefixes(kind: jwt.KeyKind, prefix: str) -> None:
    key = jwt.generate_nkey(kind)
    assert key.public_key.startswith(prefix) and len(key.public_key) == 56
    assert key.seed.startswith("S" + prefix)
    assert nkeys.from_seed(bytearray(key.seed.encode())).public_key.decode() == key.public_key
    assert key.seed not in repr(key)
    assert jwt.generate_nkey(kind).public_key != key.public_key


def test_bad_seed_is_rejected() -> None:
    with pytest.raises(jwt.JwtError):
        jwt.nkey_from_seed("SUNOTASEED")


def test_operator_and_account_jwts() -> None:
    operator = jwt.generate_nkey("operator")
    account = jwt.generate_nkey("account")
    role = jwt.generate_nkey("account")
    op_token = jwt.operator_jwt(
        operator=operator, name="main", system_account=account.public_key, iat=1_700_000_000
    )
    header, claims = _segments(op_token)
    assert header == {"typ": "JWT", "alg": "ed25519-nkey"}
    assert jwt.verify_jwt(op_token) == claims
    assert claims["iss"] == claims["sub"] == operator.public_key
    assert claims["nats"] == {
        "system_account": account.public_key,
        "type": "operator",
        "version": 2,
    }

    acc_token = jwt.account_jwt(
        operator=operator,
        account_public_key=account.public_key,
        name="orders",
        iat=1_700_000_001,
        scopes=[jwt.RoleScope(role.public_key, "writer", ["orders.>"], ["_INBOX.>"])],
        revocations={"UREVOKED": 1_700_000_000},
    )
    claims = jwt.verify_jwt(acc_token)
    nats = claims["nats"]
    assert claims["iss"] == operator.public_key and claims["sub"] == account.public_key
    assert nats["type"] == "account" and nats["version"] == 2
    assert nats["limits"]["conn"] == -1 and nats["limits"]["subs"] == -1
    assert nats["signing_keys"] == [
        {
            "kind": "user_scope",
            "key": role.public_key,
            "role": "writer",
            "template": {
                "pub": {"allow": ["orders.>"]},
                "sub": {"allow": ["_INBOX.>"]},
                "subs": -1,
                "data": -1,
                "payload": -1,
            },
        }
    ]
    assert nats["revocations"] == {"UREVOKED": 1_700_000_000}

    disabled = jwt.verify_jwt(
        jwt.account_jwt(
            operator=operator,
            account_public_key=account.public_key,
            name="orders",
            iat=5,
            disabled=True,
        )
    )
    assert disabled["nats"]["limits"]["conn"] == 0
    assert disabled["nats"]["revocations"] == {"*": 5}


def test_jti_is_the_hash_of_the_claims() -> None:
    operator = jwt.generate_nkey("operator")
    token = jwt.operator_jwt(operator=operator, name="x", system_account="A", iat=10)
    _, claims = _segments(token)
    jti = claims["jti"]
    claims["jti"] = ""
    digest = hashlib.new("sha512_256", json.dumps(claims, separators=(",", ":")).encode())
    assert jti == base64.b32encode(digest.digest()).decode().rstrip("=")


def test_user_jwts_plain_and_scoped() -> None:
    account = jwt.generate_nkey("account")
    role = jwt.generate_nkey("account")
    user = jwt.generate_nkey("user")
    plain = jwt.verify_jwt(
        jwt.user_jwt(user_public_key=user.public_key, name="u", iat=100, account=account)
    )
    assert plain["iss"] == account.public_key and plain["sub"] == user.public_key
    assert "exp" not in plain and "issuer_account" not in plain["nats"]
    assert plain["nats"]["type"] == "user" and plain["nats"]["subs"] == -1

    scoped = jwt.verify_jwt(
        jwt.user_jwt(
            user_public_key=user.public_key,
            name="u",
            iat=100,
            account=account,
            role_key=role,
            expires=160,
        )
    )
    assert scoped["iss"] == role.public_key
    assert scoped["exp"] == 160
    # nats-server rejects scoped users that carry permissions or limits of their own.
    assert scoped["nats"] == {"issuer_account": account.public_key, "type": "user", "version": 2}


def test_tampered_jwt_does_not_verify() -> None:
    account = jwt.generate_nkey("account")
    token = jwt.user_jwt(user_public_key="UX", name="u", iat=1, account=account)
    header, _payload, sig = token.split(".")
    _, claims = _segments(token)
    claims["name"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    with pytest.raises(jwt.JwtError):
        jwt.verify_jwt(f"{header}.{forged}.{sig}")


def test_creds_text_has_the_decorated_format() -> None:
    user = jwt.generate_nkey("user")
    creds = jwt.format_user_creds("eyJ.a.b", user.seed)
    lines = creds.splitlines()
    assert lines[0] == "-----BEGIN NATS USER JWT-----"
    assert lines[1] == "eyJ.a.b"
    assert lines[2] == "------END NATS USER JWT------"
    assert "NKEY Seed printed below can be used to sign and prove identity." in lines
    start = lines.index("-----BEGIN USER NKEY SEED-----")
    assert lines[start + 1] == user.seed
    assert lines[start + 2] == "------END USER NKEY SEED------"
    assert creds.endswith("*************************************************************\n")
