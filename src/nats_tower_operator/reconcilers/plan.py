"""The credential reconciler's decisions (pure): what is observed -> the one thing to do.

The reconciler reads a managed Secret's situation into an :class:`Observation`, asks
:func:`plan` for an action, executes it, and returns. Some actions first need Tower's word
(:class:`Verify`, :class:`Restore`): the reconciler then asks Tower, adds the answer as
:class:`TowerFacts` and plans again, so every decision, including those that depend on
Tower, is made here. Nothing in this module does I/O or reads a clock.

State table: the first row that matches decides.

======================================  ==========================================  =========
situation                               action                                      look again
======================================  ==========================================  =========
no consumer, caches not synced yet      :class:`Wait` (nothing: cannot know)        never
no consumer, Secret gone, tombstone     :class:`RevokeUser` the deleted Secret's    never
no consumer, Secret gone / not ours     :class:`Wait` (nothing to do)               never
no consumer, not marked orphaned        :class:`MarkOrphaned` now                   grace
no consumer, grace not over             :class:`Wait`                               the rest
no consumer, grace over                 :class:`RevokeAndDelete`                    never
consumers, none valid or conflicting    :class:`Wait` (their Events were said)      never
Secret not ours (no managed label)      :class:`NotOwned`                           NOT_OWNED
Secret missing, tombstone of same cred  :class:`Restore` the tombstone's user       never
Secret missing                          :class:`Issue` generation 1 (Created)       never
labelled, filled, not issued by us      :class:`Wait` (left alone, as upstream)     never
labelled, empty, not issued by us       :class:`Issue` generation 1 (Updated)       never
a replaced user recorded                :class:`RevokePrevious` (malformed: drop)   at once
marked orphaned (consumers are back)    :class:`ClearOrphaned`                      at once
other installation/account/role wanted  :class:`Issue` next generation, replaces    at once
edited (content hash, missing keys)     :class:`Restore` the recorded user          never
renewal due (expiring credential)       :class:`Issue` next generation, replaces    at once
resync due                              :class:`Verify` against Tower               -
otherwise                               :class:`Wait` (renewal or next resync)      the sooner
======================================  ==========================================  =========

With Tower's facts:

======================================  ==========================================  =========
Verify: link proven removed             :class:`RevokeAndDelete` + access Event     ACCESS
the user recorded is not this Secret's  :class:`Issue` next generation + Warning    never
Verify / Restore: the user is gone      :class:`Issue` next generation (Reissued)   never
Restore                                 :class:`Rewrite` the same user (Restored)   never
Verify: URLs changed in Tower           :class:`Rewrite` (Updated)                  never
Verify: all as written                  :class:`Wait` (verified)                    the sooner
======================================  ==========================================  =========

"replaces" means the old user is recorded on the new Secret and revoked on the next look,
only after the new creds are stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from nats_tower_operator.reconcilers.desired import Desired
from nats_tower_operator.reconcilers.labels import Reason
from nats_tower_operator.reconcilers.secretdoc import Ownership, SecretState
from nats_tower_operator.tower import User, is_record_id

__all__ = [
    "AT_ONCE",
    "FOREIGN_USER",
    "LOOK_AGAIN_SLACK",
    "NOT_OWNED_RETRY_FACTOR",
    "Action",
    "ClearOrphaned",
    "Issue",
    "MarkOrphaned",
    "NotOwned",
    "Observation",
    "Policy",
    "Restore",
    "RevokeAndDelete",
    "RevokePrevious",
    "RevokeUser",
    "Rewrite",
    "TowerFacts",
    "Verify",
    "Wait",
    "plan",
    "same_credential",
]

#: Seconds added to every timed look, so a timer never fires just before its deadline.
LOOK_AGAIN_SLACK = 0.5
#: Look again right away (a follow-up step of the same change).
AT_ONCE = 0.0
#: A Secret we do not own is looked at again after this many access retry intervals.
NOT_OWNED_RETRY_FACTOR = 4.0
#: What a Secret is told when its annotations name a user that is not its own.
FOREIGN_USER = (
    "the Secret's annotations name a NATS user that is not this Secret's own (another "
    "namespace's, Secret's or account's); that user is neither written nor revoked"
)


@dataclass(frozen=True, slots=True)
class Policy:
    """The knobs of the credential lifecycle (from Settings); shared with the sweeper."""

    cluster_id: str
    default_installation: str | None
    allowed_installations: frozenset[str]
    revoke_grace_period: float = 600.0
    access_retry_interval: float = 30.0
    resync_interval: float = 600.0
    renew_fraction: float = 2.0 / 3.0


@dataclass(frozen=True, slots=True)
class TowerFacts:
    """What Tower said in this pass, for a :class:`Verify` or a :class:`Restore`.

    ``user`` is the recorded user, None when Tower proved it gone; ``unlinked`` is True only
    when Tower proved, with fresh reads, that the namespace may no longer use the account;
    ``foreign`` when the recorded user exists but is not this Secret's own (another name or
    another account: the annotations were written by someone else).
    """

    user: User | None
    urls: tuple[str, ...] = ()
    unlinked: bool = False
    foreign: bool = False


@dataclass(frozen=True, slots=True)
class Observation:
    """Everything a decision needs about one managed Secret, read in one pass."""

    #: The credential the valid consumers agree on; None: no valid consumer or a conflict.
    wish: Desired | None
    #: Whether any object asks for the Secret at all (valid or not).
    has_consumers: bool
    #: The Secret (from the cache, or read live); None when it does not exist.
    secret: SecretState | None
    #: What a Secret deleted recently held (kept from the watch's DELETED event).
    tombstone: Ownership | None
    #: Whether the consumer caches have listed once (absence means something).
    synced: bool
    now: float
    #: When Tower was last asked whether this Secret is still right.
    last_verified: float
    #: A verifying resync was asked for after ``last_verified`` (SIGHUP, resync tick).
    verify_requested: bool = False
    facts: TowerFacts | None = None


# ---------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class Wait:
    """Nothing to change; look again after ``after`` seconds (None: only on a change)."""

    after: float | None = None
    verified: bool = False


@dataclass(frozen=True, slots=True)
class NotOwned:
    """A Secret of that name exists and is not ours: say so, never touch it."""

    after: float


@dataclass(frozen=True, slots=True)
class Issue:
    """Obtain a user of generation ``generation`` from Tower and write it.

    ``base`` is the Secret to replace (None: create it); ``replaces`` the user to revoke once
    the new one is stored; ``warning`` an ownership problem to tell first.
    """

    generation: int
    reason: str
    base: SecretState | None = None
    replaces: str | None = None
    note: str = ""
    warning: str = ""


@dataclass(frozen=True, slots=True)
class Restore:
    """Write the recorded user's creds back (Tower is asked whether it still exists)."""

    ownership: Ownership
    base: SecretState | None


