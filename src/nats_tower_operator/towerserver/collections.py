"""NATS Tower's collections as PocketBase collection JSON (pure), for one API token.

The definitions follow NATS Tower's own (its Go collection setup): the same collections,
fields, required flags, relations with cascade deletes, unique indexes and API rules. The
API token is part of every rule (``@request.headers.x_token = '<token>' || ...``), so a
wrong token is never a 401: lists are empty, views/deletes 404, creates 400.

Every collection and field has a fixed id, so importing the definitions again (a restart
with a rotated token) only updates rules and never drops a column.

One collection is ours, not Tower's: ``standin_account_options`` holds the stand-in's
documented extension (a user JWT lifetime per account); Tower's own collections stay exact.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ACCESS",
    "ACCOUNTS",
    "ACCOUNT_OPTIONS",
    "LIMITS",
    "OPERATORS",
    "SIGNING_KEYS",
    "TEAMS",
    "TOWER_COLLECTIONS",
    "USERS",
    "api_rule",
    "collections",
]

OPERATORS = "nats_auth_operators"
LIMITS = "nats_auth_limits"
ACCOUNTS = "nats_auth_accounts"
ACCESS = "nats_auth_k8s_access"
SIGNING_KEYS = "nats_auth_signing_keys"
USERS = "nats_auth_users"
TEAMS = "teams"
ACCOUNT_OPTIONS = "standin_account_options"

#: Tower's collections, in creation order (relations point backwards only).
TOWER_COLLECTIONS = (TEAMS, OPERATORS, LIMITS, ACCOUNTS, ACCESS, SIGNING_KEYS, USERS)

#: PocketBase's built-in auth collection (team members).
_PB_USERS_ID = "_pb_users_auth_"

_IDS = {
    TEAMS: "nt_teams",
    OPERATORS: "nt_operators",
    LIMITS: "nt_limits",
    ACCOUNTS: "nt_accounts",
    ACCESS: "nt_k8s_access",
    SIGNING_KEYS: "nt_signing_keys",
    USERS: "nt_users",
    ACCOUNT_OPTIONS: "nt_standin_opts",
}

_TEAMS_RULE = " && (teams:length = 0 || teams.members.id ?= @request.auth.id)"
_ACCOUNT_TEAMS_RULE = (
    " && (account.teams:length = 0 || account.teams.members.id ?= @request.auth.id)"
)


def api_rule(token: str) -> str:
    """Tower's base API rule: the X-Token header or any authenticated PocketBase user."""
    if "'" in token or "\\" in token:
        # Tower pastes the token into the rule unescaped; such a token breaks its rules.
        raise ValueError("the API token must not contain quotes or backslashes")
    if not token:
        return "@request.auth.id != ''"
    return f"@request.headers.x_token = '{token}' || @request.auth.id != ''"


def _text(cid: str, name: str, *, required: bool = False, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"{cid}_{name}",
        "name": name,
        "type": "text",
        "required": required,
        **extra,
    }


def _relation(
    cid: str,
    name: str,
    target: str,
    *,
    required: bool = True,
    cascade: bool = True,
    max_select: int = 1,
) -> dict[str, Any]:
    return {
        "id": f"{cid}_{name}",
        "name": name,
        "type": "relation",
        "collectionId": target,
        "required": required,
        "cascadeDelete": cascade,
        "maxSelect": max_select,
        "minSelect": 0,
    }


