"""Label rules: each bad input maps to its Event reason; good input to the right wish."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nats_tower_operator.reconcilers.desired import (
    Conflict,
    Consumer,
    Desired,
    Invalid,
    RoleWish,
    combine,
    desired_for,
    is_secret_name,
    parse_subjects,
    subject_problem,
)
from nats_tower_operator.reconcilers.labels import Reason

INST = "OC7OMSNNKRRZ3AQ3ZMBMYVDPBDI5UMFMZVJ6H4V5PNUUSM5UAB6BZFIT"
OTHER = "OA" + "B" * 54


def pod(
    labels: dict[str, str], annotations: dict[str, str] | None = None, **kw: object
) -> Consumer:
    return Consumer(
        kind=str(kw.get("kind", "Pod")),
        api_version="v1",
        namespace="default",
        name=str(kw.get("name", "test")),
        uid="u1",
        labels=labels,
        annotations=annotations or {},
        deleting=bool(kw.get("deleting", False)),
    )


def wish(c: Consumer, default: str | None = INST) -> Desired | Invalid:
    return desired_for(c, default_installation=default, allowed_installations=frozenset({INST}))


BASE = {
    "nats-tower.com/nats-tower-secret": "mycreds",
    "nats-tower.com/nats-tower-account": "operator",
}


def test_seed_pod_example_wants_user_of_account() -> None:
    got = wish(pod({**BASE, "nats-tower.com/nats-tower-installation": INST}), default=None)
    assert got == Desired(INST, False, "operator", "user", None)


def test_default_installation_is_used_and_flagged() -> None:
    got = wish(pod(BASE))
    assert isinstance(got, Desired) and got.installation == INST and got.installation_defaulted


def test_nack_account_uses_object_name_as_account() -> None:
    got = wish(pod({"nats-tower.com/nats-tower-secret": "nack"}, kind="Account", name="operator"))
    assert isinstance(got, Desired) and got.account == "operator"


@pytest.mark.parametrize(
    ("labels", "annotations", "default", "reason"),
    [
        (BASE, {}, None, Reason.MISSING_INSTALLATION_LABEL),
        (
            {**BASE, "nats-tower.com/nats-tower-installation": OTHER},
            {},
            INST,
            Reason.INVALID_INSTALLATION_LABEL,
        ),
        (
            {**BASE, "nats-tower.com/nats-tower-installation": "nope"},
            {},
            INST,
            Reason.INVALID_INSTALLATION_LABEL,
        ),
        ({"nats-tower.com/nats-tower-secret": "s"}, {}, INST, Reason.MISSING_ACCOUNT_LABEL),
        (
            {**BASE, "nats-tower.com/nats-tower-secret": "Bad_Name"},
            {},
            INST,
            Reason.INVALID_SECRET_LABEL,
        ),
        (
            {**BASE, "nats-tower.com/nats-tower-credential-type": "account"},
            {},
            INST,
            Reason.INVALID_CREDENTIAL_TYPE,
        ),
        (BASE, {"nats-tower.com/nats-tower-publish": "a.b"}, INST, Reason.MISSING_ROLE_LABEL),
        (
            {**BASE, "nats-tower.com/nats-tower-role": "r"},
            {"nats-tower.com/nats-tower-publish": "a..b"},
            INST,
            Reason.INVALID_SUBJECTS,
        ),
        (
            {**BASE, "nats-tower.com/nats-tower-role": "r"},
            {"nats-tower.com/nats-tower-subscribe": "a b"},
            INST,
            Reason.INVALID_SUBJECTS,
        ),
    ],
)
def test_bad_labels_map_to_reasons(
    labels: dict[str, str], annotations: dict[str, str], default: str | None, reason: str
) -> None:
    got = wish(pod(labels, annotations), default=default)
    assert isinstance(got, Invalid)
    assert got.reason == reason
    assert got.message


def test_role_with_subjects_parsed_like_upstream() -> None:
    got = wish(
        pod(
            {**BASE, "nats-tower.com/nats-tower-role": "orders"},
            {
                "nats-tower.com/nats-tower-publish": "orders.>, orders.new\n_INBOX.>",
                "nats-tower.com/nats-tower-subscribe": "",
            },
        )
    )
    assert isinstance(got, Desired)
    assert got.role == RoleWish("orders", ("orders.>", "orders.new", "_INBOX.>"), ())


@pytest.mark.parametrize("subject", ["a", "a.b", "a.*", "a.>", ">", "*", "_INBOX.x.y"])
def test_valid_subjects(subject: str) -> None:
    assert subject_problem(subject) is None


@pytest.mark.parametrize("subject", ["", "a..b", ".a", "a.", "a b", "a.>.b", "a*", "a.b>"])
def test_invalid_subjects(subject: str) -> None:
    assert subject_problem(subject) is not None


def test_parse_subjects_dedups_and_reports_each_problem() -> None:
    subjects, problems = parse_subjects("a, a ,b..c,\n d")
    assert subjects == ("a", "d")
    assert len(problems) == 1 and "b..c" in problems[0]


@given(st.text(max_size=80))
def test_secret_name_rule_matches_kubernetes(name: str) -> None:
    ok = is_secret_name(name)
    if ok:
        assert name == name.lower() and len(name) <= 253
        assert name[0].isalnum() and name[-1].isalnum()
        assert all(c.isascii() and (c.isalnum() or c in "-.") for c in name)


def test_combine_agrees_and_prefers_wish_with_permissions() -> None:
    plain = wish(pod({**BASE, "nats-tower.com/nats-tower-role": "r"}))
    rich = wish(
        pod(
            {**BASE, "nats-tower.com/nats-tower-role": "r"},
            {"nats-tower.com/nats-tower-publish": "x"},
        )
    )
    assert isinstance(plain, Desired) and isinstance(rich, Desired)
    c = pod(BASE)
    assert combine([(c, plain), (c, rich)]) == rich


def test_combine_conflict_on_different_accounts() -> None:
    a = pod(BASE, name="a")
    b = pod({**BASE, "nats-tower.com/nats-tower-account": "other"}, name="b")
    wa, wb = wish(a), wish(b)
    assert isinstance(wa, Desired) and isinstance(wb, Desired)
    got = combine([(a, wa), (b, wb)])
    assert isinstance(got, Conflict) and "other" in got.message


def test_combine_ignores_terminating_consumers_when_live_ones_exist() -> None:
    old = pod({**BASE, "nats-tower.com/nats-tower-role": "old"}, name="old", deleting=True)
    new = pod({**BASE, "nats-tower.com/nats-tower-role": "new"}, name="new")
    wo, wn = wish(old), wish(new)
    assert isinstance(wo, Desired) and isinstance(wn, Desired)
    assert combine([(old, wo), (new, wn)]) == wn
    assert combine([(old, wo)]) == wo
    assert combine([]) is None


@pytest.mark.parametrize("value", ["app\n", "0\n", "a.b\n"])
def test_a_secret_name_with_a_trailing_newline_is_refused(value: str) -> None:
    # "$" in a regex also matches before a final newline: names are matched whole.
    assert not is_secret_name(value)
    verdict = desired_for(
        Consumer(
            kind="Pod",
            api_version="v1",
            namespace="default",
            name="p",
            uid="u",
            labels={
                "nats-tower.com/nats-tower-secret": value,
                "nats-tower.com/nats-tower-account": "app",
            },
        ),
        default_installation="O" + "A" * 55,
        allowed_installations=frozenset({"O" + "A" * 55}),
    )
    assert isinstance(verdict, Invalid) and verdict.reason == Reason.INVALID_SECRET_LABEL
