"""NATS JWT encoding (pure): keys, claims, signatures, creds text and account JWT updates
(nats-server's acceptance of these JWTs is proved in test_nats_acceptance.py)."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import nkeys
import pytest

from nats_tower_operator.towerserver import jwt

IAT = 1_700_000_000


def _segments(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = token.split(".")

    def pad(text: str) -> str:
        return text + "=" * (-len(text) % 4)

    return (
        json.loads(base64.urlsafe_b64decode(pad(header))),
        json.loads(base64.urlsafe_b64decode(pad(payload))),
    )


def _account_token(**overrides: Any) -> tuple[jwt.NKey, str]:
    """(operator signing key, account JWT) with one plain signing key."""
    signer = jwt.generate_nkey("operator")
    options: dict[str, Any] = {
        "signer": signer,
        "account_public_key": jwt.generate_nkey("account").public_key,
        "name": "orders",
        "iat": IAT,
        "signing_keys": [jwt.generate_nkey("account").public_key],
    }
    options.update(overrides)
    return signer, jwt.account_jwt(**options)


@pytest.mark.parametrize(("kind", "prefix"), [("operator", "O"), ("account", "A"), ("user", "U")])
def test_generated_keys_have_nats_prefixes(kind: jwt.KeyKind, prefix: str) -> None:
    key = jwt.generate_nkey(kind)
    assert key.public_key.startswith(prefix) and len(key.public_key) == 56
    assert key.seed.startswith("S" + prefix)
    assert nkeys.from_seed(bytearray(key.seed.encode())).public_key.decode() == key.public_key
    assert key.seed not in repr(key)
    assert jwt.generate_nkey(kind).public_key != key.public_key
    assert jwt.public_key_kind(key.public_key) == kind


def test_private_key_is_the_nkeys_encoding_of_the_seed() -> None:
    key = jwt.generate_nkey("user")
    private = jwt.private_key(key.seed)
    assert private.startswith("P")
    assert nkeys.from_seed(bytearray(key.seed.encode())).private_key.decode() == private


@pytest.mark.parametrize("seed", ["SUNOTASEED", "", "not even base32 !"])
def test_bad_seeds_are_rejected(seed: str) -> None:
    with pytest.raises(jwt.JwtError):
        jwt.nkey_from_seed(seed)
    with pytest.raises(jwt.JwtError):
        jwt.private_key(seed)


def test_operator_jwt_is_self_signed_and_lists_its_signing_keys() -> None:
    operator = jwt.generate_nkey("operator")
    signing = jwt.generate_nkey("operator")
    token = jwt.operator_jwt(
        operator=operator, name="main", iat=IAT, signing_keys=[signing.public_key]
    )
    header, claims = _segments(token)
    assert header == {"typ": "JWT", "alg": "ed25519-nkey"}
    assert jwt.verify_jwt(token) == claims
    assert claims["iss"] == claims["sub"] == operator.public_key
    assert claims["iat"] == IAT and claims["name"] == "main"
    assert claims["nats"] == {
        "signing_keys": [signing.public_key],
        "type": "operator",
        "version": 2,
    }
    with_system = jwt.verify_jwt(
        jwt.operator_jwt(operator=operator, name="main", iat=IAT, system_account="ASYS")
    )
    assert with_system["nats"] == {"system_account": "ASYS", "type": "operator", "version": 2}


def test_account_jwt_is_signed_by_the_given_signer_with_keys_scopes_and_revocations() -> None:
    signer = jwt.generate_nkey("operator")
    account = jwt.generate_nkey("account")
    plain = jwt.generate_nkey("account")
    role = jwt.generate_nkey("account")
    token = jwt.account_jwt(
        signer=signer,
        account_public_key=account.public_key,
        name="orders",
        iat=IAT,
        signing_keys=[plain.public_key],
        scopes=[jwt.RoleScope(role.public_key, "writer", ["orders.>"], ["_INBOX.>"])],
        revocations={"UREVOKED": IAT - 1},
    )
    claims = jwt.verify_jwt(token)
    nats = claims["nats"]
    assert claims["iss"] == signer.public_key and claims["sub"] == account.public_key
    assert nats["type"] == "account" and nats["version"] == 2
    assert nats["limits"]["conn"] == -1 and nats["limits"]["subs"] == -1
    assert "exports" not in nats
    assert nats["signing_keys"] == [
        plain.public_key,
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
        },
    ]
    assert nats["revocations"] == {"UREVOKED": IAT - 1}


def test_system_account_jwt_exports_the_monitoring_subjects() -> None:
    _, token = _account_token(system=True)
    exports = jwt.decode_jwt(token)["nats"]["exports"]
    assert [(e["subject"], e["type"]) for e in exports] == [
        ("$SYS.REQ.ACCOUNT.*.*", "service"),
        ("$SYS.ACCOUNT.*.>", "stream"),
    ]


def test_disabled_account_jwt_admits_no_connection_and_revokes_everyone() -> None:
    _, token = _account_token(disabled=True, iat=5)
    nats = jwt.verify_jwt(token)["nats"]
    assert nats["limits"]["conn"] == 0 and nats["limits"]["leaf"] == 0
    assert nats["revocations"] == {"*": 5}


def test_jti_is_the_hash_of_the_claims() -> None:
    operator = jwt.generate_nkey("operator")
    token = jwt.operator_jwt(operator=operator, name="x", system_account="A", iat=10)
    _, claims = _segments(token)
    jti = claims["jti"]
    claims["jti"] = ""
    digest = hashlib.new("sha512_256", json.dumps(claims, separators=(",", ":")).encode())
    assert jti == base64.b32encode(digest.digest()).decode().rstrip("=")


def test_user_jwt_signed_by_an_account_signing_key_names_its_issuer_account() -> None:
    account = jwt.generate_nkey("account")
    signing = jwt.generate_nkey("account")
    user = jwt.generate_nkey("user")
    claims = jwt.verify_jwt(
        jwt.user_jwt(
            user_public_key=user.public_key,
            name="u",
            iat=100,
            signer=signing,
            issuer_account=account.public_key,
        )
    )
    assert claims["iss"] == signing.public_key and claims["sub"] == user.public_key
    assert "exp" not in claims
    assert claims["nats"] == {
        "pub": {},
        "sub": {},
        "subs": -1,
        "data": -1,
        "payload": -1,
        "issuer_account": account.public_key,
        "type": "user",
        "version": 2,
    }


def test_user_jwt_signed_by_the_account_key_itself_has_no_issuer_account() -> None:
    account = jwt.generate_nkey("account")
    claims = jwt.verify_jwt(
        jwt.user_jwt(
            user_public_key="UX",
            name="u",
            iat=100,
            signer=account,
            issuer_account=account.public_key,
        )
    )
    assert claims["iss"] == account.public_key
    assert "issuer_account" not in claims["nats"]


def test_scoped_user_jwt_carries_no_permissions_and_may_expire() -> None:
    account = jwt.generate_nkey("account")
    role = jwt.generate_nkey("account")
    claims = jwt.verify_jwt(
        jwt.user_jwt(
            user_public_key=jwt.generate_nkey("user").public_key,
            name="u",
            iat=100,
            signer=role,
            issuer_account=account.public_key,
            scoped=True,
            expires=160,
        )
    )
    assert claims["iss"] == role.public_key
    assert claims["exp"] == 160
    # nats-server rejects scoped users that carry permissions or limits of their own.
    assert claims["nats"] == {"issuer_account": account.public_key, "type": "user", "version": 2}


def test_tampered_jwt_does_not_verify() -> None:
    account = jwt.generate_nkey("account")
    token = jwt.user_jwt(
        user_public_key="UX", name="u", iat=1, signer=account, issuer_account=account.public_key
    )
    header, _payload, sig = token.split(".")
    _, claims = _segments(token)
    claims["name"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    with pytest.raises(jwt.JwtError):
        jwt.verify_jwt(f"{header}.{forged}.{sig}")
    with pytest.raises(jwt.JwtError):
        jwt.decode_jwt("not-a-jwt")


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


# ------------------------------------------------------------------ update_account_jwt


def test_update_accumulates_revocations_and_keeps_earlier_ones() -> None:
    signer, token = _account_token(revocations={"UOLD": IAT})
    once = jwt.update_account_jwt(token, signer=signer, iat=IAT + 10, revoke=["UA"])
    twice = jwt.update_account_jwt(once, signer=signer, iat=IAT + 20, revoke=["UB", "UC"])
    claims = jwt.verify_jwt(twice)
    assert claims["nats"]["revocations"] == {
        "UA": IAT + 10,
        "UB": IAT + 20,
        "UC": IAT + 20,
        "UOLD": IAT,
    }
    assert claims["iat"] == IAT + 20
    assert claims["jti"] != jwt.decode_jwt(once)["jti"]


def test_update_keeps_everything_it_does_not_change() -> None:
    signer, token = _account_token(system=True)
    before = jwt.decode_jwt(token)
    after = jwt.verify_jwt(jwt.update_account_jwt(token, signer=signer, iat=IAT + 1, revoke=["U"]))
    assert {k: v for k, v in after.items() if k not in ("jti", "iat")} == {
        **{k: v for k, v in before.items() if k not in ("jti", "iat")},
        "nats": {**before["nats"], "revocations": {"U": IAT + 1}},
    }


def test_update_adds_replaces_and_removes_a_role_scope() -> None:
    signer, token = _account_token()
    plain = jwt.decode_jwt(token)["nats"]["signing_keys"][0]
    role = jwt.generate_nkey("account").public_key

    added = jwt.update_account_jwt(
        token, signer=signer, iat=IAT, scope=jwt.RoleScope(role, "r", ["a.>"], [])
    )
    keys = jwt.decode_jwt(added)["nats"]["signing_keys"]
    assert keys[0] == plain
    assert keys[1]["key"] == role and keys[1]["template"]["pub"] == {"allow": ["a.>"]}
    assert keys[1]["template"]["sub"] == {}

    replaced = jwt.update_account_jwt(
        added, signer=signer, iat=IAT, scope=jwt.RoleScope(role, "r", ["b.>"], ["c.>"])
    )
    keys = jwt.decode_jwt(replaced)["nats"]["signing_keys"]
    assert len(keys) == 2
    assert keys[1]["template"]["pub"] == {"allow": ["b.>"]}
    assert keys[1]["template"]["sub"] == {"allow": ["c.>"]}

    removed = jwt.update_account_jwt(replaced, signer=signer, iat=IAT, remove_key=role)
    assert jwt.decode_jwt(removed)["nats"]["signing_keys"] == [plain]
    none_left = jwt.update_account_jwt(removed, signer=signer, iat=IAT, remove_key=plain)
    assert "signing_keys" not in jwt.decode_jwt(none_left)["nats"]


def test_update_disabled_closes_the_account_and_keeps_user_revocations() -> None:
    signer, token = _account_token(revocations={"UA": IAT})
    claims = jwt.verify_jwt(
        jwt.update_account_jwt(token, signer=signer, iat=IAT + 5, disabled=True)
    )
    assert claims["nats"]["limits"]["conn"] == 0 and claims["nats"]["limits"]["leaf"] == 0
    assert claims["nats"]["limits"]["subs"] == -1
    assert claims["nats"]["revocations"] == {"*": IAT + 5, "UA": IAT}


def test_update_renames_resigns_and_drops_an_expiry() -> None:
    signer, token = _account_token()
    other_signer = jwt.generate_nkey("operator")
    claims = jwt.decode_jwt(token)
    claims["exp"] = IAT + 60
    expiring = jwt._encode(claims, signer)
    updated = jwt.verify_jwt(
        jwt.update_account_jwt(expiring, signer=other_signer, iat=IAT + 1, name="renamed")
    )
    assert updated["name"] == "renamed"
    assert updated["iss"] == other_signer.public_key
    assert "exp" not in updated


def test_update_refuses_a_jwt_that_is_not_an_account_jwt() -> None:
    operator = jwt.generate_nkey("operator")
    operator_token = jwt.operator_jwt(operator=operator, name="o", iat=IAT)
    with pytest.raises(jwt.JwtError):
        jwt.update_account_jwt(operator_token, signer=operator, iat=IAT, revoke=["U"])
    with pytest.raises(jwt.JwtError):
        jwt.update_account_jwt("garbage", signer=operator, iat=IAT)
