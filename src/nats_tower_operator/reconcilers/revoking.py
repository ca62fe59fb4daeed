"""Revoking Tower users: only a Secret's own, always before the Secret is deleted.

A user id read from a Secret (its own user, a replaced one, a deleted Secret's) came from
an annotation a tenant can write, so each is read from Tower first and revoked only when
its name is the one this operator gives that Secret (:func:`~.secretdoc.belongs_to`).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Literal

from nats_tower_operator.kube import SECRETS, NotFound
from nats_tower_operator.reconcile import Request, Result
from nats_tower_operator.reconcilers import plan as p
from nats_tower_operator.reconcilers.context import Outcome, Pass, Shared
from nats_tower_operator.reconcilers.failures import access_message
from nats_tower_operator.reconcilers.labels import PREVIOUS_USER_ANNOTATION, Reason
from nats_tower_operator.reconcilers.secretdoc import Ownership, SecretState, belongs_to
from nats_tower_operator.tower import TowerUnauthorized, is_record_id

__all__ = ["Revoking", "Verdict"]

log = logging.getLogger(__name__)

Verdict = Literal["revoked", "gone", "foreign"]


class Revoking:
    """The revocation actions of the credential reconciler."""

    def __init__(self, shared: Shared) -> None:
        self._s = shared

    async def revoke_own(self, request: Request, user_id: str) -> Verdict:
        """Revoke ``user_id`` if Tower says it is this Secret's own user.

        "gone": proven already deleted; "foreign": not revoked, the id came from an
        annotation anyone with write access to the Secret can set.
        """
        s = self._s
        user = await s.issuer.lookup_user(user_id)
        if user is None:
            return "gone"
        if not belongs_to(user.name, s.policy.cluster_id, request.namespace, request.name):
            log.warning(
                "%s: a recorded user is not this Secret's own; it is not revoked",
                Reason.OWNERSHIP_MISMATCH,
                extra={"secret": str(request)},
            )
            return "foreign"
        await s.issuer.revoke(user_id)
        s.memory.revoked.put(user_id, True)
        return "revoked"

    async def previous(self, step: Pass, user_id: str | None) -> None:
        """A replaced user is revoked only once its successor is stored in the Secret."""
        if user_id is None:
            log.warning(
                "ignoring a malformed replaced-user annotation", extra={"secret": str(step.request)}
            )
        elif await self.revoke_own(step.request, user_id) == "foreign":
            await self._s.tell.warn(step.targets, Reason.OWNERSHIP_MISMATCH, p.FOREIGN_USER)
        else:
            log.info("replaced credential revoked", extra={"secret": str(step.request)})
        await self._s.patch(step, {PREVIOUS_USER_ANNOTATION: None})

    async def tombstone(self, request: Request, own: Ownership) -> None:
        """Deleted while nothing used it: nothing can mount it any more."""
        verdict = await self.revoke_own(request, own.user_id)  # on failure: kept for a retry
        self._s.memory.tombstones.pop(str(request), None)
        if verdict == "foreign":
            where = {"namespace": request.namespace, "name": request.name}
            await self._s.tell.on_secret(
                where, Reason.OWNERSHIP_MISMATCH, "Warning", p.FOREIGN_USER
            )
        log.info("credential of a deleted, unused Secret revoked", extra={"secret": str(request)})

    async def _revoke_recorded(self, request: Request, secret: SecretState) -> bool:
        """Revoke the Secret's user and its replaced one; True if one was not its own."""
        own = secret.ownership
        previous = secret.previous_user if is_record_id(secret.previous_user) else None
        foreign = False
        for user_id in (own.user_id if own else None, previous):
            if user_id and await self.revoke_own(request, user_id) == "foreign":
                foreign = True
                await self._s.tell.on_secret(
                    secret, Reason.OWNERSHIP_MISMATCH, "Warning", p.FOREIGN_USER
                )
        return foreign

    async def and_delete(self, step: Pass, action: p.RevokeAndDelete) -> Outcome:
        """Revoke the Tower user(s) first, then delete the Secret (never the reverse)."""
        s, request, secret, own = self._s, step.request, action.secret, action.ownership
        if action.cause == "unlinked":
            assert step.wish is not None
            message = access_message(s.policy.cluster_id, step.wish, request.namespace)
            await s.tell.warn(
                step.targets, Reason.ACCESS_NOT_ALLOWED, message + "; its credentials were revoked"
            )
        try:
            foreign = await self._revoke_recorded(request, secret)
        except TowerUnauthorized:
            if action.cause == "unlinked":
                raise
            # Not revoked, so not deleted: the Secret is the only record of its user.
            await s.tell.on_secret(
                secret,
                Reason.TOWER_TOKEN_REFUSED,
                "Warning",
                f"Secret {request.name} is unused but its NATS user cannot be revoked: NATS "
                "Tower does not accept the operator's API token. The Secret is kept until it "
                "does.",
            )
            return Outcome(Result(requeue_after=s.policy.access_retry_interval), "Wait")
        with contextlib.suppress(NotFound):
            await s.kube.delete(
                SECRETS, request.name, namespace=request.namespace, uid=secret.metadata.get("uid")
            )
        await s.tell.on_secret(
            secret,
            Reason.REVOKED,
            "Normal",
            f"Secret {request.name} deleted; its recorded user was not its own and was not revoked"
            if foreign
            else f"Tower user of account {own.account} revoked and Secret {request.name} deleted",
        )
        log.info("credential revoked", extra={"secret": str(request)})
        return Outcome(Result(requeue_after=action.after), "RevokeAndDelete", True)
