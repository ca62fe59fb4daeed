"""The credential reconciler: one managed Secret, keyed by (namespace, secret name).

Each pass reads, plans, acts:

1. **read** who asks for the Secret (the consumer index; invalid consumers get their
   Warning here) and what the Secret holds (:func:`~.secretdoc.read_secret` over the
   informer's copy, never the credentials);
2. **plan**: :func:`~.plan.plan` picks the one action (see its state table); an action that
   needs Tower's word (verify, restore) gets it and is planned again with the facts;
3. **act**: execute that action and return an :class:`Outcome` saying whether the
   credential's content changed.

Every durable fact (user id, generation, orphaned-since, a user still to revoke) is stored
on the Secret, so a restart at any point converges to the same outcome. What is kept in
memory only saves work: when Tower was last asked about a Secret, the last content of
recently deleted Secrets (until it is restored or revoked), Secrets found to be someone
else's.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from nats_tower_operator.kube import (
    SECRETS,
    AlreadyExists,
    EventRecorder,
    Forbidden,
    Invalid,
    KubeClient,
    NotFound,
)
from nats_tower_operator.reconcile import Request, Result
from nats_tower_operator.reconcilers import desired as rules
from nats_tower_operator.reconcilers import plan as p
from nats_tower_operator.reconcilers.consumers import ConsumerIndex
from nats_tower_operator.reconcilers.failures import access_message, explain
from nats_tower_operator.reconcilers.labels import (
    ORPHANED_SINCE_ANNOTATION,
    PREVIOUS_USER_ANNOTATION,
    Reason,
)
from nats_tower_operator.reconcilers.notify import Notifier
from nats_tower_operator.reconcilers.quota import NamespaceQuota
from nats_tower_operator.reconcilers.secretdoc import (
    Issued,
    Ownership,
    SecretState,
    belongs_to,
    format_time,
    ownership,
    read_secret,
    render_secret,
    summarize_secret,
    user_name,
)
from nats_tower_operator.tower import (
    AccessNotAllowed,
    CredentialIssuer,
    CredentialSpec,
    Role,
    RoleSpec,
    TowerError,
    TowerUnauthorized,
    User,
    is_record_id,
)

__all__ = ["CredentialReconciler", "Outcome", "SecretLookup"]

log = logging.getLogger(__name__)

SecretLookup = Callable[[str, str], "Mapping[str, Any] | None"]
#: How many recent deletions / foreign Secrets / verifications are remembered.
MEMO_SIZE = 65536


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one pass did: the work queue's :class:`Result` and whether creds changed."""

    result: Result
    action: str
    content_changed: bool = False