@dataclass(frozen=True, slots=True)
class Verify:
    """Ask Tower whether user, access link and URLs are still what the Secret holds."""

    ownership: Ownership


@dataclass(frozen=True, slots=True)
class Rewrite:
    """Write the same user again (same generation) with current URLs."""

    ownership: Ownership
    user: User
    urls: tuple[str, ...]
    base: SecretState | None
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class RevokePrevious:
    """Revoke the replaced user recorded on the Secret (or drop a malformed record)."""

    user_id: str | None


@dataclass(frozen=True, slots=True)
class RevokeUser:
    """Revoke the user of a Secret that was deleted while nothing used it."""

    ownership: Ownership


@dataclass(frozen=True, slots=True)
class MarkOrphaned:
    """Record on the Secret that nothing uses it since ``since`` (whole seconds)."""

    since: float
    after: float


@dataclass(frozen=True, slots=True)
class ClearOrphaned:
    """Something uses the Secret again: remove the orphaned-since record."""


@dataclass(frozen=True, slots=True)
class RevokeAndDelete:
    """Revoke the Secret's user(s), then delete the Secret (never the reverse)."""

    ownership: Ownership
    secret: SecretState
    cause: Literal["unused", "unlinked"]
    after: float | None = None


Action = (
    Wait
    | NotOwned
    | Issue
    | Restore
    | Verify
    | Rewrite
    | RevokePrevious
    | RevokeUser
    | MarkOrphaned
    | ClearOrphaned
    | RevokeAndDelete
)


def same_credential(own: Ownership, wish: Desired) -> bool:
    """Whether the Secret holds the installation, account and role the consumers want."""
    role = wish.role.name if wish.role else None
    return (own.installation, own.account, own.role) == (wish.installation, wish.account, role)


# ---------------------------------------------------------------------- planning


def plan(obs: Observation, policy: Policy) -> Action:  # noqa: PLR0911 - one return per row of the state table
    """The one action for ``obs`` (see the module's state table)."""
    if obs.facts is not None:
        return _with_facts(obs, obs.facts, policy)
    if not obs.has_consumers:
        return _unused(obs, policy)
    if obs.wish is None:
        return Wait()
    secret = obs.secret
    if secret is None:
        tombstone = obs.tombstone
        if tombstone is not None and same_credential(tombstone, obs.wish):
            return Restore(tombstone, base=None)
        return Issue(generation=1, reason=Reason.CREATED)
    if not secret.managed:
        return NotOwned(after=policy.access_retry_interval * NOT_OWNED_RETRY_FACTOR)
    return _existing(obs, obs.wish, secret, policy)


