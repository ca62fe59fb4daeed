"""The credential reconciler: one managed Secret, keyed by (namespace, secret name).

Level-triggered: every call reads who asks for the Secret (the consumer index), what the
Secret holds (the informer cache, or the API when the cache has not seen it) and converges:

* consumers exist and the Secret is missing or empty -> obtain a user from Tower, write it;
* the Secret is ours and intact -> nothing to do (no Tower call; only on a resync tick is
  Tower asked whether the user, the access link and the URLs are still what we wrote);
* the Secret is ours but edited, or asks for another account/role, or is about to expire
  -> restore, re-issue or renew it, revoking the replaced user only after the new Secret
  is written;
* no consumer is left -> mark the Secret orphaned, and once the grace period has passed
  revoke the Tower user, then delete the Secret;
* a Secret of that name we did not create -> never touched (``SecretNotOwned``).

Every durable fact (user id, generation, orphaned-since, a user still to revoke) is stored
on the Secret itself, so a restart at any point converges to the same outcome.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from nats_tower_operator.kube import (
    SECRETS,
    EventRecorder,
    Forbidden,
    Invalid,
    KubeClient,
    KubeError,
    NotFound,
)
from nats_tower_operator.reconcile import Request, Result
from nats_tower_operator.reconcilers import desired as rules
from nats_tower_operator.reconcilers.consumers import ConsumerIndex
from nats_tower_operator.reconcilers.labels import (
    ACCOUNT_NAME_KEY,
    CREDS_KEY,
    ISSUED_AT_ANNOTATION,
    ORPHANED_SINCE_ANNOTATION,
    PREFIX,
    URLS_KEY,
    Reason,
)
from nats_tower_operator.reconcilers.secretdoc import (
    Issued,
    Ownership,
    format_time,
    is_managed,
    ownership,
    parse_time,
    render_secret,
    summarize_secret,
    user_name,
)
from nats_tower_operator.tower import (
    AccessNotAllowed,
    AccountNotFound,
    CredentialIssuer,
    CredentialSpec,
    InstallationNotFound,
    RoleNotFound,
    RoleSpec,
    TowerBadRequest,
    TowerError,
    TowerUnauthorized,
    User,
    is_record_id,
)

__all__ = ["CredentialReconciler", "ReconcilerOptions", "SecretLookup"]

log = logging.getLogger(__name__)

PREVIOUS_USER_ANNOTATION = PREFIX + "revoke-user-id"
MAX_EVENT_TARGETS = 10

SecretLookup = Callable[[str, str], "Mapping[str, Any] | None"]
EventType = Literal["Normal", "Warning"]


@dataclass(frozen=True)
class ReconcilerOptions:
    """The knobs of the credential reconciler (from Settings)."""

    cluster_id: str
    default_installation: str | None
    allowed_installations: frozenset[str]
    revoke_grace_period: float = 600.0
    access_retry_interval: float = 30.0
    resync_interval: float = 600.0
    renew_fraction: float = 2.0 / 3.0


class _Bounded(OrderedDict[str, float]):
    """A small LRU of keys -> timestamps, so memory stays bounded with churn."""

    def __init__(self, limit: int = 65536) -> None:
        super().__init__()
        self._limit = limit

    def put(self, key: str, value: float) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self._limit:
            self.popitem(last=False)


class CredentialReconciler:
    """Converges one managed Secret; see the module docstring for the rules."""

    def __init__(
        self,
        *,
        kube: KubeClient,
        issuer: CredentialIssuer,
        events: EventRecorder,
        consumers: ConsumerIndex,
        secrets: SecretLookup,
        consumers_synced: Callable[[], bool],
        options: ReconcilerOptions,
        on_event: Callable[[str, str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._kube = kube
        self._issuer = issuer
        self._events = events
        self._consumers = consumers
        self._secrets = secrets
        self._consumers_synced = consumers_synced
        self._opts = options
        self._on_event = on_event
        self._clock = clock
        self._started = clock()
        self._force_before: float | None = None
        self._verified = _Bounded()
        self._told = _Bounded()
        self._tombstones: OrderedDict[str, Ownership] = OrderedDict()
        self._revoked = _Bounded(4096)

    def resync_due(self, request: Request) -> bool:
        """True when Tower should be asked again whether this Secret is still right."""
        last = self._verified.get(str(request), self._started)
        if self._force_before is not None and last < self._force_before:
            return True
        if self._opts.resync_interval <= 0:
            return False
        return self._clock() - last >= self._opts.resync_interval

    def force_resync(self) -> None:
        """Make every Secret not verified since now verify against Tower on its next look."""
        self._force_before = self._clock()

    def secret_deleted(self, secret: Mapping[str, Any]) -> None:
        """Remember what a deleted managed Secret held, so a restore reuses its user.

        Without this a Secret deleted after a re-issue (generation > 1) would be restored
        with a new generation-1 user and the deleted Secret's user would be orphaned.
        """
        own = ownership(secret)
        meta = secret.get("metadata") or {}
        if own is None or own.user_id in self._revoked:
            return
        key = str(Request(str(meta.get("namespace", "")), str(meta.get("name", ""))))
        self._tombstones[key] = own
        self._tombstones.move_to_end(key)
        while len(self._tombstones) > 4096:
            self._tombstones.popitem(last=False)

    # ------------------------------------------------------------------ entry point

    async def reconcile(self, request: Request) -> Result:
        """Converge the Secret ``request.namespace/request.name``."""
        namespace, name = request.namespace, request.name
        consumers = self._consumers.for_secret(namespace, name)
        cached = self._secrets(namespace, name)
        if not consumers:
            return await self._orphaned(request, cached)

        verdicts = [
            (
                c,
                rules.desired_for(
                    c,
                    default_installation=self._opts.default_installation,
                    allowed_installations=self._opts.allowed_installations,
                ),
            )
            for c in consumers
        ]
        valid: list[tuple[rules.Consumer, rules.Desired]] = []
        for consumer, verdict in verdicts:
            if isinstance(verdict, rules.Invalid):
                await self._tell([consumer], "Warning", verdict.reason, verdict.message)
            else:
                valid.append((consumer, verdict))
        if not valid:
            return Result()
        wish = rules.combine(valid)
        if isinstance(wish, rules.Conflict):
            await self._tell(
                [c for c, _ in valid], "Warning", Reason.CONFLICTING_CONSUMERS, wish.message
            )
            return Result()
        assert wish is not None
        targets = [c for c, _ in valid]

        secret = cached
        if secret is None:
            secret = await self._live_secret(namespace, name)
            if secret is not None and not is_managed(secret):
                await self._tell(
                    targets,
                    "Warning",
                    Reason.SECRET_NOT_OWNED,
                    f"Secret {name} exists and was not created by this operator; "
                    "it is left unchanged. Rename the secret label or delete "
                    "that Secret.",
                )
                return Result(requeue_after=self._opts.access_retry_interval * 4)
            if secret is not None:
                secret = summarize_secret(secret)
        if secret is None:
            # Said when the credential is written, not on every look: a restart of the
            # operator must not write an Event per pod.
            defaulted = [c for c, d in valid if d.installation_defaulted]
            if defaulted:
                await self._tell_once(
                    defaulted,
                    Reason.DEFAULT_INSTALLATION,
                    f"using the default installation {wish.installation}",
                )
            tombstone = self._tombstones.pop(str(request), None)
            if tombstone is not None and _same_credential(tombstone, wish):
                return await self._restore(request, wish, targets, tombstone, base=None)
            return await self._issue(
                request, wish, targets, base=None, generation=1, reason=Reason.CREATED
            )
        return await self._converge_existing(request, wish, targets, secret)

    # ------------------------------------------------------------------ existing Secret

    async def _converge_existing(
        self,
        request: Request,
        wish: rules.Desired,
        targets: Sequence[rules.Consumer],
        secret: Mapping[str, Any],
    ) -> Result:
        own = ownership(secret)
        keys = set(secret.get("keys") or ())
        if own is None:
            if CREDS_KEY in keys:
                # Labelled as ours but not issued by us (the Go operator, or by hand):
                # upstream leaves a filled Secret alone and so do we.
                return Result()
            return await self._issue(
                request, wish, targets, base=secret, generation=1, reason=Reason.UPDATED
            )

        previous = _annotation(secret, PREVIOUS_USER_ANNOTATION)
        if previous:
            if is_record_id(previous):
                await self._revoke_previous(request, secret, previous)
            else:
                log.warning(
                    "ignoring a malformed replaced-user annotation", extra={"secret": str(request)}
                )
                await self._patch_annotations(request, secret, {PREVIOUS_USER_ANNOTATION: None})
            return Result(requeue_after=0.0)
        if own.orphaned_since is not None:
            await self._patch_annotations(request, secret, {ORPHANED_SINCE_ANNOTATION: None})
            return Result(requeue_after=0.0)

        if not _same_credential(own, wish):
            return await self._reissue(
                request, wish, targets, own, base=secret, reason=Reason.UPDATED, revoke_old=True
            )

        intact = (
            secret.get("digest") == own.content_hash
            and {CREDS_KEY, URLS_KEY, ACCOUNT_NAME_KEY} <= keys
        )
        if not intact:
            return await self._restore(request, wish, targets, own, base=secret)

        now = self._clock()
        renew_at = self._renew_at(secret, own)
        if renew_at is not None and now >= renew_at:
            return await self._reissue(
                request, wish, targets, own, base=secret, reason=Reason.RENEWED, revoke_old=True
            )

        if self.resync_due(request):
            outcome = await self._verify(request, wish, targets, secret, own)
            if outcome is not None:
                return outcome
        return self._next_look(request, renew_at)

    def _renew_at(self, secret: Mapping[str, Any], own: Ownership) -> float | None:
        if own.expires_at is None:
            return None
        issued = parse_time(_annotation(secret, ISSUED_AT_ANNOTATION)) or own.expires_at
        return issued + (own.expires_at - issued) * self._opts.renew_fraction

    def _next_look(self, request: Request, renew_at: float | None) -> Result:
        waits = []
        if renew_at is not None:
            waits.append(max(renew_at - self._clock(), 0.0) + 0.5)
        if self._opts.resync_interval > 0:
            last = self._verified.get(str(request), self._started)
            waits.append(max(last + self._opts.resync_interval - self._clock(), 0.0) + 0.5)
        return Result(requeue_after=min(waits)) if waits else Result()

    async def _verify(
        self,
        request: Request,
        wish: rules.Desired,
        targets: Sequence[rules.Consumer],
        secret: Mapping[str, Any],
        own: Ownership,
    ) -> Result | None:
        """Ask Tower whether what we wrote still holds (resync); None when it does."""
        try:
            allowed = await self._issuer.access_allowed(
                wish.installation, wish.account, request.namespace
            ) or not await self._issuer.confirm_unlinked(
                wish.installation, wish.account, request.namespace
            )
            if not allowed:
                # Proven in this pass: installation and account read fresh with the same
                # token that finds no link (a wrong token raises instead).
                await self._tell(
                    targets,
                    "Warning",
                    Reason.ACCESS_NOT_ALLOWED,
                    self._access_message(wish, request.namespace)
                    + "; its credentials were revoked",
                )
                await self._revoke_and_delete(request, secret, own)
                return Result(requeue_after=self._opts.access_retry_interval)
            user = await self._issuer.lookup_user(own.user_id)
            if user is None:
                return await self._reissue(
                    request,
                    wish,
                    targets,
                    own,
                    base=secret,
                    reason=Reason.REISSUED,
                    revoke_old=False,
                    note="the Tower user was deleted in NATS Tower",
                )
            urls = await self._issuer.installation_urls(wish.installation)
        except TowerError as exc:
            return await self._tower_failed(targets, wish, request.namespace, exc)
        self._verified.put(str(request), self._clock())
        if ",".join(urls) != secret.get("urls", ""):
            await self._rewrite(
                request,
                own,
                user,
                urls,
                base=secret,
                targets=targets,
                reason=Reason.UPDATED,
                message=f"Secret {request.name}: NATS URLs changed in Tower",
            )
            return Result()
        return None

    async def _restore(
        self,
        request: Request,
        wish: rules.Desired,
        targets: Sequence[rules.Consumer],
        own: Ownership,
        *,
        base: Mapping[str, Any] | None,
    ) -> Result:
        """Write the same user's credentials back into a Secret that was edited or deleted.

        ``base`` is the edited Secret (replaced) or None when it was deleted (created again).
        """
        what = "deleted" if base is None else "modified"
        try:
            user = await self._issuer.lookup_user(own.user_id)
            urls = await self._issuer.installation_urls(wish.installation) if user else ()
        except TowerError as exc:
            if base is None:
                self._tombstones[str(request)] = own  # keep it for the retry
            return await self._tower_failed(targets, wish, request.namespace, exc)
        if user is None:
            return await self._reissue(
                request,
                wish,
                targets,
                own,
                base=base,
                reason=Reason.REISSUED,
                revoke_old=False,
                note=f"the Secret was {what} and its Tower user is gone",
            )
        await self._rewrite(
            request,
            own,
            user,
            urls,
            base=base,
            targets=targets,
            reason=Reason.RESTORED,
            message=f"Secret {request.name} was {what}; its credentials were restored",
        )
        return Result()

    async def _rewrite(
        self,
        request: Request,
        own: Ownership,
        user: User,
        urls: Sequence[str],
        *,
        base: Mapping[str, Any] | None,
        targets: Sequence[rules.Consumer],
        reason: str,
        message: str,
    ) -> None:
        """Write the Secret again for the user it already records (same generation)."""
        issued = Issued(
            user_id=user.id,
            user_name=own.user_name or user.name,
            user_public_key=user.public_key,
            urls=tuple(urls),
            account_name=own.account,
            installation=own.installation,
            role=own.role,
            generation=own.generation,
            creds=user.creds,
        )
        await self._write(request, issued, base=base)
        await self._tell(targets, "Normal", reason, message)

    # ------------------------------------------------------------------ issuing

    async def _reissue(
        self,
        request: Request,
        wish: rules.Desired,
        targets: Sequence[rules.Consumer],
        own: Ownership,
        *,
        base: Mapping[str, Any] | None,
        reason: str,
        revoke_old: bool,
        note: str = "",
    ) -> Result:
        """Issue the next generation; with ``revoke_old`` the recorded user is revoked after."""
        return await self._issue(
            request,
            wish,
            targets,
            base=base,
            generation=own.generation + 1,
            reason=reason,
            replaces=own if revoke_old else None,
            note=note,
        )

    async def _issue(
        self,
        request: Request,
        wish: rules.Desired,
        targets: Sequence[rules.Consumer],
        *,
        base: Mapping[str, Any] | None,
        generation: int,
        reason: str,
        replaces: Ownership | None = None,
        note: str = "",
    ) -> Result:
        namespace, name = request.namespace, request.name
        first = targets[0]
        spec = CredentialSpec(
            installation=wish.installation,
            account=wish.account,
            namespace=namespace,
            user_name=user_name(self._opts.cluster_id, namespace, name, generation),
            description=(
                f"Generated by nats-tower-operator for Secret {namespace}/{name} in cluster "
                f"{self._opts.cluster_id} ({first.kind.lower()} {first.name})"
            ),
            role=(
                RoleSpec(
                    name=wish.role.name, publish=wish.role.publish, subscribe=wish.role.subscribe
                )
                if wish.role
                else None
            ),
        )
        try:
            cred = await self._issuer.issue(spec)
            if cred.role_mismatch:
                # A user of ours with this name exists under another role: it cannot be
                # reused, so revoke it and issue again on the next pass.
                await self._issuer.revoke(cred.user_id)
                return Result(requeue_after=0.0)
        except TowerError as exc:
            return await self._tower_failed(targets, wish, namespace, exc)
        issued = Issued(
            user_id=cred.user_id,
            user_name=spec.user_name,
            user_public_key=cred.user_public_key,
            urls=tuple(cred.urls),
            account_name=cred.account_name,
            installation=wish.installation,
            role=wish.role.name if wish.role else None,
            generation=generation,
            creds=cred.creds,
        )
        extra = {PREVIOUS_USER_ANNOTATION: replaces.user_id} if replaces else {}
        try:
            await self._write(request, issued, base=base, extra_annotations=extra)
        except (Invalid, Forbidden) as exc:
            await self._tell(
                targets,
                "Warning",
                Reason.ERROR_UPSERTING_SECRET,
                f"cannot write Secret {name}: {exc.message}",
            )
            raise
        self._verified.put(str(request), self._clock())
        detail = f" ({note})" if note else ""
        verb = {
            Reason.CREATED: "created",
            Reason.RENEWED: "renewed",
            Reason.REISSUED: "re-issued",
        }.get(reason, "updated")
        await self._tell(
            targets,
            "Normal",
            reason,
            f"Secret {name} {verb} with a NATS user of account {wish.account}{detail}",
        )
        log.info(
            "credential %s",
            verb,
            extra={"secret": str(request), "account": wish.account, "generation": generation},
        )
        log.debug("credential %s: Tower user %s", verb, cred.user_id)
        return Result(requeue_after=0.0) if replaces else Result()

    async def _write(
        self,
        request: Request,
        issued: Issued,
        *,
        base: Mapping[str, Any] | None,
        extra_annotations: Mapping[str, str] | None = None,
    ) -> None:
        body = render_secret(
            namespace=request.namespace,
            name=request.name,
            issued=issued,
            cluster_id=self._opts.cluster_id,
            now=self._clock(),
            base=base,
        )
        if extra_annotations:
            body["metadata"]["annotations"].update(extra_annotations)
        if base is None:
            # AlreadyExists (someone created it meanwhile) and Conflict (a stale replace)
            # propagate: the work queue retries and the next look sees the current Secret.
            await self._kube.create(SECRETS, body, namespace=request.namespace)
        else:
            await self._kube.replace(SECRETS, request.name, body, namespace=request.namespace)

    # ------------------------------------------------------------------ revocation

    async def _orphaned(self, request: Request, cached: Mapping[str, Any] | None) -> Result:
        """No object asks for this Secret any more: revoke it after the grace period."""
        if not self._consumers_synced():
            return Result()
        if cached is None:
            tombstone = self._tombstones.pop(str(request), None)
            if tombstone is not None:
                # Deleted by someone while nothing used it: nothing can mount it any more.
                try:
                    await self._issuer.revoke(tombstone.user_id)
                except TowerError:
                    self._tombstones[str(request)] = tombstone  # retried with backoff
                    raise
                self._revoked.put(tombstone.user_id, self._clock())
                log.info(
                    "credential of a deleted, unused Secret revoked",
                    extra={"secret": str(request)},
                )
            return Result()
        own = ownership(cached)
        if own is None:
            return Result()  # not issued by us: nothing of ours to revoke
        now = self._clock()
        if own.orphaned_since is None:
            # Kubernetes times have whole seconds: round up so the grace is never shorter.
            await self._patch_annotations(
                request, cached, {ORPHANED_SINCE_ANNOTATION: format_time(math.ceil(now))}
            )
            log.info(
                "secret has no consumers; revocation scheduled",
                extra={"secret": str(request), "grace_seconds": self._opts.revoke_grace_period},
            )
            return Result(requeue_after=self._opts.revoke_grace_period + 0.5)
        remaining = own.orphaned_since + self._opts.revoke_grace_period - now
        if remaining > 0:
            return Result(requeue_after=remaining + 0.5)
        try:
            await self._revoke_and_delete(request, cached, own)
        except TowerUnauthorized:
            # Not revoked, so not deleted: the Secret is the only record of its user.
            await self._events.record(
                {"apiVersion": "v1", "kind": "Secret", "metadata": cached.get("metadata") or {}},
                "Warning",
                Reason.TOWER_TOKEN_REFUSED,
                f"Secret {request.name} is unused but its NATS user cannot be revoked: NATS "
                "Tower does not accept the operator's API token. The Secret is kept until it "
                "does.",
            )
            return Result(requeue_after=self._opts.access_retry_interval)
        return Result()

    async def _revoke_and_delete(
        self, request: Request, secret: Mapping[str, Any], own: Ownership
    ) -> None:
        """Revoke the Tower user(s) first, then delete the Secret (never the reverse)."""
        previous = _annotation(secret, PREVIOUS_USER_ANNOTATION)
        for user_id in (own.user_id, previous):
            if user_id:
                await self._issuer.revoke(user_id)
                self._revoked.put(user_id, self._clock())
        meta = secret.get("metadata") or {}
        with contextlib.suppress(NotFound):
            await self._kube.delete(
                SECRETS, request.name, namespace=request.namespace, uid=meta.get("uid")
            )
        await self._events.record(
            {"apiVersion": "v1", "kind": "Secret", "metadata": meta},
            "Normal",
            Reason.REVOKED,
            f"Tower user of account {own.account} revoked and Secret {request.name} deleted",
        )
        log.info("credential revoked", extra={"secret": str(request)})

    async def _revoke_previous(
        self, request: Request, secret: Mapping[str, Any], user_id: str
    ) -> None:
        """A replaced user is revoked only once its successor is stored in the Secret."""
        await self._issuer.revoke(user_id)
        await self._patch_annotations(request, secret, {PREVIOUS_USER_ANNOTATION: None})
        log.info("replaced credential revoked", extra={"secret": str(request)})

    async def _patch_annotations(
        self, request: Request, secret: Mapping[str, Any], annotations: Mapping[str, str | None]
    ) -> None:
        meta = secret.get("metadata") or {}
        patch = {
            "metadata": {
                "annotations": dict(annotations),
                "resourceVersion": meta.get("resourceVersion"),
            }
        }
        await self._kube.patch(SECRETS, request.name, patch, namespace=request.namespace)

    # ------------------------------------------------------------------ helpers

    async def _live_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return await self._kube.get(SECRETS, name, namespace=namespace)
        except NotFound:
            return None

    def _access_message(self, wish: rules.Desired, namespace: str) -> str:
        return (
            f"account {wish.account!r} is not linked to namespace {namespace!r} of cluster "
            f"{self._opts.cluster_id!r}: an account owner must allow this cluster and "
            "namespace in NATS Tower (account settings, Kubernetes access)"
        )

    async def _tower_failed(
        self,
        targets: Sequence[rules.Consumer],
        wish: rules.Desired,
        namespace: str,
        exc: TowerError,
    ) -> Result:
        """Turn a Tower error into an Event, then a retry policy."""
        later = Result(requeue_after=self._opts.access_retry_interval)
        if isinstance(exc, AccessNotAllowed):
            await self._tell(
                targets, "Warning", Reason.ACCESS_NOT_ALLOWED, self._access_message(wish, namespace)
            )
            return later
        if isinstance(exc, InstallationNotFound):
            await self._tell(
                targets,
                "Warning",
                Reason.INSTALLATION_NOT_FOUND,
                f"installation {wish.installation} does not exist in NATS Tower",
            )
            return later
        if isinstance(exc, AccountNotFound):
            await self._tell(
                targets,
                "Warning",
                Reason.ACCOUNT_NOT_FOUND,
                f"account {wish.account!r} does not exist in installation {wish.installation}",
            )
            return later
        if isinstance(exc, RoleNotFound):
            await self._tell(targets, "Warning", Reason.ROLE_NOT_FOUND, exc.message)
            return later
        if isinstance(exc, TowerUnauthorized):
            await self._tell(
                targets,
                "Warning",
                Reason.TOWER_TOKEN_REFUSED,
                "NATS Tower does not accept the operator's API token; nothing is changed "
                "until it does (the operator's logs and /readyz say more)",
            )
            return later
        if isinstance(exc, TowerBadRequest):
            await self._tell(
                targets,
                "Warning",
                Reason.ERROR_CREATING_USER,
                f"NATS Tower refused the request: {exc.message}",
            )
            return later
        await self._tell(
            targets,
            "Warning",
            Reason.ERROR_CREATING_USER,
            f"NATS Tower is not answering properly, retrying: {exc.message}",
        )
        raise exc

    async def _tell(
        self,
        targets: Sequence[rules.Consumer],
        type_: EventType,
        reason: str,
        message: str,
    ) -> None:
        if type_ == "Warning":
            log.warning(
                "%s: %s",
                reason,
                message,
                extra={"objects": ",".join(f"{c.namespace}/{c.name}" for c in targets[:3])},
            )
        for consumer in targets[:MAX_EVENT_TARGETS]:
            await self._events.record(_involved(consumer), type_, reason, message)
        if self._on_event is not None and targets:
            self._on_event(type_, reason)

    async def _tell_once(
        self, targets: Sequence[rules.Consumer], reason: str, message: str
    ) -> None:
        fresh = [c for c in targets if f"{reason}/{c.uid}" not in self._told]
        for consumer in fresh:
            self._told.put(f"{reason}/{consumer.uid}", self._clock())
        if fresh:
            await self._tell(fresh, "Normal", reason, message)


def _same_credential(own: Ownership, wish: rules.Desired) -> bool:
    role = wish.role.name if wish.role else None
    return (own.installation, own.account, own.role) == (wish.installation, wish.account, role)


def _annotation(secret: Mapping[str, Any], key: str) -> str:
    annotations = (secret.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(key, "")
    return value if isinstance(value, str) else ""


def _involved(consumer: rules.Consumer) -> dict[str, Any]:
    return {
        "apiVersion": consumer.api_version,
        "kind": consumer.kind,
        "metadata": {
            "name": consumer.name,
            "namespace": consumer.namespace,
            "uid": consumer.uid,
            "resourceVersion": consumer.resource_version,
        },
    }


_ = KubeError  # re-exported error base used by callers' retry policy