class _Memo(OrderedDict[str, Any]):
    """A bounded LRU: memory stays bounded whatever the churn."""

    def __init__(self, limit: int = MEMO_SIZE) -> None:
        super().__init__()
        self._limit = limit

    def put(self, key: str, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self._limit:
            self.popitem(last=False)


@dataclass(frozen=True, slots=True)
class _Pass:
    """One reconcile pass: the request, what was read and who is told."""

    request: Request
    obs: p.Observation
    wish: rules.Desired | None
    targets: tuple[rules.Consumer, ...]
    defaulted: tuple[rules.Consumer, ...]


class CredentialReconciler:
    """Converges one managed Secret per call; see the module docstring."""

    def __init__(  # noqa: PLR0913 - keyword-only collaborators of the reconciler
        self,
        *,
        kube: KubeClient,
        issuer: CredentialIssuer,
        events: EventRecorder,
        consumers: ConsumerIndex,
        secrets: SecretLookup,
        consumers_synced: Callable[[], bool],
        policy: p.Policy,
        quota: NamespaceQuota | None = None,
        on_event: Callable[[str, str], None] | None = None,
        on_outcome: Callable[[Request, Outcome], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._kube = kube
        self._issuer = issuer
        self._tell = Notifier(events, on_event=on_event)
        self._consumers = consumers
        self._secrets = secrets
        self._consumers_synced = consumers_synced
        self._policy = policy
        self._quota = quota or NamespaceQuota()
        self._on_outcome = on_outcome
        self._clock = clock
        self._started = clock()
        self._verify_before: float | None = None
        self._verified = _Memo()
        self._tombstones = _Memo(4096)
        self._revoked = _Memo(4096)
        self._not_ours = _Memo(4096)

    @property
    def policy(self) -> p.Policy:
        """The lifecycle policy this reconciler applies."""
        return self._policy

    def force_resync(self) -> None:
        """Make every Secret not verified since now verify against Tower on its next look."""
        self._verify_before = self._clock()

    def secret_deleted(self, secret: Mapping[str, Any]) -> None:
        """Remember what a deleted managed Secret held, so a restore reuses its user."""
        own = ownership(secret)
        meta = secret.get("metadata") or {}
        if own is None or own.user_id in self._revoked:
            return
        key = str(Request(str(meta.get("namespace", "")), str(meta.get("name", ""))))
        self._tombstones.put(key, own)

    # ------------------------------------------------------------------ read

    async def reconcile(self, request: Request) -> Result:
        """Converge the Secret ``request.namespace/request.name`` (the runtime's entry)."""
        outcome = await self.converge(request)
        if self._on_outcome is not None:
            self._on_outcome(request, outcome)
        return outcome.result

    async def converge(self, request: Request, *, live: SecretState | None = None) -> Outcome:
        """One read -> plan -> act pass; ``live`` replaces a cache that lags behind."""
        step = await self._read(request, live)
        action = p.plan(step.obs, self._policy)
        if isinstance(action, p.Verify | p.Restore):
            assert step.wish is not None
            try:
                facts = await self._facts(request, action, step.wish)
            except TowerError as exc:
                return await self._tower_failed(step, exc)
            action = p.plan(replace(step.obs, facts=facts), self._policy)
        return await self._act(step, action)

    async def _read(self, request: Request, live: SecretState | None) -> _Pass:
        consumers = self._consumers.for_secret(request.namespace, request.name)
        valid: list[tuple[rules.Consumer, rules.Desired]] = []
        invalid: dict[tuple[str, str], list[rules.Consumer]] = {}
        for consumer in consumers:
            verdict = rules.desired_for(
                consumer,
                default_installation=self._policy.default_installation,
                allowed_installations=self._policy.allowed_installations,
            )
            if isinstance(verdict, rules.Invalid):
                invalid.setdefault((verdict.reason, verdict.message), []).append(consumer)
            else:
                valid.append((consumer, verdict))
        # Capped like valid consumers: a thousand invalid pods are told as ten.
        for (reason, message), told in invalid.items():
            await self._tell.warn(told, reason, message)
        wish = rules.combine(valid)
        if isinstance(wish, rules.Conflict):
            await self._tell.warn([c for c, _ in valid], Reason.CONFLICTING_CONSUMERS, wish.message)
            wish = None
        key = str(request)
        last = self._verified.get(key, self._started)
        obs = p.Observation(
            wish=wish,
            has_consumers=bool(consumers),
            secret=live or await self._secret(request),
            tombstone=self._tombstones.get(key),
            synced=self._consumers_synced(),
            now=self._clock(),
            last_verified=last,
            verify_requested=self._verify_before is not None and last < self._verify_before,
        )
        targets = tuple(c for c, _ in valid)
        defaulted = tuple(c for c, d in valid if d.installation_defaulted)
        return _Pass(request, obs, wish, targets, defaulted)

    async def _secret(self, request: Request) -> SecretState | None:
        cached = self._secrets(request.namespace, request.name)
        if cached is not None:
            return read_secret(cached)
        if str(request) not in self._not_ours:
            return None  # written create-first: an existing Secret shows up as AlreadyExists
        found = await self._live(request)
        if found is None:
            self._not_ours.pop(str(request), None)
        return found

    async def _live(self, request: Request) -> SecretState | None:
        try:
            secret = await self._kube.get(SECRETS, request.name, namespace=request.namespace)
        except NotFound:
            return None
        return read_secret(summarize_secret(secret))

    async def _facts(
        self, request: Request, action: p.Verify | p.Restore, wish: rules.Desired
    ) -> p.TowerFacts:
        issuer, namespace = self._issuer, request.namespace
        if isinstance(action, p.Verify):
            allowed = await issuer.access_allowed(wish.installation, wish.account, namespace)
            # Revoking on "not linked" needs proof from fresh reads in this same pass.
            if not allowed and await issuer.confirm_unlinked(
                wish.installation, wish.account, namespace
            ):
                return p.TowerFacts(user=None, unlinked=True)
        else:
            # Writing a user's creds needs the link, as issuing one does (cached).
            if not await issuer.access_allowed(wish.installation, wish.account, namespace):
                raise AccessNotAllowed(self._policy.cluster_id, namespace, wish.account)
        user = await issuer.lookup_user(action.ownership.user_id)
        if user is not None and not await self._owns(request, wish, user):
            log.warning(
                "%s: %s", Reason.OWNERSHIP_MISMATCH, p.FOREIGN_USER, extra={"secret": str(request)}
            )
            return p.TowerFacts(user=None, foreign=True)
        urls = await issuer.installation_urls(wish.installation) if user else ()
        return p.TowerFacts(user=user, urls=tuple(urls))

    async def _owns(self, request: Request, wish: rules.Desired, user: User) -> bool:
        """Whether ``user`` is this Secret's own: its name and the wanted account (Tower's)."""
        if not belongs_to(user.name, self._policy.cluster_id, request.namespace, request.name):
            return False
        account = await self._issuer.account(wish.installation, wish.account)
        return user.account_id == account.id

    # ------------------------------------------------------------------ act

    async def _act(self, step: _Pass, action: p.Action) -> Outcome:  # noqa: C901, PLR0911, PLR0912 - one case per action of the plan
        name = type(action).__name__
        match action:
            case p.Wait(after=after, verified=verified):
                if verified:
                    self._verified.put(str(step.request), step.obs.now)
                return Outcome(Result(requeue_after=after), name)
            case p.NotOwned(after=after):
                await self._tell_not_owned(step)
                return Outcome(Result(requeue_after=after), name)
            case p.Issue():
                return await self._issue_within_quota(step, action)
            case p.Rewrite():
                return await self._rewrite(step, action)
            case p.RevokePrevious(user_id=user_id):
                if (wait := await self._within_rate(step)) is not None:
                    return wait
                await self._revoke_previous(step, user_id)
            case p.RevokeUser(ownership=own):
                if (wait := await self._within_rate(step)) is not None:
                    return wait
                await self._revoke_tombstone(step.request, own)
            case p.MarkOrphaned(since=since, after=after):
                # Kubernetes times have whole seconds: round up so the grace is never shorter.
                stamp = format_time(math.ceil(since))
                await self._patch(step, {ORPHANED_SINCE_ANNOTATION: stamp})
                log.info(
                    "secret has no consumers; revocation scheduled",
                    extra={"secret": str(step.request)},
                )
                return Outcome(Result(requeue_after=after), name)
            case p.ClearOrphaned():
                await self._patch(step, {ORPHANED_SINCE_ANNOTATION: None})
            case p.RevokeAndDelete():
                return await self._within_rate(step) or await self._revoke_and_delete(step, action)
            case _:  # pragma: no cover - Verify/Restore are planned away above
                raise AssertionError(f"unexpected action {name}")
        after = None if isinstance(action, p.RevokeUser) else p.AT_ONCE
        return Outcome(Result(requeue_after=after), name)

    async def _issue_within_quota(self, step: _Pass, action: p.Issue) -> Outcome:
        """Issue when the namespace's quota and rate allow; a new Secret reserves its slot."""
        namespace, name = step.request.namespace, step.request.name
        new_secret = action.base is None or action.base.ownership is None
        if new_secret and not self._quota.reserve(namespace, name):
            await self._tell.warn(
                step.targets,
                Reason.CREDENTIAL_QUOTA_EXCEEDED,
                f"namespace {namespace} already has {self._quota.max_credentials} credentials "
                "managed by this operator (NATS_TOWER_MAX_CREDENTIALS_PER_NAMESPACE); delete "
                "unused ones, or ask the operator's admins for a higher quota",
            )
            after = self._policy.access_retry_interval * p.NOT_OWNED_RETRY_FACTOR
            return Outcome(Result(requeue_after=after), "Wait")
        written = False
        try:
            wait = await self._within_rate(step)
            if wait is not None:
                return wait
            outcome = await self._issue(step, action)
            written = outcome.content_changed
            return outcome
        finally:
            if new_secret and not written:
                self._quota.release(namespace, name)

    async def _within_rate(self, step: _Pass) -> Outcome | None:
        """None when the namespace may create or revoke a user now; else wait for a token."""
        delay = self._quota.take(step.request.namespace)
        if not delay:
            return None
        message = (
            f"namespace {step.request.namespace} creates or revokes NATS users faster than "
            f"{self._quota.per_minute:g} a minute (NATS_TOWER_USER_CHANGES_PER_MINUTE); this "
            "change waits its turn"
        )
        if step.targets:
            await self._tell.warn(step.targets, Reason.RATE_LIMITED, message)
        elif step.obs.secret is not None:
            await self._tell.on_secret(step.obs.secret, Reason.RATE_LIMITED, "Warning", message)
        return Outcome(Result(requeue_after=delay + p.LOOK_AGAIN_SLACK), "Wait")

    async def _issue(self, step: _Pass, action: p.Issue) -> Outcome:
        wish, request = step.wish, step.request
        assert wish is not None
        if action.warning:
            await self._tell.warn(step.targets, Reason.OWNERSHIP_MISMATCH, action.warning)
        try:
            cred = await self._issuer.issue(self._spec(step, wish, action.generation))
            if cred.role_mismatch:
                # A user of ours with this name exists under another role: it cannot be
                # reused, so revoke it and issue again on the next pass.
                await self._issuer.revoke(cred.user_id)
                return Outcome(Result(requeue_after=p.AT_ONCE), "Issue")
        except TowerError as exc:
            return await self._tower_failed(step, exc)
        issued = Issued(
            user_id=cred.user_id,
            user_name=user_name(
                self._policy.cluster_id, request.namespace, request.name, action.generation
            ),
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
        self._verified.put(str(request), self._clock())
        await self._tell.normal(step.targets, action.reason, _issued_message(step, wish, action))
        if cred.role_differs is not None:
            await self._tell_role_differs(step, cred.role_differs)
        log.info(
            "credential %s",
            _VERBS.get(action.reason, "updated"),
            extra={
                "secret": str(request),
                "account": wish.account,
                "generation": action.generation,
            },
        )
        log.debug("credential of %s: Tower user %s", request, cred.user_id)
        after = p.AT_ONCE if action.replaces else None
        return Outcome(Result(requeue_after=after), "Issue", content_changed=True)

    def _spec(self, step: _Pass, wish: rules.Desired, generation: int) -> CredentialSpec:
        namespace, name, cluster = (
            step.request.namespace,
            step.request.name,
            self._policy.cluster_id,
        )
        first = step.targets[0]
        role = wish.role
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

    async def _found_existing(self, step: _Pass, fresh_user: str | None) -> Outcome:
        """A create met an existing Secret: the usual ownership rules on what is there."""
        live = await self._live(step.request)
        if live is not None and not live.managed:
            self._not_ours.put(str(step.request), True)
            if fresh_user is not None:
                # Created for nothing in this very pass: take it back.
                await self._issuer.revoke(fresh_user)
            tombstone = self._tombstones.pop(str(step.request), None)
            if tombstone is not None:
                # Our Secret lost our label: it is no longer managed, its user must not live on
                # outside the operator's count (a tenant could otherwise hold users past quota).
                await self._revoke_own(step.request, tombstone.user_id)
            await self._tell_not_owned(step)
            after = self._policy.access_retry_interval * p.NOT_OWNED_RETRY_FACTOR
            return Outcome(Result(requeue_after=after), "NotOwned")
        return await self.converge(step.request, live=live)

    async def _rewrite(self, step: _Pass, action: p.Rewrite) -> Outcome:
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
        await self._tell.normal(step.targets, action.reason, message)
        return Outcome(Result(), "Rewrite", content_changed=True)

    async def _write(
        self, step: _Pass, issued: Issued, base: SecretState | None, extra: Mapping[str, str]
    ) -> None:
        request, ns = step.request, step.request.namespace
        # A replace keeps what others put on the Secret (labels, annotations), which the
        # cache does not hold: read the live metadata, but only if it is still the version
        # this pass decided on (the resourceVersion precondition turns any change into a 409).
        live = None if base is None else await self._kube.get(SECRETS, request.name, namespace=ns)
        body = render_secret(
            namespace=ns,
            name=request.name,
            issued=issued,
            cluster_id=self._policy.cluster_id,
            now=self._clock(),
            base=live,
        )
        body["metadata"]["annotations"].update(extra)
        try:
            if base is None:
                await self._kube.create(SECRETS, body, namespace=ns)
            else:
                body["metadata"]["resourceVersion"] = base.metadata.get("resourceVersion")
                await self._kube.replace(SECRETS, request.name, body, namespace=ns)
        except (Invalid, Forbidden) as exc:
            await self._tell.warn(
                step.targets,
                Reason.ERROR_UPSERTING_SECRET,
                f"cannot write Secret {request.name}: {exc.message}",
            )
            raise
        # Written: what a deleted Secret held is no longer needed to restore it.
        self._tombstones.pop(str(request), None)

    # ------------------------------------------------------------------ revocation

    async def _revoke_own(self, request: Request, user_id: str) -> str:
        """Revoke ``user_id`` if Tower says it is this Secret's own user.

        Returns "revoked", "gone" (proven already deleted) or "foreign" (not revoked: the id
        came from an annotation anyone with write access to the Secret can set).
        """
        user = await self._issuer.lookup_user(user_id)
        if user is None:
            return "gone"
        if not belongs_to(user.name, self._policy.cluster_id, request.namespace, request.name):
            log.warning(
                "%s: a recorded user is not this Secret's own; it is not revoked",
                Reason.OWNERSHIP_MISMATCH,
                extra={"secret": str(request)},
            )
            return "foreign"
        await self._issuer.revoke(user_id)
        self._revoked.put(user_id, True)
        return "revoked"

    async def _revoke_previous(self, step: _Pass, user_id: str | None) -> None:
        """A replaced user is revoked only once its successor is stored in the Secret."""
        if user_id is None:
            log.warning(
                "ignoring a malformed replaced-user annotation", extra={"secret": str(step.request)}
            )
        elif await self._revoke_own(step.request, user_id) == "foreign":
            await self._tell.warn(step.targets, Reason.OWNERSHIP_MISMATCH, p.FOREIGN_USER)
        else:
            log.info("replaced credential revoked", extra={"secret": str(step.request)})
        await self._patch(step, {PREVIOUS_USER_ANNOTATION: None})

    async def _revoke_tombstone(self, request: Request, own: Ownership) -> None:
        """Deleted while nothing used it: nothing can mount it any more."""
        verdict = await self._revoke_own(request, own.user_id)  # on failure: kept for a retry
        self._tombstones.pop(str(request), None)
        if verdict == "foreign":
            where = {"namespace": request.namespace, "name": request.name}
            await self._tell.on_secret(where, Reason.OWNERSHIP_MISMATCH, "Warning", p.FOREIGN_USER)
        log.info("credential of a deleted, unused Secret revoked", extra={"secret": str(request)})

    async def _revoke_and_delete(self, step: _Pass, action: p.RevokeAndDelete) -> Outcome:
        """Revoke the Tower user(s) first, then delete the Secret (never the reverse)."""
        request, secret, own = step.request, action.secret, action.ownership
        if action.cause == "unlinked":
            assert step.wish is not None
            message = access_message(self._policy.cluster_id, step.wish, request.namespace)
            await self._tell.warn(
                step.targets,
                Reason.ACCESS_NOT_ALLOWED,
                message + "; its credentials were revoked",
            )
        previous = secret.previous_user if is_record_id(secret.previous_user) else None
        foreign = False
        try:
            for user_id in (own.user_id, previous):
                if user_id and await self._revoke_own(request, user_id) == "foreign":
                    foreign = True
                    await self._tell.on_secret(
                        secret, Reason.OWNERSHIP_MISMATCH, "Warning", p.FOREIGN_USER
                    )
        except TowerUnauthorized:
            if action.cause == "unlinked":
                raise
            # Not revoked, so not deleted: the Secret is the only record of its user.
            await self._tell.on_secret(
                secret,
                Reason.TOWER_TOKEN_REFUSED,
                "Warning",
                (
                    f"Secret {request.name} is unused but its NATS user cannot be revoked: NATS "
                    "Tower does not accept the operator's API token. The Secret is kept until it "
                    "does."
                ),
            )
            return Outcome(Result(requeue_after=self._policy.access_retry_interval), "Wait")
        with contextlib.suppress(NotFound):
            await self._kube.delete(
                SECRETS, request.name, namespace=request.namespace, uid=secret.metadata.get("uid")
            )
        await self._tell.on_secret(
            secret,
            Reason.REVOKED,
            "Normal",
            f"Secret {request.name} deleted; its recorded user was not its own and was not revoked"
            if foreign
            else f"Tower user of account {own.account} revoked and Secret {request.name} deleted",
        )
        log.info("credential revoked", extra={"secret": str(request)})
        return Outcome(Result(requeue_after=action.after), "RevokeAndDelete", True)

    # ------------------------------------------------------------------ helpers

    async def _patch(self, step: _Pass, annotations: Mapping[str, str | None]) -> None:
        secret = step.obs.secret
        assert secret is not None
        patch = {
            "metadata": {
                "annotations": dict(annotations),
                "resourceVersion": secret.metadata.get("resourceVersion"),
            }
        }
        await self._kube.patch(SECRETS, step.request.name, patch, namespace=step.request.namespace)

    async def _tell_role_differs(self, step: _Pass, role: Role) -> None:
        def listed(subjects: tuple[str, ...]) -> str:
            return ", ".join(subjects[:8]) + (", ..." if len(subjects) > 8 else "") or "none"

        await self._tell.warn(
            step.targets,
            Reason.ROLE_SUBJECTS_DIFFER,
            f"role {role.role!r} already exists in NATS Tower with publish "
            f"[{listed(role.publish)}] and subscribe [{listed(role.subscribe)}]; the "
            "credential has the role's subjects, "
            "not the annotations' (they only define a role that does not exist yet). Change "
            "the role in NATS Tower, or name a new role",
        )

    async def _tell_not_owned(self, step: _Pass) -> None:
        await self._tell.warn(
            step.targets,
            Reason.SECRET_NOT_OWNED,
            f"Secret {step.request.name} exists and was not created by this operator; it is "
            "left unchanged. Rename the secret label or delete that Secret.",
        )

    async def _tower_failed(self, step: _Pass, exc: TowerError) -> Outcome:
        """Tell the consumers (see :mod:`.failures`), then wait or retry."""
        assert step.wish is not None
        failure = explain(
            exc, step.wish, cluster_id=self._policy.cluster_id, namespace=step.request.namespace
        )
        # The operator's log says what Tower said; the Event may say less (see failures.py).
        log.info("Tower: %s", exc.message, extra={"secret": str(step.request)})
        await self._tell.warn(step.targets, failure.reason, failure.message)
        if failure.retry == "retry":
            raise exc
        return Outcome(Result(requeue_after=self._policy.access_retry_interval), "Wait")


_VERBS = {Reason.CREATED: "created", Reason.RENEWED: "renewed", Reason.REISSUED: "re-issued"}


def _issued_message(step: _Pass, wish: rules.Desired, action: p.Issue) -> str:
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
