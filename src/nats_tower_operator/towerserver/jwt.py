"""NATS JWT v2 issuance (pure): nkey generation, claims for operators/accounts/users, creds text.

Everything here is deterministic given its inputs (the clock is passed in as ``iat``), touches
no I/O and never logs. The encoding follows the NATS JWT v2 format that nats-server verifies:
header ``{"typ":"JWT","alg":"ed25519-nkey"}``, base64url segments without padding, a signature
over ``header.payload`` made with the issuer's nkey, and ``jti`` = base32 (no padding) of the
SHA-512/256 hash of the claims serialised with an empty ``jti``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import nkeys

__all__ = [
    "JwtError",
    "KeyKind",
    "NKey",
    "RoleScope",
    "account_jwt",
    "decode_jwt",
    "format_user_creds",
    "generate_nkey",
    "nkey_from_seed",
    "operator_jwt",
    "private_key",
    "update_account_jwt",
    "user_jwt",
    "verify_jwt",
]

KeyKind = Literal["operator", "account", "user"]

_PREFIXES: dict[str, int] = {
    "operator": nkeys.PREFIX_BYTE_OPERATOR,
    "account": nkeys.PREFIX_BYTE_ACCOUNT,
    "user": nkeys.PREFIX_BYTE_USER,
}
_PUBLIC_PREFIX_CHAR: dict[str, str] = {"operator": "O", "account": "A", "user": "U"}

NO_LIMIT = -1
_HEADER: dict[str, str] = {"typ": "JWT", "alg": "ed25519-nkey"}


class JwtError(ValueError):
    """A JWT or nkey could not be decoded or verified."""


@dataclass(frozen=True, repr=False)
class NKey:
    """An nkey pair: public key (``O``/``A``/``U`` prefix) and its seed (``SO``/``SA``/``SU``).

    The repr never shows the seed.
    """

    public_key: str
    seed: str

    def sign(self, data: bytes) -> bytes:
        """Return the raw ed25519 signature of ``data``."""
        kp = nkeys.from_seed(bytearray(self.seed.encode()))
        signature: bytes = kp.sign(data)
        return signature

    def __repr__(self) -> str:
        return f"NKey(public_key={self.public_key!r})"


def generate_nkey(kind: KeyKind) -> NKey:
    """Create a new random nkey pair of the given kind."""
    seed = nkeys.encode_seed(os.urandom(32), _PREFIXES[kind]).decode()
    return nkey_from_seed(seed)


def nkey_from_seed(seed: str) -> NKey:
    """Rebuild a key pair from its encoded seed; raises :class:`JwtError` on a bad seed."""
    try:
        kp = nkeys.from_seed(bytearray(seed.encode()))
        public = kp.public_key.decode()
    except (nkeys.ErrInvalidSeed, nkeys.ErrInvalidPrefixByte, binascii.Error, ValueError) as exc:
        raise JwtError("invalid nkey seed") from exc
    return NKey(public_key=public, seed=seed)


def private_key(seed: str) -> str:
    """The nkeys private key encoding (``P...``) of a seed, as Tower stores it."""
    try:
        return str(nkeys.from_seed(bytearray(seed.encode())).private_key.decode())
    except (nkeys.ErrInvalidSeed, nkeys.ErrInvalidPrefixByte, binascii.Error, ValueError) as exc:
        raise JwtError("invalid nkey seed") from exc


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _dumps(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _encode(claims: dict[str, Any], signer: NKey) -> str:
    """Fill ``jti`` and sign; ``claims`` must already hold ``iat``/``iss``/``sub``/``nats``."""
    claims = dict(claims)
    claims["jti"] = ""
    digest = hashlib.new("sha512_256", _dumps(claims)).digest()
    claims["jti"] = base64.b32encode(digest).rstrip(b"=").decode()
    signing_input = f"{_b64(_dumps(_HEADER))}.{_b64(_dumps(claims))}"
    signature = signer.sign(signing_input.encode())
    return f"{signing_input}.{_b64(signature)}"


def decode_jwt(token: str) -> dict[str, Any]:
    """Return the claims of ``token`` without verifying the signature."""
    try:
        _, payload, _ = token.split(".")
        claims = json.loads(_unb64(payload))
    except (ValueError, binascii.Error) as exc:
        raise JwtError("malformed JWT") from exc
    if not isinstance(claims, dict):
        raise JwtError("malformed JWT")
    return claims


def verify_jwt(token: str) -> dict[str, Any]:
    """Check the signature of ``token`` against its ``iss`` and return the claims."""
    import nacl.exceptions
    import nacl.signing

    claims = decode_jwt(token)
    header_b64, payload_b64, sig_b64 = token.split(".")
    header = json.loads(_unb64(header_b64))
    if header.get("alg") != "ed25519-nkey":
        raise JwtError("unsupported JWT algorithm")
    issuer = str(claims.get("iss", ""))
    try:
        raw = base64.b32decode(issuer + "=" * (-len(issuer) % 8))
        verify_key = nacl.signing.VerifyKey(raw[1:33])
        verify_key.verify(f"{header_b64}.{payload_b64}".encode(), _unb64(sig_b64))
    except (binascii.Error, ValueError, nacl.exceptions.BadSignatureError) as exc:
        raise JwtError("JWT signature does not verify") from exc
    return claims


def _base_claims(*, iat: int, issuer: NKey, subject: str, name: str) -> dict[str, Any]:
    return {"jti": "", "iat": iat, "iss": issuer.public_key, "name": name, "sub": subject}


def operator_jwt(
    *,
    operator: NKey,
    name: str,
    iat: int,
    signing_keys: Sequence[str] = (),
    system_account: str | None = None,
) -> str:
    """Self-signed operator JWT listing its signing keys (and the system account, if given)."""
    claims = _base_claims(iat=iat, issuer=operator, subject=operator.public_key, name=name)
    nats: dict[str, Any] = {"type": "operator", "version": 2}
    if signing_keys:
        nats["signing_keys"] = list(signing_keys)
    if system_account:
        nats["system_account"] = system_account
    claims["nats"] = dict(sorted(nats.items()))
    return _encode(claims, operator)


@dataclass(frozen=True)
class RoleScope:
    """A scoped user signing key of an account: users it signs get exactly these permissions."""

    public_key: str
    role: str
    publish: Sequence[str] = field(default_factory=tuple)
    subscribe: Sequence[str] = field(default_factory=tuple)

    def claim(self) -> dict[str, Any]:
        """The scope as carried in the account JWT's ``signing_keys``."""
        return {
            "kind": "user_scope",
            "key": self.public_key,
            "role": self.role,
            "template": {
                "pub": _allow(self.publish),
                "sub": _allow(self.subscribe),
                "subs": NO_LIMIT,
                "data": NO_LIMIT,
                "payload": NO_LIMIT,
            },
        }


