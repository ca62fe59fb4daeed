"""The credential decision table: every row of ``plan``'s state table, without any I/O."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, get_args

import pytest

from nats_tower_operator.reconcilers import plan as p
from nats_tower_operator.reconcilers.desired import Desired, RoleWish
from nats_tower_operator.reconcilers.labels import Reason
from nats_tower_operator.reconcilers.secretdoc import Ownership, SecretState
from nats_tower_operator.tower import User

NOW = 1_800_000_000.0
INSTALLATION = "O" + "A" * 55
POLICY = p.Policy(
    cluster_id="c1",
    default_installation=INSTALLATION,
    allowed_installations=frozenset({INSTALLATION}),
    revoke_grace_period=600.0,
    access_retry_interval=30.0,
    resync_interval=600.0,
    renew_fraction=0.5,
)
WISH = Desired(
    installation=INSTALLATION,
    installation_defaulted=False,
    account="orders",
    credential_type="user",
    role=None,
)
USER_ID = "u" * 15
OWN = Ownership(
    user_id=USER_ID,
    user_name="c1/default/app",
    installation=INSTALLATION,
    account="orders",
    role=None,
    generation=2,
    content_hash="sha256:x",
    expires_at=None,
    orphaned_since=None,
)
USER = User(
    id=USER_ID,
    account_id="a" * 15,
    name="c1/default/app",
    description="",
    public_key="U" + "B" * 55,
    signing_key_id=None,
    creds="creds",
    jwt="jwt",
)


def secret(**changes: Any) -> SecretState:
    own = changes.pop("ownership", OWN)
    base = SecretState(
        managed=True,
        ownership=own,
        has_creds=True,
        intact=True,
        previous_user="",
        urls="nats://a:4222",
        issued_at=NOW - 100,
        summary={"metadata": {"name": "app", "uid": "uid-1", "resourceVersion": "7"}},
    )
    return replace(base, **changes)


def observe(**changes: Any) -> p.Observation:
    base = p.Observation(
        wish=WISH,
        has_consumers=True,
        secret=secret(),
        tombstone=None,
        synced=True,
        now=NOW,
        last_verified=NOW - 10,
    )
    return replace(base, **changes)


def decide(**changes: Any) -> p.Action:
    return p.plan(observe(**changes), POLICY)


# --------------------------------------------------------------------- nobody uses it


def test_unused_before_the_caches_synced_does_nothing() -> None:
    assert decide(has_consumers=False, wish=None, synced=False) == p.Wait()


def test_unused_and_deleted_revokes_the_deleted_secrets_user() -> None:
    action = decide(has_consumers=False, wish=None, secret=None, tombstone=OWN)
    assert action == p.RevokeUser(OWN)


def test_unused_and_deleted_without_memory_does_nothing() -> None:
    assert decide(has_consumers=False, wish=None, secret=None) == p.Wait()


def test_unused_secret_not_issued_by_us_is_left_alone() -> None:
    assert decide(has_consumers=False, wish=None, secret=secret(ownership=None)) == p.Wait()


def test_unused_secret_is_marked_orphaned_and_looked_at_after_the_grace() -> None:
    action = decide(has_consumers=False, wish=None)
    assert action == p.MarkOrphaned(since=NOW, after=600.0 + p.LOOK_AGAIN_SLACK)


def test_orphaned_secret_waits_for_the_rest_of_the_grace() -> None:
    orphaned = secret(ownership=replace(OWN, orphaned_since=NOW - 100))
    action = decide(has_consumers=False, wish=None, secret=orphaned)
    assert action == p.Wait(after=500.0 + p.LOOK_AGAIN_SLACK)


def test_orphaned_secret_past_the_grace_is_revoked_then_deleted() -> None:
    orphaned = secret(ownership=replace(OWN, orphaned_since=NOW - 600))
    action = decide(has_consumers=False, wish=None, secret=orphaned)
    assert action == p.RevokeAndDelete(orphaned.ownership, orphaned, cause="unused")  # type: ignore[arg-type]


# --------------------------------------------------------------------- consumers


def test_consumers_without_an_agreed_wish_change_nothing() -> None:
    assert decide(wish=None) == p.Wait()


def test_a_secret_someone_else_made_is_never_touched() -> None:
    action = decide(secret=secret(managed=False, ownership=None))
    assert action == p.NotOwned(after=30.0 * p.NOT_OWNED_RETRY_FACTOR)


def test_a_missing_secret_is_issued_as_generation_one() -> None:
    assert decide(secret=None) == p.Issue(generation=1, reason=Reason.CREATED)


def test_a_deleted_secret_is_restored_from_its_last_user() -> None:
    assert decide(secret=None, tombstone=OWN) == p.Restore(OWN, base=None)


def test_a_deleted_secret_of_another_credential_is_issued_anew() -> None:
    other = replace(OWN, account="payments")
    assert decide(secret=None, tombstone=other) == p.Issue(generation=1, reason=Reason.CREATED)


def test_a_labelled_secret_filled_by_someone_else_is_left_alone() -> None:
    assert decide(secret=secret(ownership=None)) == p.Wait()


def test_a_labelled_empty_secret_is_filled() -> None:
    empty = secret(ownership=None, has_creds=False)
    assert decide(secret=empty) == p.Issue(generation=1, reason=Reason.UPDATED, base=empty)


def test_a_replaced_user_is_revoked_first() -> None:
    other = "v" * 15
    assert decide(secret=secret(previous_user=other)) == p.RevokePrevious(other)


def test_a_malformed_replaced_user_record_is_dropped_not_sent() -> None:
    assert decide(secret=secret(previous_user="../x")) == p.RevokePrevious(None)


def test_consumers_coming_back_clear_the_orphan_mark() -> None:
    orphaned = secret(ownership=replace(OWN, orphaned_since=NOW - 5))
    assert decide(secret=orphaned) == p.ClearOrphaned()


@pytest.mark.parametrize(
    "wish",
    [
        replace(WISH, account="payments"),
        replace(WISH, installation="O" + "B" * 55),
        replace(WISH, role=RoleWish("writer")),
    ],
    ids=["account", "installation", "role"],
)
def test_another_credential_wanted_issues_the_next_generation_replacing_the_old(
    wish: Desired,
) -> None:
    current = secret()
    action = decide(wish=wish, secret=current)
    assert action == p.Issue(3, Reason.UPDATED, base=current, replaces=USER_ID)


def test_an_edited_secret_is_restored_from_its_recorded_user() -> None:
    edited = secret(intact=False)
    assert decide(secret=edited) == p.Restore(OWN, base=edited)


def test_an_expiring_credential_is_renewed_after_the_renew_fraction() -> None:
    expiring = secret(
        ownership=replace(OWN, expires_at=NOW + 100), issued_at=NOW - 100
    )  # half-life reached exactly at NOW
    action = decide(secret=expiring)
    assert action == p.Issue(3, Reason.RENEWED, base=expiring, replaces=USER_ID)


def test_an_expiring_credential_waits_for_its_renewal_time() -> None:
    expiring = secret(ownership=replace(OWN, expires_at=NOW + 300), issued_at=NOW - 100)
    assert decide(secret=expiring) == p.Wait(after=100.0 + p.LOOK_AGAIN_SLACK)


def test_a_resync_tick_asks_tower() -> None:
    assert decide(last_verified=NOW - 600) == p.Verify(OWN)


def test_a_requested_verification_asks_tower_before_the_tick() -> None:
    assert decide(verify_requested=True) == p.Verify(OWN)


def test_without_resyncs_an_intact_secret_is_only_looked_at_on_changes() -> None:
    no_resync = replace(POLICY, resync_interval=0)
    assert p.plan(observe(last_verified=0.0), no_resync) == p.Wait(after=None)


def test_an_intact_secret_waits_for_the_next_resync() -> None:
    assert decide() == p.Wait(after=590.0 + p.LOOK_AGAIN_SLACK)


# --------------------------------------------------------------------- with Tower's facts


def test_a_proven_removed_link_revokes_and_deletes() -> None:
    current = secret()
    action = decide(facts=p.TowerFacts(user=None, unlinked=True), secret=current)
    assert action == p.RevokeAndDelete(OWN, current, cause="unlinked", after=30.0)


def test_a_user_deleted_in_tower_is_reissued_without_revoking_anything() -> None:
    current = secret()
    action = decide(facts=p.TowerFacts(user=None), secret=current)
    assert action == p.Issue(
        3, Reason.REISSUED, base=current, note="the Tower user was deleted in NATS Tower"
    )


@pytest.mark.parametrize(("current", "damage"), [(None, "deleted"), ("edited", "modified")])
def test_a_damaged_secret_whose_user_is_gone_is_reissued(current: str | None, damage: str) -> None:
    state = secret(intact=False) if current else None
    action = decide(facts=p.TowerFacts(user=None), secret=state, tombstone=OWN)
    assert action == p.Issue(
        3,
        Reason.REISSUED,
        base=state,
        note=f"the Secret was {damage} and its Tower user is gone",
    )


@pytest.mark.parametrize(("current", "damage"), [(None, "deleted"), ("edited", "modified")])
def test_a_damaged_secret_is_rewritten_with_its_own_user(current: str | None, damage: str) -> None:
    state = secret(intact=False) if current else None
    facts = p.TowerFacts(user=USER, urls=("nats://a:4222",))
    action = decide(facts=facts, secret=state, tombstone=OWN)
    assert action == p.Rewrite(
        OWN,
        USER,
        ("nats://a:4222",),
        state,
        Reason.RESTORED,
        f"Secret {{secret}} was {damage}; its credentials were restored",
    )


def test_changed_urls_are_rewritten() -> None:
    current = secret()
    facts = p.TowerFacts(user=USER, urls=("nats://a:4222", "nats://b:4222"))
    action = decide(facts=facts, secret=current)
    assert isinstance(action, p.Rewrite)
    assert action.reason == Reason.UPDATED and action.urls == facts.urls


def test_a_verified_secret_waits_a_full_resync_interval() -> None:
    facts = p.TowerFacts(user=USER, urls=("nats://a:4222",))
    action = decide(facts=facts, last_verified=NOW - 600)
    assert action == p.Wait(after=600.0 + p.LOOK_AGAIN_SLACK, verified=True)


def test_every_row_of_the_state_table_has_a_test() -> None:
    """Each action class named in the docstring's table is produced by a test above."""
    doc = p.__doc__ or ""
    actions = {cls.__name__ for cls in get_args(p.Action)}
    named = {name for name in actions if f":class:`{name}`" in doc}
    assert (
        named
        == actions
        == {
            "Wait",
            "RevokeUser",
            "MarkOrphaned",
            "RevokeAndDelete",
            "NotOwned",
            "Restore",
            "Issue",
            "RevokePrevious",
            "ClearOrphaned",
            "Verify",
            "Rewrite",
        }
    )
