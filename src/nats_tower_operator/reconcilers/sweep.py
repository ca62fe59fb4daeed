"""Find and revoke Tower users of this cluster that no managed Secret refers to any more.

The reconciler revokes every user it replaces or stops needing, and records each step on
the Secret, so orphans are rare. They can still appear when a managed Secret is deleted
while the operator is not running (a re-issued user is then not restored), or when a
create's answer was lost and the Secret never written. A periodic sweep makes "no Tower
user outlives its workload" hold anyway.

Only users this operator could have created are considered: names under
``<cluster-id>/<namespace>/`` (in namespaced mode, only that namespace), whose JWT was
issued longer ago than the revocation grace period (so an in-flight reconcile's fresh user
is never touched; Tower's user records have no creation time, the JWT's ``iat`` is it),
in accounts that some managed Secret or labelled object of this cluster uses.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from nats_tower_operator.reconcilers import desired as rules
from nats_tower_operator.reconcilers.consumers import ConsumerIndex
from nats_tower_operator.reconcilers.labels import PREVIOUS_USER_ANNOTATION
from nats_tower_operator.reconcilers.plan import Policy
from nats_tower_operator.reconcilers.secretdoc import ownership
from nats_tower_operator.tower import CredentialIssuer, TowerError

__all__ = ["OrphanSweeper", "parse_user_name"]

log = logging.getLogger(__name__)


def parse_user_name(cluster_id: str, name: str) -> tuple[str, str] | None:
    """``(namespace, secret)`` of one of our user names, or None if it is not ours."""
    prefix = f"{cluster_id}/"
    if not name.startswith(prefix):
        return None
    rest = name[len(prefix) :].split("#", 1)[0]
    namespace, _, secret = rest.partition("/")
    if not namespace or not secret or "/" in secret:
        return None
    return namespace, secret


class OrphanSweeper:
    """Revokes unreferenced users of this cluster (see the module docstring)."""

    def __init__(  # noqa: PLR0913 - keyword-only collaborators
        self,
        *,
        issuer: CredentialIssuer,
        consumers: ConsumerIndex,
        secrets: Callable[[], Iterable[Mapping[str, Any]]],
        ready: Callable[[], bool],
        policy: Policy,
        namespace: str | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._issuer = issuer
        self._consumers = consumers
        self._secrets = secrets
        self._ready = ready
        self._policy = policy
        self._cluster = policy.cluster_id
        self._namespace = namespace
        self._clock = clock

    def _in_use(
        self,
    ) -> tuple[set[tuple[str, str, str]], set[tuple[str, str]], set[tuple[str, str]]]:
        # A reference counts only from the Secret the user is named for: an annotation in
        # one namespace cannot keep (or hide) another namespace's user.
        referenced: set[tuple[str, str, str]] = set()
        accounts: set[tuple[str, str]] = set()
        present: set[tuple[str, str]] = set()
        for secret in self._secrets():
            meta = secret.get("metadata") or {}
            place = (str(meta.get("namespace", "")), str(meta.get("name", "")))
            present.add(place)
            own = ownership(secret)
            if own is None:
                continue
            referenced.add((own.user_id, *place))
            previous = (meta.get("annotations") or {}).get(PREVIOUS_USER_ANNOTATION)
            if previous:
                referenced.add((str(previous), *place))
            if own.installation in self._policy.allowed_installations:
                accounts.add((own.installation, own.account))
        for request in self._consumers.secret_keys():
            for consumer in self._consumers.for_secret(request.namespace, request.name):
                wish = rules.desired_for(
                    consumer,
                    default_installation=self._policy.default_installation,
                    allowed_installations=self._policy.allowed_installations,
                )
                if isinstance(wish, rules.Desired):
                    accounts.add((wish.installation, wish.account))
        return referenced, accounts, present

    async def sweep(self) -> int:
        """Revoke orphaned users; return how many were revoked."""
        if not self._ready():
            return 0
        referenced, accounts, present = self._in_use()
        prefix = f"{self._cluster}/" + (f"{self._namespace}/" if self._namespace else "")
        now = self._clock()
        revoked = 0
        for installation, account in sorted(accounts):
            try:
                users = await self._issuer.users_named(installation, account, prefix)
            except TowerError as exc:
                log.warning(
                    "orphan sweep skipped an account: %s",
                    exc.message,
                    extra={"account": account},
                )
                continue
            for user in users:
                place = parse_user_name(self._cluster, user.name)
                if place is None or (self._namespace and place[0] != self._namespace):
                    continue
                if (user.id, *place) in referenced:
                    continue
                if (
                    user.issued_at is None
                    or now - user.issued_at < self._policy.revoke_grace_period
                ):
                    continue
                if place not in present and self._consumers.for_secret(*place):
                    continue  # its Secret is about to be (re)written by a reconcile
                try:
                    await self._issuer.revoke(user.id)
                except TowerError as exc:
                    log.warning("orphan sweep could not revoke a user: %s", exc.message)
                    continue
                revoked += 1
                log.info(
                    "revoked orphaned Tower user", extra={"user": user.name, "account": account}
                )
        return revoked
