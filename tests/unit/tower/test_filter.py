"""Filter building with PocketBase's fexpr semantics (only ``\\'`` is an escape).

Values are checked with an fexpr reader written independently of the client's filter
module (``fakepb.tokenize``/``parse``, a port of fexpr's scanner); the real PocketBase
reads the same filters in ``tests/differential``.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from nats_tower_operator.tower import FilterTooLong, FilterValueError, and_, eq, like, or_
from nats_tower_operator.tower.filter import (
    MAX_COMPARISONS,
    MAX_FILTER_BYTES,
    any_of_chunks,
    check_limits,
    expressible,
    quote,
    unquote,
)

from .fakepb import FilterError, evaluate, parse, tokenize

HOSTILE = ["'", '"', "\\", "||", ")", "&&", "' || id != '", "\\' || 1=1 || '", "(x", "~", "\\'"]
raw_values = st.text() | st.sampled_from(HOSTILE) | st.lists(st.sampled_from(HOSTILE)).map("".join)
#: Every value a filter literal can hold: all but those ending in a backslash.
values = raw_values.filter(expressible)
ascii_values = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=600)
quoted_names = st.lists(
    st.sampled_from(["a", "'", '"', "\\", "x", "/", "-"]), min_size=1, max_size=600
).map("".join)

BASE = "account = 'abcdefghijklmno'"

relaxed = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_quote_escapes_only_the_single_quote() -> None:
    assert quote("it's") == "'it\\'s'"
    assert quote("a\\b") == "'a\\b'"  # other backslashes are kept as they are
    assert quote("\\'") == "'\\\\''"
    assert quote('say "hi"') == "'say \"hi\"'"
    assert quote("") == "''"


@pytest.mark.parametrize("value", ["\\", "a\\", "it's\\", "\\\\", "x\\'\\"])
def test_a_value_ending_in_a_backslash_is_inexpressible(value: str) -> None:
    assert not expressible(value)
    with pytest.raises(FilterValueError):
        quote(value)
    with pytest.raises(FilterValueError):
        eq("name", value)
    with pytest.raises(FilterValueError):
        list(any_of_chunks(BASE, "name", ["ok", value]))


def test_quote_rejects_non_strings() -> None:
    with pytest.raises(TypeError):
        quote(1)  # type: ignore[arg-type]


@given(values)
@example("\\'")
@example("a\\'b")
@example("''\\x")
@relaxed
def test_unquote_inverts_quote_for_every_expressible_value(value: str) -> None:
    assert unquote(quote(value)) == value


@given(raw_values.filter(lambda v: not expressible(v)))
@relaxed
def test_inexpressible_values_are_refused_never_mangled(value: str) -> None:
    with pytest.raises(FilterValueError):
        quote(value)


@given(values)
@relaxed
def test_a_value_is_one_fexpr_literal(value: str) -> None:
    assert tokenize(eq("name", value)) == [("ident", "name"), ("op", "="), ("text", value)]
    assert tokenize(like("name", value)) == [("ident", "name"), ("op", "~"), ("text", value)]


@given(values, values, values)
@relaxed
def test_hostile_values_cannot_widen_a_query(a: str, b: str, c: str) -> None:
    expr = and_(eq("account", a), or_(eq("name", b), eq("name", c)))
    records = [
        {"account": a, "name": b},
        {"account": a, "name": c},
        {"account": a + "x", "name": b},
        {"account": "other", "name": "other"},
        {"account": a, "name": "zzz-not-" + b + c},
    ]
    try:
        node = parse(expr)
    except FilterError:  # over the limits with huge generated values: not the point here
        assert len(expr.encode()) > MAX_FILTER_BYTES
        return
    for record in records:
        expected = record["account"] == a and record["name"] in (b, c)
        assert evaluate(node, record) is expected


def test_builders_parenthesise_so_precedence_never_matters() -> None:
    # PocketBase turns && and || into SQL AND/OR (AND binds tighter); every mixed
    # expression the builders make is parenthesised, so it reads the same either way.
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


@pytest.mark.parametrize("bad", ["", "'", "abc", "'a'b'", "'a\\'", "a'"])
def test_unquote_rejects_malformed(bad: str) -> None:
    with pytest.raises(ValueError):
        unquote(bad)


# ------------------------------------------------------------------ limits


def test_check_limits_at_and_over_the_limits() -> None:
    at_length = "name = '" + "a" * (MAX_FILTER_BYTES - 9) + "'"
    assert len(at_length) == MAX_FILTER_BYTES
    assert check_limits(at_length) == at_length
    with pytest.raises(FilterTooLong):
        check_limits(at_length[:-1] + "a'")
    at_count = " || ".join(["n = 'x'"] * MAX_COMPARISONS)
    assert check_limits(at_count) == at_count
    with pytest.raises(FilterTooLong):
        check_limits(at_count + " || n = 'x'")
    # operators inside literals are not comparisons
    assert check_limits("n = '" + "= ~ != !~ " * 300 + "'")


def test_check_limits_counts_utf8_bytes_like_pocketbase() -> None:
    expr = "name = '" + "é" * 1800 + "'"  # 1,809 characters, 3,609 bytes
    with pytest.raises(FilterTooLong):
        check_limits(expr)


def _assert_chunks(
    chunks: list[tuple[str, list[str]]], names: list[str], *, max_values: int | None
) -> None:
    assert [v for _, chunk in chunks for v in chunk] == list(dict.fromkeys(names))
    for expr, chunk in chunks:
        assert len(expr) <= MAX_FILTER_BYTES
        assert check_limits(expr) == expr
        tokens = tokenize(expr)
        assert sum(1 for kind, _ in tokens if kind == "op") <= MAX_COMPARISONS
        assert max_values is None or len(chunk) <= max_values
        # base && (name = v1 || ...): the literals are exactly the chunk's values
        assert [v for kind, v in tokens if kind == "text"] == ["abcdefghijklmno", *chunk]
        node = parse(expr)  # the independent reader accepts it within the limits
        for value in chunk:
            assert evaluate(node, {"account": "abcdefghijklmno", "name": value})
        assert not evaluate(node, {"account": "abcdefghijklmnp", "name": chunk[0]})


@given(st.lists(ascii_values.filter(expressible) | quoted_names.filter(expressible), max_size=60))
@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
def test_any_of_chunks_stays_within_the_limits_and_yields_every_value_once(
    names: list[str],
) -> None:
    _assert_chunks(list(any_of_chunks(BASE, "name", names)), names, max_values=None)
    _assert_chunks(list(any_of_chunks(BASE, "name", names, max_values=7)), names, max_values=7)


@given(st.lists(st.sampled_from(["a", "b", "'", "x"]).map(lambda c: c * 3), max_size=500))
@relaxed
def test_any_of_chunks_with_many_short_values_respects_the_comparison_limit(
    names: list[str],
) -> None:
    _assert_chunks(list(any_of_chunks(BASE, "name", names)), names, max_values=None)


def test_any_of_chunks_many_distinct_short_values() -> None:
    names = [f"n{i}" for i in range(1000)]
    chunks = list(any_of_chunks(BASE, "name", names))
    _assert_chunks(chunks, names, max_values=None)
    assert max(len(c) for _, c in chunks) == MAX_COMPARISONS - 1  # + the base's comparison


def test_any_of_chunks_with_nothing_yields_nothing() -> None:
    assert list(any_of_chunks(BASE, "name", [])) == []


def test_a_value_too_long_for_any_filter_is_refused() -> None:
    with pytest.raises(FilterTooLong):
        list(any_of_chunks(BASE, "name", ["x" * MAX_FILTER_BYTES]))


def test_any_of_chunks_with_non_ascii_values_stays_within_3500_bytes() -> None:
    names = [f"{i:03d}" + "é" * 597 for i in range(10)]
    for expr, _ in any_of_chunks(BASE, "name", names):
        assert len(expr.encode()) <= MAX_FILTER_BYTES
