"""The credential reconciler: one managed Secret, keyed by (namespace, secret name).

Each pass reads, plans, acts:

1. **read** who asks for the Secret (the consumer index; invalid consumers get their
   Warning here) and what the Secret holds (:func:`~.secretdoc.read_secret` over the
   informer's copy, never the credentials);
2. **plan**: :func:`~.plan.plan` picks the one action (see its state table); an action that
   needs Tower's word (verify, restore) gets it and is planned again with the facts;
3. **act**: execute that action (writes in :mod:`.writing`, revocations in
   :mod:`.revoking`) and return an :class:`~.context.Outcome` saying whether the
   credential's content changed.

Every durable fact (user id, generation, orphaned-since, a user still to revoke) is stored
on the Secret, so a restart at any point converges to the same outcome. What is kept in
memory only saves work (:class:`~.context.Memory`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from nats_tower_operator.kube import EventRecorder, KubeClient
from nats_tower_operator.reconcile import Request, Result
from nats_tower_operator.reconcilers import desired as rules
from nats_tower_operator.reconcilers import plan as p
from nats_tower_operator.reconcilers.consumers import ConsumerIndex
from nats_tower_operator.reconcilers.context import Outcome, Pass, Shared
from nats_tower_operator.reconcilers.labels import ORPHANED_SINCE_ANNOTATION, Reason
from nats_tower_operator.reconcilers.notify import Notifier
from nats_tower_operator.reconcilers.quota import NamespaceQuota
from nats_tower_operator.reconcilers.revoking import Revoking
from nats_tower_operator.reconcilers.secretdoc import (
    SecretState,
    belongs_to,
    format_time,
    ownership,
    read_secret,
)
from nats_tower_operator.reconcilers.writing import Writing
from nats_tower_operator.tower import AccessNotAllowed, CredentialIssuer, TowerError, User

__all__ = ["CredentialReconciler", "Outcome", "SecretLookup"]

log = logging.getLogger(__name__)

SecretLookup = Callable[[str, str], "Mapping[str, Any] | None"]


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
        self._s = Shared(
            kube=kube,
            issuer=issuer,
            tell=Notifier(events, on_event=on_event),
            policy=policy,
            quota=quota or NamespaceQuota(),
            clock=clock,
        )
        self._revoking = Revoking(self._s)
        self._writing = Writing(self._s, self._revoking, self._converge_live)
        self._consumers = consumers
        self._secrets = secrets
        self._consumers_synced = consumers_synced
        self._on_outcome = on_outcome
        self._started = clock()
        self._verify_before: float | None = None

    @property
    def policy(self) -> p.Policy:
        """The lifecycle policy this reconciler applies."""
        return self._s.policy

    def force_resync(self) -> None:
        """Make every Secret not verified since now verify against Tower on its next look."""
        self._verify_before = self._s.clock()

    def secret_deleted(self, secret: Mapping[str, Any]) -> None:
        """Remember what a deleted managed Secret held, so a restore reuses its user."""
        own = ownership(secret)
        meta = secret.get("metadata") or {}
        if own is None or own.user_id in self._s.memory.revoked:
            return
        key = str(Request(str(meta.get("namespace", "")), str(meta.get("name", ""))))
        self._s.memory.tombstones.put(key, own)

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
        action = p.plan(step.obs, self._s.policy)
        if isinstance(action, p.Verify | p.Restore):
            assert step.wish is not None
            try:
                facts = await self._facts(request, action, step.wish)
            except TowerError as exc:
                return await self._s.tower_failed(step, exc)
            action = p.plan(replace(step.obs, facts=facts), self._s.policy)
        return await self._act(step, action)

    async def _converge_live(self, request: Request, live: SecretState | None) -> Outcome:
        return await self.converge(request, live=live)

    async def _read(self, request: Request, live: SecretState | None) -> Pass:
        s = self._s
        consumers = self._consumers.for_secret(request.namespace, request.name)
        valid: list[tuple[rules.Consumer, rules.Desired]] = []
        invalid: dict[tuple[str, str], list[rules.Consumer]] = {}
        for consumer in consumers:
            verdict = rules.desired_for(
                consumer,
                default_installation=s.policy.default_installation,
                allowed_installations=s.policy.allowed_installations,
            )
            if isinstance(verdict, rules.Invalid):
                invalid.setdefault((verdict.reason, verdict.message), []).append(consumer)
            else:
                valid.append((consumer, verdict))
        # Capped like valid consumers: a thousand invalid pods are told as ten.
        for (reason, message), told in invalid.items():
            await s.tell.warn(told, reason, message)
        wish = rules.combine(valid)
        if isinstance(wish, rules.Conflict):
            await s.tell.warn([c for c, _ in valid], Reason.CONFLICTING_CONSUMERS, wish.message)
            wish = None
        key = str(request)
        last = s.memory.verified.get(key, self._started)
        obs = p.Observation(
            wish=wish,
            has_consumers=bool(consumers),
            secret=live or await self._secret(request),
            tombstone=s.memory.tombstones.get(key),
            synced=self._consumers_synced(),
            now=s.clock(),
            last_verified=last,
            verify_requested=self._verify_before is not None and last < self._verify_before,
        )
        targets = tuple(c for c, _ in valid)
        defaulted = tuple(c for c, d in valid if d.installation_defaulted)
        return Pass(request, obs, wish, targets, defaulted)

    async def _secret(self, request: Request) -> SecretState | None:
        cached = self._secrets(request.namespace, request.name)
        if cached is not None:
            return read_secret(cached)
        if str(request) not in self._s.memory.not_ours:
            return None  # written create-first: an existing Secret shows up as AlreadyExists
        found = await self._s.live(request)
        if found is None:
            self._s.memory.not_ours.pop(str(request), None)
        return found

    async def _facts(
        self, request: Request, action: p.Verify | p.Restore, wish: rules.Desired
    ) -> p.TowerFacts:
        issuer, namespace = self._s.issuer, request.namespace
        if isinstance(action, p.Verify):
            allowed = await issuer.access_allowed(wish.installation, wish.account, namespace)
            # Revoking on "not linked" needs proof from fresh reads in this same pass.
            if not allowed and await issuer.confirm_unlinked(
                wish.installation, wish.account, namespace
            ):
                return p.TowerFacts(user=None, unlinked=True)
        elif not await issuer.access_allowed(wish.installation, wish.account, namespace):
            # Writing a user's creds needs the link, as issuing one does (cached).
            raise AccessNotAllowed(self._s.policy.cluster_id, namespace, wish.account)
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
        if not belongs_to(user.name, self._s.policy.cluster_id, request.namespace, request.name):
            return False
        account = await self._s.issuer.account(wish.installation, wish.account)
        return user.account_id == account.id

    # ------------------------------------------------------------------ act

    async def _act(self, step: Pass, action: p.Action) -> Outcome:  # noqa: C901, PLR0911 - one case per action of the plan
        s, name = self._s, type(action).__name__
        match action:
            case p.Wait(after=after, verified=verified):
                if verified:
                    s.memory.verified.put(str(step.request), step.obs.now)
                return Outcome(Result(requeue_after=after), name)
            case p.NotOwned(after=after):
                await s.tell_not_owned(step)
                return Outcome(Result(requeue_after=after), name)
            case p.Issue():
                return await self._writing.issue_within_quota(step, action)
            case p.Rewrite():
                return await self._writing.rewrite(step, action)
            case p.RevokePrevious(user_id=user_id):
                return await s.within_rate(step) or await self._then(
                    self._revoking.previous(step, user_id), name, p.AT_ONCE
                )
            case p.RevokeUser(ownership=own):
                return await s.within_rate(step) or await self._then(
                    self._revoking.tombstone(step.request, own), name, None
                )
            case p.MarkOrphaned(since=since, after=after):
                # Kubernetes times have whole seconds: round up so the grace is never shorter.
                stamp = format_time(math.ceil(since))
                await s.patch(step, {ORPHANED_SINCE_ANNOTATION: stamp})
                log.info(
                    "secret has no consumers; revocation scheduled",
                    extra={"secret": str(step.request)},
                )
                return Outcome(Result(requeue_after=after), name)
            case p.ClearOrphaned():
                await s.patch(step, {ORPHANED_SINCE_ANNOTATION: None})
                return Outcome(Result(requeue_after=p.AT_ONCE), name)
            case p.RevokeAndDelete():
                return await s.within_rate(step) or await self._revoking.and_delete(step, action)
        raise AssertionError(f"unexpected action {name}")  # Verify/Restore are planned away

    @staticmethod
    async def _then(step: Awaitable[None], name: str, after: float | None) -> Outcome:
        """Run ``step``, then look again after ``after`` seconds (None: only on a change)."""
        await step
        return Outcome(Result(requeue_after=after), name)
