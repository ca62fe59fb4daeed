"""NATS Tower's collection definitions (pure): API rules with the token, fixed ids, unique
indexes, relations and required fields as DESIGN.md section 1 lists them."""

from __future__ import annotations

import re
from typing import Any

import pytest

from nats_tower_operator.towerserver import collections as tc

RULES = ("listRule", "viewRule", "createRule", "updateRule", "deleteRule")
#: The collections whose rules hold the API token (Tower's nats_auth_* and the stand-in's).
TOKEN_COLLECTIONS = (
    tc.OPERATORS,
    tc.LIMITS,
    tc.ACCOUNTS,
    tc.ACCESS,
    tc.SIGNING_KEYS,
    tc.USERS,
    tc.ACCOUNT_OPTIONS,
)


def _by_name(token: str = "tok") -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in tc.collections(token)}


def _fields(collection: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in collection["fields"]}


def _unique_indexes(collection: dict[str, Any]) -> set[frozenset[str]]:
    found = set()
    for index in collection["indexes"]:
        match = re.fullmatch(r"CREATE UNIQUE INDEX `\w+` ON `(\w+)` \((.*)\)", index)
        assert match, index
        assert match.group(1) == collection["name"]
        found.add(frozenset(col.strip(" `") for col in match.group(2).split(",")))
    return found


def test_every_collection_is_defined_once_and_relations_point_backwards() -> None:
    defined = tc.collections("tok")
    names = [c["name"] for c in defined]
    assert sorted(names) == sorted({*tc.TOWER_COLLECTIONS, tc.ACCOUNT_OPTIONS})
    seen = {"_pb_users_auth_"}
    for collection in defined:
        for field in collection["fields"]:
            if field["type"] == "relation":
                assert field["collectionId"] in seen, (collection["name"], field["name"])
        seen.add(collection["id"])


@pytest.mark.parametrize("name", TOKEN_COLLECTIONS)
def test_all_five_rules_require_the_token_or_a_logged_in_user(name: str) -> None:
    collection = _by_name("s3cret-token")[name]
    for rule in RULES:
        assert collection[rule].startswith(
            "@request.headers.x_token = 's3cret-token' || @request.auth.id != ''"
        ), (name, rule)


@pytest.mark.parametrize("name", TOKEN_COLLECTIONS)
def test_only_accounts_hide_the_sys_account(name: str) -> None:
    collection = _by_name()[name]
    for rule in RULES:
        assert ("name != 'SYS'" in collection[rule]) == (name == tc.ACCOUNTS)
        if name == tc.ACCOUNTS:
            assert collection[rule].endswith(" && name != 'SYS'")


def test_teams_need_a_logged_in_user_and_never_the_token() -> None:
    teams = _by_name("tok")[tc.TEAMS]
    for rule in RULES:
        assert "x_token" not in teams[rule] and "@request.auth.id != ''" in teams[rule]


def test_without_a_token_the_rules_admit_logged_in_users_only() -> None:
    # An empty X-Token header must never match an empty configured token.
    assert tc.api_rule("") == "@request.auth.id != ''"
    for collection in tc.collections(""):
        for rule in RULES:
            assert "x_token" not in collection[rule]


@pytest.mark.parametrize("token", ["it's", "back\\slash", "x' || '1' = '1", "'"])
def test_a_token_with_a_quote_or_backslash_is_refused(token: str) -> None:
    with pytest.raises(ValueError, match="quotes or backslashes"):
        tc.api_rule(token)
    with pytest.raises(ValueError):
        tc.collections(token)


def test_collection_and_field_ids_are_fixed_and_do_not_depend_on_the_token() -> None:
    first, second = tc.collections("one"), tc.collections("two")

    def ids(defined: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
        return [(c["id"], [f["id"] for f in c["fields"]]) for c in defined]

    assert ids(first) == ids(second)
    assert _by_name()[tc.USERS]["id"] == "nt_users"
    all_ids = [c["id"] for c in first] + [f["id"] for c in first for f in c["fields"]]
    assert len(all_ids) == len(set(all_ids))
    # PocketBase limits collection ids to 15 characters.
    assert all(len(c["id"]) <= 15 for c in first)


def test_unique_indexes_are_those_of_nats_tower() -> None:
    defined = _by_name()
    assert _unique_indexes(defined[tc.OPERATORS]) == {
        frozenset({"url"}),
        frozenset({"public_key"}),
    }
    assert _unique_indexes(defined[tc.ACCOUNTS]) == {
        frozenset({"name", "operator"}),
        frozenset({"public_key"}),
    }
    assert _unique_indexes(defined[tc.USERS]) == {
        frozenset({"name", "account"}),
        frozenset({"public_key"}),
    }
    assert frozenset({"role", "account"}) in _unique_indexes(defined[tc.SIGNING_KEYS])
    assert _unique_indexes(defined[tc.ACCESS]) == {frozenset({"account", "cluster", "namespace"})}


def test_required_fields_relations_and_cascades() -> None:
    defined = _by_name()
    required = {
        tc.OPERATORS: {"url"},
        tc.ACCOUNTS: {"name", "operator"},
        tc.USERS: {"name", "account"},
        tc.SIGNING_KEYS: {"role", "account"},
        tc.ACCESS: {"account", "cluster", "namespace"},
    }
    for name, expected in required.items():
        fields = _fields(defined[name])
        assert {f for f, spec in fields.items() if spec.get("required")} == expected, name

    cascades = {
        (tc.ACCOUNTS, "operator"): (tc.OPERATORS, True),
        (tc.USERS, "account"): (tc.ACCOUNTS, True),
        (tc.USERS, "signing_key"): (tc.SIGNING_KEYS, False),
        (tc.SIGNING_KEYS, "account"): (tc.ACCOUNTS, True),
        (tc.ACCESS, "account"): (tc.ACCOUNTS, True),
        (tc.ACCOUNTS, "limits"): (tc.LIMITS, False),
    }
    for (name, field_name), (target, cascade) in cascades.items():
        field = _fields(defined[name])[field_name]
        assert field["type"] == "relation" and field["maxSelect"] == 1
        assert field["collectionId"] == defined[target]["id"]
        assert field["cascadeDelete"] is cascade, (name, field_name)


def test_tower_collections_have_no_created_or_updated_fields() -> None:
    for name, collection in _by_name().items():
        if name.startswith("nats_auth_"):
            assert not {"created", "updated"} & set(_fields(collection)), name


def test_users_carry_the_generated_secrets_as_plain_text_fields() -> None:
    fields = _fields(_by_name()[tc.USERS])
    for name in ("public_key", "private_key", "seed", "jwt", "creds"):
        assert fields[name]["type"] == "text" and not fields[name]["required"]
    assert fields["bearer"]["type"] == "bool"