def _unused(obs: Observation, policy: Policy) -> Action:
    if not obs.synced:
        return Wait()
    secret = obs.secret
    if secret is None:
        return RevokeUser(obs.tombstone) if obs.tombstone is not None else Wait()
    own = secret.ownership
    if own is None:
        return Wait()  # not issued by us: nothing of ours to revoke
    if own.orphaned_since is None:
        return MarkOrphaned(since=obs.now, after=policy.revoke_grace_period + LOOK_AGAIN_SLACK)
    remaining = own.orphaned_since + policy.revoke_grace_period - obs.now
    if remaining > 0:
        return Wait(after=remaining + LOOK_AGAIN_SLACK)
    return RevokeAndDelete(own, secret, cause="unused")


def _existing(obs: Observation, wish: Desired, secret: SecretState, policy: Policy) -> Action:  # noqa: PLR0911 - one return per row of the state table
    own = secret.ownership
    if own is None:
        if secret.has_creds:
            return Wait()  # labelled as ours but filled by someone else (e.g. the Go operator)
        return Issue(generation=1, reason=Reason.UPDATED, base=secret)
    if secret.previous_user:
        previous = secret.previous_user
        return RevokePrevious(previous if is_record_id(previous) else None)
    if own.orphaned_since is not None:
        return ClearOrphaned()
    if not same_credential(own, wish):
        return Issue(own.generation + 1, Reason.UPDATED, base=secret, replaces=own.user_id)
    if not secret.intact:
        return Restore(own, base=secret)
    renew_at = _renew_at(secret, own, policy)
    if renew_at is not None and obs.now >= renew_at:
        return Issue(own.generation + 1, Reason.RENEWED, base=secret, replaces=own.user_id)
    if _resync_due(obs, policy):
        return Verify(own)
    return Wait(after=_next_look(obs, renew_at, policy, verified_at=obs.last_verified))


def _with_facts(obs: Observation, facts: TowerFacts, policy: Policy) -> Action:
    secret = obs.secret
    own = secret.ownership if secret is not None else obs.tombstone
    assert own is not None, "Tower facts are gathered only for a recorded user"
    if facts.unlinked and secret is not None:
        return RevokeAndDelete(own, secret, cause="unlinked", after=policy.access_retry_interval)
    if facts.foreign:
        # Never write (nor later revoke) a user that is not this Secret's: a new one of its own.
        return Issue(
            own.generation + 1,
            Reason.REISSUED,
            base=secret,
            note="it named a NATS user that is not its own",
            warning=FOREIGN_USER,
        )
    damage = "deleted" if secret is None else ("modified" if not secret.intact else "")
    if facts.user is None:
        note = "the Tower user was deleted in NATS Tower"
        if damage:
            note = f"the Secret was {damage} and its Tower user is gone"
        return Issue(own.generation + 1, Reason.REISSUED, base=secret, note=note)
    if damage:
        message = f"Secret {{secret}} was {damage}; its credentials were restored"
        return Rewrite(own, facts.user, facts.urls, secret, Reason.RESTORED, message)
    assert secret is not None
    if ",".join(facts.urls) != secret.urls:
        message = "Secret {secret}: NATS URLs changed in Tower"
        return Rewrite(own, facts.user, facts.urls, secret, Reason.UPDATED, message)
    renew_at = _renew_at(secret, own, policy)
    return Wait(after=_next_look(obs, renew_at, policy, verified_at=obs.now), verified=True)


def _renew_at(secret: SecretState, own: Ownership, policy: Policy) -> float | None:
    if own.expires_at is None:
        return None
    issued = secret.issued_at if secret.issued_at is not None else own.expires_at
    return issued + (own.expires_at - issued) * policy.renew_fraction


def _resync_due(obs: Observation, policy: Policy) -> bool:
    if obs.verify_requested:
        return True
    if policy.resync_interval <= 0:
        return False
    return obs.now - obs.last_verified >= policy.resync_interval


def _next_look(
    obs: Observation, renew_at: float | None, policy: Policy, *, verified_at: float
) -> float | None:
    waits = []
    if renew_at is not None:
        waits.append(max(renew_at - obs.now, 0.0) + LOOK_AGAIN_SLACK)
    if policy.resync_interval > 0:
        due = verified_at + policy.resync_interval - obs.now
        waits.append(max(due, 0.0) + LOOK_AGAIN_SLACK)
    return min(waits) if waits else None
