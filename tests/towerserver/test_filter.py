"""PocketBase filter parsing: values round-trip, SQL is parameterised, bad input is a 400."""

from __future__ import annotations

import sqlite3
from importlib import resources

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nats_tower_operator.towerserver.filter import (
    FilterError,
    SortError,
    compile_filter,
    compile_sort,
    quote,
)
from nats_tower_operator.towerserver.model import USERS, query_schema

SCHEMA = query_schema(USERS)
NASTY = st.text(alphabet=st.sampled_from(list("ab'\"\\|&)(= ~!%_\n")), max_size=30) | st.text(
    max_size=30
)


def _double_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@settings(max_examples=300, deadline=None)
@given(NASTY)
def test_single_quoted_value_round_trips(value: str) -> None:
    compiled = compile_filter(f"name = {quote(value)}", SCHEMA)
    assert compiled is not None
    assert compiled.params == (value,)


@settings(max_examples=300, deadline=None)
@given(NASTY)
def test_double_quoted_value_round_trips(value: str) -> None:
    compiled = compile_filter(f"name != {_double_quote(value)} && account = 'x'", SCHEMA)
    assert compiled is not None
    assert compiled.params == (value, "x")


def test_unescaped_backslash_is_kept_literally() -> None:
    compiled = compile_filter(r"name = 'a\b'", SCHEMA)
    assert compiled is not None and compiled.params == ("a\\b",)


@pytest.mark.parametrize(
    ("text", "params"),
    [
        ("name = 'a' && (account = 'b' || description ~ 'c')", ("a", "b", "%c%")),
        ("name !~ '50%_'", ("%50\\%\\_%",)),
        ("signing_key = null", ()),
        ("created >= '2024-01-01' && name <= 'z'", ("2024-01-01", "z")),
        ("account.name = 'orders'", ("orders",)),
        ("  ", None),
    ],
)
def test_valid_filters(text: str, params: tuple[object, ...] | None) -> None:
    compiled = compile_filter(text, SCHEMA)
    if params is None:
        assert compiled is None
    else:
        assert compiled is not None and compiled.params == params


@pytest.mark.parametrize(
    "text",
    [
        "name = 'unterminated",
        "name = ",
        "name 'x'",
        "(name = 'x'",
        "name = 'x')",
        "name = 'x' &&",
        "name = 'x' || || name = 'y'",
        "sign_seed = 'x'",  # not a public field
        "seed.x = 'y'",
        "account.sign_seed ~ 'SA'",  # secret of a related record
        "name = 'x'; DROP TABLE nats_auth_users",
        "name == 'x'",
        "@request.auth.id = ''",
        "(" * 100 + "name = 'x'" + ")" * 100,
        "name = 'x' || " * 300 + "name = 'y'",
        "name = 99999999999999999999999",
    ],
)
def test_malformed_filters_raise_filter_error(text: str) -> None:
    with pytest.raises(FilterError):
        compile_filter(text, SCHEMA)


def test_sort_compiles_known_fields_only() -> None:
    assert compile_sort("-created,name", SCHEMA) == '"created" DESC, "name" ASC'
    with pytest.raises(SortError):
        compile_sort("seed;drop", SCHEMA)


@pytest.fixture(scope="module")
def db() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    schema = resources.files("nats_tower_operator.towerserver").joinpath("schema.sql")
    conn.executescript(schema.read_text())
    conn.execute("INSERT INTO nats_auth_operators VALUES ('o','op','O1','','','a','s','',1,1)")
    conn.execute("INSERT INTO nats_auth_accounts VALUES ('a','o','acc','A1','j',0,'s',1,1)")
    for i, name in enumerate(["plain", "it's", 'say "hi"', "back\\slash", "x || y", "p)"]):
        conn.execute(
            "INSERT INTO nats_auth_users VALUES (?, 'a', ?, '', '', ?, 'j', 's', 'c', 1, 1)",
            (f"u{i}", name, f"U{i}"),
        )
    return conn


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_any_text_is_a_filter_error_or_runs(db: sqlite3.Connection, text: str) -> None:
    try:
        compiled = compile_filter(text, SCHEMA)
    except FilterError:
        return
    where = compiled.sql if compiled is not None else "1=1"
    params = compiled.params if compiled is not None else ()
    db.execute(f"SELECT id FROM nats_auth_users WHERE {where}", params).fetchall()


@settings(max_examples=200, deadline=None)
@given(NASTY)
def test_equality_filter_matches_only_that_exact_name(db: sqlite3.Connection, value: str) -> None:
    compiled = compile_filter(f"name = {quote(value)}", SCHEMA)
    assert compiled is not None
    rows = db.execute(
        f"SELECT name FROM nats_auth_users WHERE {compiled.sql}", compiled.params
    ).fetchall()
    assert all(name == value for (name,) in rows)