def _allow(subjects: Sequence[str]) -> dict[str, list[str]]:
    return {"allow": list(subjects)} if subjects else {}


def _limits(*, disabled: bool) -> dict[str, Any]:
    # Connection and data limits as Tower's default limit record; JetStream is left off.
    return {
        "subs": NO_LIMIT,
        "data": NO_LIMIT,
        "payload": NO_LIMIT,
        "imports": NO_LIMIT,
        "exports": NO_LIMIT,
        "wildcards": True,
        "conn": 0 if disabled else NO_LIMIT,
        "leaf": 0 if disabled else NO_LIMIT,
    }


def _system_exports() -> list[dict[str, Any]]:
    """The monitoring exports Tower gives every SYS account."""
    return [
        {
            "name": "account-monitoring-services",
            "subject": "$SYS.REQ.ACCOUNT.*.*",
            "type": "service",
            "response_type": "Stream",
            "account_token_position": 4,
        },
        {
            "name": "account-monitoring-streams",
            "subject": "$SYS.ACCOUNT.*.>",
            "type": "stream",
            "account_token_position": 3,
        },
    ]


def account_jwt(  # noqa: PLR0913 - keyword-only claims of an account JWT
    *,
    signer: NKey,
    account_public_key: str,
    name: str,
    iat: int,
    signing_keys: Sequence[str] = (),
    scopes: Sequence[RoleScope] = (),
    revocations: Mapping[str, int] | None = None,
    system: bool = False,
    disabled: bool = False,
) -> str:
    """Account JWT signed by the operator (or one of its signing keys).

    ``signing_keys`` are the account's plain signing keys, ``scopes`` its roles.
    ``disabled`` produces a JWT that admits no connection (used when an account is deleted,
    since nats-server's resolver keeps account JWTs forever).
    """
    nats: dict[str, Any] = {
        "limits": _limits(disabled=disabled),
        "default_permissions": {"pub": {}, "sub": {}},
        "type": "account",
        "version": 2,
    }
    if system:
        nats["exports"] = _system_exports()
    keys: list[Any] = list(signing_keys) + [scope.claim() for scope in scopes]
    if keys:
        nats["signing_keys"] = keys
    revoked = dict(revocations or {})
    if disabled:
        revoked["*"] = iat
    if revoked:
        nats["revocations"] = dict(sorted(revoked.items()))
    claims = _base_claims(iat=iat, issuer=signer, subject=account_public_key, name=name)
    claims["nats"] = nats
    return _encode(claims, signer)