def _typed(cid: str, name: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {"id": f"{cid}_{name}", "name": name, "type": kind, **extra}


def _keys(cid: str, *names: str) -> list[dict[str, Any]]:
    return [_text(cid, name) for name in names]


def _collection(
    name: str, fields: list[dict[str, Any]], indexes: list[str], rule: str | None
) -> dict[str, Any]:
    return {
        "id": _IDS[name],
        "name": name,
        "type": "base",
        "system": False,
        "listRule": rule,
        "viewRule": rule,
        "createRule": rule,
        "updateRule": rule,
        "deleteRule": rule,
        "fields": fields,
        "indexes": indexes,
    }


def _unique(name: str, table: str, *columns: str) -> str:
    return f"CREATE UNIQUE INDEX `{name}` ON `{table}` ({', '.join(f'`{c}`' for c in columns)})"


def collections(token: str) -> list[dict[str, Any]]:
    """Every collection (Tower's plus the stand-in's option collection) for ``token``."""
    rule = api_rule(token)
    c = _IDS
    teams_auth = "@request.auth.id != ''"
    teams_member = teams_auth + " && (members:length = 0 || members.id = @request.auth.id)"
    teams = _collection(
        TEAMS,
        [
            _text(c[TEAMS], "name", required=True, max=200),
            _typed(c[TEAMS], "external", "bool"),
            _text(c[TEAMS], "external_id", max=200),
            _relation(
                c[TEAMS],
                "members",
                _PB_USERS_ID,
                required=False,
                cascade=False,
                max_select=2**31 - 1,
            ),
            _typed(c[TEAMS], "created", "autodate", onCreate=True, onUpdate=False),
            _typed(c[TEAMS], "updated", "autodate", onCreate=True, onUpdate=True),
        ],
        [],
        teams_auth,
    )
    teams["updateRule"] = teams["deleteRule"] = teams_member
    teams_relation = _relation(c[OPERATORS], "teams", c[TEAMS], required=False, cascade=False)
    teams_relation["maxSelect"] = 10000
    operators = _collection(
        OPERATORS,
        [
            _text(c[OPERATORS], "url", required=True, presentable=True),
            _text(c[OPERATORS], "description"),
            *_keys(c[OPERATORS], "public_key", "private_key", "seed", "jwt"),
            *_keys(c[OPERATORS], "sign_public_key", "sign_private_key", "sign_seed"),
            teams_relation,
        ],
        [
            _unique("nats_operators_unique_url", OPERATORS, "url"),
            _unique("nats_operators_unique_public_key", OPERATORS, "public_key"),
        ],
        rule + _TEAMS_RULE,
    )
    limits = _collection(
        LIMITS,
        [
            _text(c[LIMITS], "name", required=True),
            _relation(c[LIMITS], "operator", c[OPERATORS]),
            _typed(c[LIMITS], "type", "select", required=True, maxSelect=1, values=["account"]),
            _typed(c[LIMITS], "max_connections", "number", required=True, onlyInt=True),
            _typed(c[LIMITS], "jetstream_max_memory", "number", onlyInt=True),
            _typed(c[LIMITS], "jetstream_max_disk", "number", onlyInt=True),
            _typed(c[LIMITS], "default", "bool"),
        ],
        [_unique("nats_auth_limits_unique_name_operator", LIMITS, "name", "operator")],
        rule,
    )
    account_teams = _relation(c[ACCOUNTS], "teams", c[TEAMS], required=False, cascade=False)
    account_teams["maxSelect"] = 10000
    accounts = _collection(
        ACCOUNTS,
        [
            _text(c[ACCOUNTS], "name", required=True),
            _text(c[ACCOUNTS], "description"),
            _relation(c[ACCOUNTS], "operator", c[OPERATORS]),
            *_keys(c[ACCOUNTS], "public_key", "private_key", "seed", "jwt"),
            *_keys(c[ACCOUNTS], "sign_public_key", "sign_private_key", "sign_seed"),
            _relation(c[ACCOUNTS], "limits", c[LIMITS], required=False, cascade=False),
            account_teams,
        ],
        [
            _unique("nats_accounts_unique_name_operator", ACCOUNTS, "name", "operator"),
            _unique("nats_accounts_unique_public_key", ACCOUNTS, "public_key"),
        ],
        rule + _TEAMS_RULE + " && name != 'SYS'",
    )
    access = _collection(
        ACCESS,
        [
            _relation(c[ACCESS], "account", c[ACCOUNTS]),
            _text(c[ACCESS], "cluster", required=True),
            _text(c[ACCESS], "namespace", required=True),
        ],
        [
            _unique(
                "nats_auth_k8s_access_unique_acc_cluster_ns",
                ACCESS,
                "account",
                "cluster",
                "namespace",
            )
        ],
        rule + _ACCOUNT_TEAMS_RULE,
    )
    signing_keys = _collection(
        SIGNING_KEYS,
        [
            _text(c[SIGNING_KEYS], "role", required=True),
            _relation(c[SIGNING_KEYS], "account", c[ACCOUNTS]),
            _typed(c[SIGNING_KEYS], "publish", "json"),
            _typed(c[SIGNING_KEYS], "subscribe", "json"),
            *_keys(c[SIGNING_KEYS], "public_key", "private_key", "seed"),
        ],
        [
            _unique("nats_signing_keys_unique_role_account", SIGNING_KEYS, "role", "account"),
            _unique("nats_signing_keys_unique_public_key", SIGNING_KEYS, "public_key"),
        ],
        rule,
    )
    users = _collection(
        USERS,
        [
            _text(c[USERS], "name", required=True),
            _text(c[USERS], "description"),
            _relation(c[USERS], "account", c[ACCOUNTS]),
            _relation(c[USERS], "signing_key", c[SIGNING_KEYS], required=False, cascade=False),
            _typed(c[USERS], "bearer", "bool"),
            *_keys(c[USERS], "public_key", "private_key", "seed", "jwt", "creds"),
        ],
        [
            _unique("nats_users_unique_name_account", USERS, "name", "account"),
            _unique("nats_users_unique_public_key", USERS, "public_key"),
        ],
        rule,
    )
    options = _collection(
        ACCOUNT_OPTIONS,
        [
            _relation(c[ACCOUNT_OPTIONS], "account", c[ACCOUNTS]),
            _typed(c[ACCOUNT_OPTIONS], "user_jwt_ttl", "number", onlyInt=True, min=0),
        ],
        [_unique("standin_account_options_unique_account", ACCOUNT_OPTIONS, "account")],
        rule,
    )
    return [teams, operators, limits, accounts, access, signing_keys, users, options]
