"""Remove credentials from text: the one redactor used by error messages and log lines.

NATS nkey seeds, JWTs, decorated ``.creds`` blocks, ``nt_`` API tokens and any literal
secrets the caller names are replaced by ``[redacted]``. Code never puts credentials into
messages on purpose; this is the guard against a library or a server echoing them.
"""

from __future__ import annotations

import re

__all__ = ["redact"]

# nkey seeds are base32 and start with "S" + the key type (SU, SA, SO, ...); whole tokens
# only, so a public key that happens to contain such a run is left alone.
_SEED = re.compile(r"\bS[UAONCPX][A-Z2-7]{40,}\b")
# JWTs: three base64url parts, the first one a JSON header ("eyJ...").
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.?[A-Za-z0-9_-]*")
# A decorated .creds block, whatever is inside it.
_CREDS_BLOCK = re.compile(r"-----BEGIN [^-]*-----.*?(------END [^-]*------|$)", re.DOTALL)
# Tower API tokens stored in nats_auth_api_tokens.
_NT_TOKEN = re.compile(r"\bnt_[A-Za-z0-9_-]{8,}")
REDACTED = "[redacted]"


def redact(text: str, *secrets: str) -> str:
    """``text`` with seeds, JWTs, creds blocks, ``nt_`` tokens and ``secrets`` removed."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    text = _CREDS_BLOCK.sub(REDACTED, text)
    text = _JWT.sub(REDACTED, text)
    text = _SEED.sub(REDACTED, text)
    return _NT_TOKEN.sub(REDACTED, text)
