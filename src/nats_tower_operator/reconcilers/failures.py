"""What to tell the consumers when Tower fails, and whether to wait or retry (pure).

One row per Tower error type, most specific first: the Event reason, its message, and the
retry policy. ``later`` rows wait :attr:`~.plan.Policy.access_retry_interval` (someone must
change something in Tower or in the labels; hammering does not help); ``retry`` rows raise
so the work queue retries with per-key backoff (Tower is down or answering oddly).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from nats_tower_operator.reconcilers.desired import Desired
from nats_tower_operator.reconcilers.labels import Reason
from nats_tower_operator.tower import (
    AccessNotAllowed,
    AccountNotFound,
    InstallationNotFound,
    RoleNotFound,
    TowerBadRequest,
    TowerError,
    TowerUnauthorized,
)

__all__ = ["FAILURES", "Failure", "access_message", "explain"]

Retry = Literal["later", "retry"]


@dataclass(frozen=True, slots=True)
class Failure:
    """The Warning to give the consumers for a Tower error, and what to do next."""

    reason: str
    message: str
    retry: Retry


def access_message(cluster_id: str, wish: Desired, namespace: str) -> str:
    """The message that tells an account owner exactly which link to add in Tower.

    The same words whether the account is not linked or does not exist at all: a tenant
    must not learn which accounts exist that its namespace may not use.
    """
    return (
        f"account {wish.account!r} is not linked to namespace {namespace!r} of cluster "
        f"{cluster_id!r} (or does not exist): an account owner must allow this cluster and "
        "namespace in NATS Tower (account settings, Kubernetes access)"
    )


_Describe = Callable[[TowerError, Desired, str, str], str]

FAILURES: tuple[tuple[type[TowerError], str, Retry, _Describe], ...] = (
    (
        AccessNotAllowed,
        Reason.ACCESS_NOT_ALLOWED,
        "later",
        lambda exc, wish, cluster, namespace: access_message(cluster, wish, namespace),
    ),
    (
        InstallationNotFound,
        Reason.INSTALLATION_NOT_FOUND,
        "later",
        lambda exc, wish, cluster, namespace: (
            f"installation {wish.installation} does not exist in NATS Tower"
        ),
    ),
    (
        AccountNotFound,  # told like "not linked": existence is not for tenants to probe
        Reason.ACCESS_NOT_ALLOWED,
        "later",
        lambda exc, wish, cluster, namespace: access_message(cluster, wish, namespace),
    ),
    (RoleNotFound, Reason.ROLE_NOT_FOUND, "later", lambda exc, *_: exc.message),
    (
        TowerUnauthorized,
        Reason.TOWER_TOKEN_REFUSED,
        "later",
        lambda *_: (
            "NATS Tower does not accept the operator's API token; nothing is changed until "
            "it does (the operator's logs and /readyz say more)"
        ),
    ),
    (
        TowerBadRequest,
        Reason.ERROR_CREATING_USER,
        "later",
        lambda exc, *_: f"NATS Tower refused the request: {exc.message}",
    ),
    (
        TowerError,
        Reason.ERROR_CREATING_USER,
        "retry",
        lambda exc, *_: f"NATS Tower is not answering properly, retrying: {exc.message}",
    ),
)


def explain(exc: TowerError, wish: Desired, *, cluster_id: str, namespace: str) -> Failure:
    """The first row of :data:`FAILURES` that matches ``exc``."""
    for kind, reason, retry, describe in FAILURES:
        if isinstance(exc, kind):
            return Failure(reason, describe(exc, wish, cluster_id, namespace), retry)
    raise AssertionError("TowerError is the last row")  # pragma: no cover
