"""Writing credentials into Secrets: a new user (issue) or the recorded one again (rewrite).

Secrets are written create-first (an existing Secret shows up as AlreadyExists, then the
usual ownership rules apply to what is there). A replace keeps what others put on the
Secret, read live, on the version the pass decided on. New Secrets take a slot of their
namespace's quota before their user is made, and every user creation a token of its rate.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from nats_tower_operator.kube import SECRETS, AlreadyExists, Forbidden, Invalid
from nats_tower_operator.reconcile import Request, Result
from nats_tower_operator.reconcilers import desired as rules
from nats_tower_operator.reconcilers import plan as p
from nats_tower_operator.reconcilers.context import Outcome, Pass, Shared
from nats_tower_operator.reconcilers.labels import PREVIOUS_USER_ANNOTATION, Reason
from nats_tower_operator.reconcilers.revoking import Revoking
from nats_tower_operator.reconcilers.secretdoc import Issued, SecretState, render_secret, user_name
from nats_tower_operator.tower import CredentialSpec, Role, RoleSpec, TowerError

__all__ = ["Writing"]

log = logging.getLogger(__name__)

Converge = Callable[[Request, SecretState | None], Awaitable[Outcome]]
_VERBS = {Reason.CREATED: "created", Reason.RENEWED: "renewed", Reason.REISSUED: "re-issued"}


class Writing:
    """The write actions of the credential reconciler; ``converge`` re-plans on live state."""

    def __init__(self, shared: Shared, revoking: Revoking, converge: Converge) -> None:
        self._s = shared
        self._revoking = revoking
        self._converge = converge

    async def issue_within_quota(self, step: Pass, action: p.Issue) -> Outcome:
        """Issue when the namespace's quota and rate allow; a new Secret reserves its slot."""
        s, namespace, name = self._s, step.request.namespace, step.request.name
        new_secret = action.base is None or action.base.ownership is None
        if new_secret and not s.quota.reserve(namespace, name):
            await s.tell.warn(
                step.targets,
                Reason.CREDENTIAL_QUOTA_EXCEEDED,
                f"namespace {namespace} already has {s.quota.max_credentials} credentials "
                "managed by this operator (NATS_TOWER_MAX_CREDENTIALS_PER_NAMESPACE); delete "
                "unused ones, or ask the operator's admins for a higher quota",
            )
            after = s.policy.access_retry_interval * p.NOT_OWNED_RETRY_FACTOR
            return Outcome(Result(requeue_after=after), "Wait")
        written = False
        try:
            outcome = await s.within_rate(step) or await self.issue(step, action)
            written = outcome.content_changed
            return outcome
        finally:
            if new_secret and not written:
                s.quota.release(namespace, name)

    async def issue(self, step: Pass, action: p.Issue) -> Outcome:
        """Obtain the user of ``action.generation`` from Tower and write it."""
        s, wish, request = self._s, step.wish, step.request
        assert wish is not None
        if action.warning:
            await s.tell.warn(step.targets, Reason.OWNERSHIP_MISMATCH, action.warning)
        spec = self._spec(step, wish, action.generation)
        try:
            cred = await s.issuer.issue(spec)
            if cred.role_mismatch:
                # A user of ours with this name exists under another role: it cannot be
                # reused, so revoke it and issue again on the next pass.
                await s.issuer.revoke(cred.user_id)
                return Outcome(Result(requeue_after=p.AT_ONCE), "Issue")
        except TowerError as exc:
            return await s.tower_failed(step, exc)
        issued = Issued(
            user_id=cred.user_id,
            user_name=spec.user_name,
            user_public_key=cred.user_public_key,
            urls=tuple(cred.urls),
            account_name=cred.account_name,
            installation=wish.installation,
            role=wish.role.name if wish.role else None,
            generation=action.generation,
            creds=cred.creds,
        )
        extra = {PREVIOUS_USER_ANNOTATION: action.replaces} if action.replaces else {}
        try:
            await self._write(step, issued, action.base, extra)
        except AlreadyExists:
            return await self._found_existing(step, cred.user_id if cred.created else None)
        s.memory.verified.put(str(request), s.clock())
        await s.tell.normal(step.targets, action.reason, _issued_message(step, wish, action))
        if cred.role_differs is not None:
            await self._tell_role_differs(step, cred.role_differs)
        _log_issued(request, wish, action, cred.user_id)
        after = p.AT_ONCE if action.replaces else None
        return Outcome(Result(requeue_after=after), "Issue", content_changed=True)

    def _spec(self, step: Pass, wish: rules.Desired, generation: int) -> CredentialSpec:
        namespace, name = step.request.namespace, step.request.name
        cluster = self._s.policy.cluster_id
        first, role = step.targets[0], wish.role
        return CredentialSpec(
            installation=wish.installation,
            account=wish.account,
            namespace=namespace,
            user_name=user_name(cluster, namespace, name, generation),
            description=(
                f"Generated by nats-tower-operator for Secret {namespace}/{name} in cluster "
                f"{cluster} ({first.kind.lower()} {first.name})"
            ),
            role=RoleSpec(role.name, role.publish, role.subscribe) if role else None,
        )

    async def rewrite(self, step: Pass, action: p.Rewrite) -> Outcome:
        """Write the Secret again for the user it already records (same generation)."""
        own = action.ownership
        issued = Issued(
            user_id=action.user.id,
            user_name=own.user_name or action.user.name,
            user_public_key=action.user.public_key,
            urls=action.urls,
            account_name=own.account,
            installation=own.installation,
            role=own.role,
            generation=own.generation,
            creds=action.user.creds,
        )
        try:
            await self._write(step, issued, action.base, {})
        except AlreadyExists:
            return await self._found_existing(step, None)
        message = action.message.format(secret=step.request.name)
        await self._s.tell.normal(step.targets, action.reason, message)
        return Outcome(Result(), "Rewrite", content_changed=True)

    async def _found_existing(self, step: Pass, fresh_user: str | None) -> Outcome:
        """A create met an existing Secret: the usual ownership rules on what is there."""
        s, key = self._s, str(step.request)
        live = await s.live(step.request)
        if live is None or live.managed:
            return await self._converge(step.request, live)
        s.memory.not_ours.put(key, True)
        if fresh_user is not None:
            await s.issuer.revoke(fresh_user)  # created for nothing in this very pass
        tombstone = s.memory.tombstones.pop(key, None)
        if tombstone is not None:
            # Our Secret lost our label: it is no longer managed, and its user must not live
            # on outside the operator's count (a tenant could hold users past its quota).
            await self._revoking.revoke_own(step.request, tombstone.user_id)
        await s.tell_not_owned(step)
        after = s.policy.access_retry_interval * p.NOT_OWNED_RETRY_FACTOR
        return Outcome(Result(requeue_after=after), "NotOwned")

    async def _write(
        self, step: Pass, issued: Issued, base: SecretState | None, extra: Mapping[str, str]
    ) -> None:
        s, request, ns = self._s, step.request, step.request.namespace
        # A replace keeps what others put on the Secret (labels, annotations), which the
        # cache does not hold: read the live metadata, but write only over the version this
        # pass decided on (the resourceVersion precondition turns any change into a 409).
        live = None if base is None else await s.kube.get(SECRETS, request.name, namespace=ns)
        body = render_secret(
            namespace=ns,
            name=request.name,
            issued=issued,
            cluster_id=s.policy.cluster_id,
            now=s.clock(),
            base=live,
        )
        body["metadata"]["annotations"].update(extra)
        try:
            if base is None:
                await s.kube.create(SECRETS, body, namespace=ns)
            else:
                body["metadata"]["resourceVersion"] = base.metadata.get("resourceVersion")
                await s.kube.replace(SECRETS, request.name, body, namespace=ns)
        except (Invalid, Forbidden) as exc:
            await s.tell.warn(
                step.targets,
                Reason.ERROR_UPSERTING_SECRET,
                f"cannot write Secret {request.name}: {exc.message}",
            )
            raise
        # Written: what a deleted Secret held is no longer needed to restore it.
        s.memory.tombstones.pop(str(request), None)

    async def _tell_role_differs(self, step: Pass, role: Role) -> None:
        def listed(subjects: tuple[str, ...]) -> str:
            return ", ".join(subjects[:8]) + (", ..." if len(subjects) > 8 else "") or "none"

        await self._s.tell.warn(
            step.targets,
            Reason.ROLE_SUBJECTS_DIFFER,
            f"role {role.role!r} already exists in NATS Tower with publish "
            f"[{listed(role.publish)}] and subscribe [{listed(role.subscribe)}]; the "
            "credential has the role's subjects, not the annotations' (they only define a "
            "role that does not exist yet). Change the role in NATS Tower, or name a new role",
        )


def _log_issued(request: Request, wish: rules.Desired, action: p.Issue, user_id: str) -> None:
    log.info(
        "credential %s",
        _VERBS.get(action.reason, "updated"),
        extra={"secret": str(request), "account": wish.account, "generation": action.generation},
    )
    log.debug("credential of %s: Tower user %s", request, user_id)


def _issued_message(step: Pass, wish: rules.Desired, action: p.Issue) -> str:
    """The Normal Event of a new credential; it names a defaulted installation."""
    verb = _VERBS.get(action.reason, "updated")
    message = f"Secret {step.request.name} {verb} with a NATS user of account {wish.account}"
    if action.note:
        message += f" ({action.note})"
    if step.defaulted:
        message += (
            f"; installation {wish.installation} is the operator's default (no "
            "nats-tower.com/nats-tower-installation label)"
        )
    return message
