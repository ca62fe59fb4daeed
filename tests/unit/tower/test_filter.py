"""Filter building: values can never change the expression (checked with an independent parser)."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from nats_tower_operator.tower import and_, eq, like, or_, quote, unquote

from .fakepb import evaluate, parse

HOSTILE = ["'", '"', "\\", "||", ")", "&&", "' || id != '", "\\' || 1=1 || '", "a\\", "(x", "~"]
values = st.text() | st.sampled_from(HOSTILE) | st.lists(st.sampled_from(HOSTILE)).map("".join)


def test_quote_escapes_backslash_then_quote() -> None:
    assert quote("it's") == "'it\\'s'"
    assert quote("a\\b") == "'a\\\\b'"
    assert quote("a\\") == "'a\\\\'"
    assert quote('say "hi"') == "'say \"hi\"'"


def test_quote_rejects_non_strings() -> None:
    with pytest.raises(TypeError):
        quote(1)  # type: ignore[arg-type]


@given(values)
@example("\\'")
def test_quote_round_trips(value: str) -> None:
    assert unquote(quote(value)) == value


@given(values)
def test_value_stays_one_literal(value: str) -> None:
    assert parse(eq("name", value)) == ("cmp", "name", "=", value)
    assert parse(like("name", value)) == ("cmp", "name", "~", value)


@given(values, values, values)
def test_hostile_values_cannot_widen_a_query(a: str, b: str, c: str) -> None:
    expr = and_(eq("account", a), or_(eq("name", b), eq("name", c)))
    records = [
        {"account": a, "name": b},
        {"account": a, "name": c},
        {"account": a + "x", "name": b},
        {"account": "other", "name": "other"},
        {"account": a, "name": "zzz-not-" + b + c},
    ]
    node = parse(expr)
    for record in records:
        expected = record["account"] == a and record["name"] in (b, c)
        assert evaluate(node, record) is expected


def test_builders_group_for_left_to_right_joins() -> None:
    # PocketBase joins left to right, so an OR inside an AND needs parentheses.
    expr = and_(eq("a", "1"), or_(eq("b", "2"), eq("b", "3")))
    assert expr == "a = '1' && (b = '2' || b = '3')"
    assert and_(eq("a", "1")) == "a = '1'"
    assert or_(eq("a", "1")) == "a = '1'"
    # a raw part with a top-level OR gets wrapped; one inside quotes does not count
    assert and_("x = '1' || x = '2'", eq("y", "||")) == "(x = '1' || x = '2') && y = '||'"
    assert (
        or_(and_(eq("a", "1"), eq("b", "2")), eq("c", "3")) == "((a = '1' && b = '2') || c = '3')"
    )
    record = {"a": "0", "b": "2", "c": "3"}
    assert evaluate(parse(or_(and_(eq("a", "1"), eq("b", "2")), eq("c", "3"))), record) is True
    assert evaluate(parse(and_(eq("a", "1"), or_(eq("b", "2"), eq("c", "3")))), record) is False


@pytest.mark.parametrize("field", ["", "a b", "a=1", "name'", "1abc", "a||b", "a.", "(a)"])
def test_field_names_are_checked(field: str) -> None:
    with pytest.raises(ValueError):
        eq(field, "x")


def test_empty_joins_are_errors() -> None:
    with pytest.raises(ValueError):
        or_()
    with pytest.raises(ValueError):
        and_()


@pytest.mark.parametrize("bad", ["", "'", "abc", "'a'b'", "'a\\'"])
def test_unquote_rejects_malformed(bad: str) -> None:
    with pytest.raises(ValueError):
        unquote(bad)