def update_account_jwt(  # noqa: PLR0913 - keyword-only changes to an account JWT
    token: str,
    *,
    signer: NKey,
    iat: int,
    revoke: Sequence[str] = (),
    scope: RoleScope | None = None,
    remove_key: str | None = None,
    name: str | None = None,
    disabled: bool = False,
) -> str:
    """Re-sign an account JWT with changes, keeping everything else (Tower's read-modify-write).

    ``revoke`` adds user keys to the revocations (revoked as of ``iat``); ``scope`` adds or
    replaces a role's scoped key; ``remove_key`` drops a signing key; ``disabled`` revokes
    every user and admits no connection.
    """
    claims = decode_jwt(token)
    nats = claims.get("nats")
    if not isinstance(nats, dict) or nats.get("type") != "account":
        raise JwtError("not an account JWT")
    nats = dict(nats)
    keys = [k for k in nats.get("signing_keys") or [] if _signing_key(k) != remove_key]
    if scope is not None:
        keys = [k for k in keys if _signing_key(k) != scope.public_key] + [scope.claim()]
    if keys:
        nats["signing_keys"] = keys
    else:
        nats.pop("signing_keys", None)
    revocations = dict(nats.get("revocations") or {})
    for user_key in revoke:
        revocations[user_key] = iat
    if disabled:
        revocations["*"] = iat
        limits = dict(nats.get("limits") or {})
        limits.update({"conn": 0, "leaf": 0})
        nats["limits"] = limits
    if revocations:
        nats["revocations"] = dict(sorted(revocations.items()))
    claims = {k: v for k, v in claims.items() if k != "exp"}
    claims.update({"jti": "", "iat": iat, "iss": signer.public_key, "nats": nats})
    if name is not None:
        claims["name"] = name
    return _encode(claims, signer)


def _signing_key(entry: object) -> str | None:
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict):
        key = entry.get("key")
        return key if isinstance(key, str) else None
    return None


def user_jwt(  # noqa: PLR0913 - keyword-only claims of a user JWT
    *,
    user_public_key: str,
    name: str,
    iat: int,
    signer: NKey,
    issuer_account: str,
    scoped: bool = False,
    expires: int | None = None,
) -> str:
    """User JWT signed by an account signing key (``issuer_account`` names the account).

    A user signed by a role's scoped key (``scoped``) carries no permissions of its own
    (nats-server applies the scope's template and rejects scoped users that set any).
    """
    claims = _base_claims(iat=iat, issuer=signer, subject=user_public_key, name=name)
    if expires:
        claims["exp"] = expires
    nats: dict[str, Any] = {}
    if not scoped:
        nats = {
            "pub": {},
            "sub": {},
            "subs": NO_LIMIT,
            "data": NO_LIMIT,
            "payload": NO_LIMIT,
        }
    if issuer_account != signer.public_key:
        nats["issuer_account"] = issuer_account
    nats.update({"type": "user", "version": 2})
    claims["nats"] = nats
    return _encode(claims, signer)


def format_user_creds(jwt_token: str, seed: str) -> str:
    """The standard decorated ``.creds`` text holding a user JWT and its ``SU...`` seed."""
    return (
        "-----BEGIN NATS USER JWT-----\n"
        f"{jwt_token}\n"
        "------END NATS USER JWT------\n"
        "\n"
        "************************* IMPORTANT *************************\n"
        "NKEY Seed printed below can be used to sign and prove identity.\n"
        "NKEYs are sensitive and should be treated as secrets.\n"
        "\n"
        "-----BEGIN USER NKEY SEED-----\n"
        f"{seed}\n"
        "------END USER NKEY SEED------\n"
        "\n"
        "*************************************************************\n"
    )


def public_key_kind(public_key: str) -> KeyKind | None:
    """The kind of an encoded public key by its prefix letter, or None if unknown."""
    for kind, char in _PUBLIC_PREFIX_CHAR.items():
        if public_key.startswith(char) and len(public_key) == 56:
            return kind  # type: ignore[return-value]
    return None
