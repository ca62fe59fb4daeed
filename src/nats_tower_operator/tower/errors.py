"""Typed errors of the NATS Tower client, grouped by cause.

Every message is passed through :func:`redact` so that a NATS seed, a JWT or a
``.creds`` block echoed by a server can never reach a log line through an exception.
The client additionally removes its API token from any text it puts in an error.
"""

from __future__ import annotations

from typing import ClassVar

from nats_tower_operator.redaction import redact as _redact

__all__ = [
    "AccessNotAllowed",
    "AccountNotFound",
    "InstallationNotFound",
    "InvalidRecordId",
    "RoleNotFound",
    "TowerBadRequest",
    "TowerBadResponse",
    "TowerError",
    "TowerNotFound",
    "TowerUnauthorized",
    "TowerUnavailable",
    "redact",
]

_MAX_MESSAGE = 300


def redact(text: str, *secrets: str) -> str:
    """``text`` without credentials (see :mod:`nats_tower_operator.redaction`), shortened."""
    text = _redact(text, *secrets)
    if len(text) > _MAX_MESSAGE:
        text = text[:_MAX_MESSAGE] + "..."
    return text


class TowerError(Exception):
    """Base class of every error raised by the Tower client."""

    #: Whether retrying the same call later may succeed without anything else changing.
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.message = redact(message)
        self.status = status
        super().__init__(self.message)


class TowerUnavailable(TowerError):
    """Tower could not be reached or kept failing (connection, timeout, 5xx, 429)."""

    retryable = True


class TowerUnauthorized(TowerError):
    """Tower refused the API token.

    Real Tower never says so directly (the token is part of its API rules): a wrong token
    gets empty lists and 404s. The client raises this when such a negative answer is
    followed by a probe that sees no installation at all with the same token.
    """


class TowerNotFound(TowerError):
    """The addressed record does not exist (404)."""


class TowerBadRequest(TowerError):
    """Tower rejected the request (400); ``field_errors`` maps field -> PocketBase code."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = 400,
        field_errors: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, status=status)
        self.field_errors: dict[str, str] = dict(field_errors or {})

    @property
    def not_unique(self) -> bool:
        """True when a field was rejected as a duplicate (``validation_not_unique``)."""
        return "validation_not_unique" in self.field_errors.values()


class InvalidRecordId(TowerError):
    """A record id that is not PocketBase's 15 ``[a-z0-9]`` characters (never sent)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} is not a Tower record id")


class TowerBadResponse(TowerError):
    """Tower answered something that does not parse or lacks required fields."""


class InstallationNotFound(TowerNotFound):
    """No Tower operator ("installation") has this public key."""

    def __init__(self, public_key: str) -> None:
        super().__init__(f"installation {public_key!r} not found in Tower")
        self.public_key = public_key


class AccountNotFound(TowerNotFound):
    """The installation has no account with this name."""

    def __init__(self, installation: str, name: str) -> None:
        super().__init__(f"account {name!r} not found in installation {installation!r}")
        self.installation = installation
        self.name = name


class RoleNotFound(TowerNotFound):
    """The account has no role with this name and no subjects were given to create it."""

    def __init__(self, account: str, role: str) -> None:
        super().__init__(
            f"role {role!r} not found in account {account!r} and no publish/subscribe "
            "subjects were given to create it"
        )
        self.account = account
        self.role = role


class AccessNotAllowed(TowerError):
    """No nats_auth_k8s_access record links this cluster and namespace to the account."""

    def __init__(self, cluster: str, namespace: str, account: str) -> None:
        super().__init__(
            f"account {account!r} is not linked to namespace {namespace!r} of cluster "
            f"{cluster!r}; add a Kubernetes access record for it in NATS Tower"
        )
        self.cluster = cluster
        self.namespace = namespace
        self.account = account
