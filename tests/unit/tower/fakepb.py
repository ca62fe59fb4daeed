"""A small fake of NATS Tower's PocketBase records API, served via ``httpx.MockTransport``.

Only for tests of the client's own transport policy (retries, backoff, Retry-After,
timeouts, POST retry safety, token re-reading, redaction, paging loops): everything about
PocketBase's and Tower's semantics is tested against the real PocketBase (``tests/tower``,
``tests/differential``). Where it answers, the fake answers like the real server (checked
against it in ``test_fakepb_faithful.py``):

* the API token is an API rule, never a 401: with a wrong or missing ``X-Token`` a list is
  200 with no items, a view/PATCH/DELETE 404, a create 400 "Failed to create record." with
  empty ``data``;
* error bodies are ``{"status", "message", "data"}``; record ids are 15 ``[a-z0-9]``;
* filters are read like fexpr (a literal ends at the first quote not preceded by a
  backslash; only ``\\<quote>`` is unescaped), ``&&`` binds tighter than ``||`` (they become
  SQL), and a filter over 3,500 UTF-8 bytes or 200 comparisons is a 400;
* ``perPage`` is capped at 1000; a unique index violation names every field of the index.

Its fexpr reader is written independently of the client's ``filter`` module.
"""

from __future__ import annotations

import base64
import json
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

TOKEN = "tok-S3CR3T-value-0123456789"

MAX_FILTER_BYTES = 3500
MAX_COMPARISONS = 200
MAX_PER_PAGE = 1000

#: Unique indexes (NATS Tower's) of the collections the tests create records in.
UNIQUE: dict[str, tuple[tuple[str, ...], ...]] = {
    "nats_auth_accounts": (("name", "operator"),),
    "nats_auth_users": (("name", "account"),),
    "nats_auth_k8s_access": (("account", "cluster", "namespace"),),
}

NOT_FOUND = "The requested resource wasn't found."
CREATE_FAILED = "Failed to create record."
BAD_REQUEST = "Something went wrong while processing your request."

Record = dict[str, Any]

# --------------------------------------------------------------------------- fexpr


class FilterError(ValueError):
    """A filter PocketBase would answer with 400."""


Node = tuple[Any, ...]
Token = tuple[str, str]


def scan_text(text: str, start: int) -> tuple[str, int]:
    """The value of the quoted literal at ``text[start]`` and the index after it (fexpr)."""
    quote_char = text[start]
    previous = ""
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == quote_char and previous != "\\":
            body = text[start + 1 : i]
            return body.replace("\\" + quote_char, quote_char), i + 1
        previous = ch
        i += 1
    raise FilterError("unterminated literal")


def tokenize(text: str) -> list[Token]:
    """fexpr tokens of ``text``: ident, op, text, join, ``(`` and ``)``."""
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "()":
            tokens.append((ch, ch))
            i += 1
        elif text.startswith(("&&", "||"), i):
            tokens.append(("join", text[i : i + 2]))
            i += 2
        elif text.startswith(("!=", "!~"), i):
            tokens.append(("op", text[i : i + 2]))
            i += 2
        elif ch in "=~":
            tokens.append(("op", ch))
            i += 1
        elif ch in "'\"":
            value, i = scan_text(text, i)
            tokens.append(("text", value))
        elif ch.isalpha() or ch == "_":
            j = i
            while j < len(text) and (text[j].isalnum() or text[j] in "_."):
                j += 1
            tokens.append(("ident", text[i:j]))
            i = j
        else:
            raise FilterError(f"unexpected character {ch!r}")
    return tokens


def parse(text: str) -> Node:
    """A filter as a tree; ``&&`` binds tighter than ``||`` (PocketBase emits SQL)."""
    if len(text.encode()) > MAX_FILTER_BYTES:
        raise FilterError("filter too long")
    tokens = tokenize(text)
    if sum(1 for kind, _ in tokens if kind == "op") > MAX_COMPARISONS:
        raise FilterError("too many comparisons")
    pos = 0

    def peek() -> Token | None:
        return tokens[pos] if pos < len(tokens) else None

    def disjunction() -> Node:
        nonlocal pos
        node = conjunction()
        while peek() == ("join", "||"):
            pos += 1
            node = ("or", node, conjunction())
        return node

    def conjunction() -> Node:
        nonlocal pos
        node = term()
        while peek() == ("join", "&&"):
            pos += 1
            node = ("and", node, term())
        return node

    def term() -> Node:
        nonlocal pos
        token = peek()
        if token == ("(", "("):
            pos += 1
            node = disjunction()
            if peek() != (")", ")"):
                raise FilterError("missing )")
            pos += 1
            return node
        if token is None or token[0] != "ident" or pos + 3 > len(tokens):
            raise FilterError("expected a comparison")
        (_, name), (op_kind, op), (lit_kind, lit) = tokens[pos : pos + 3]
        if op_kind != "op" or lit_kind != "text":
            raise FilterError("bad comparison")
        pos += 3
        return ("cmp", name, op, lit)

    node = disjunction()
    if pos != len(tokens):
        raise FilterError("trailing tokens")
    return node


def evaluate(node: Node, record: Record) -> bool:
    """Whether ``record`` matches (``~`` is a case-insensitive "contains")."""
    kind = node[0]
    if kind == "and":
        return evaluate(node[1], record) and evaluate(node[2], record)
    if kind == "or":
        return evaluate(node[1], record) or evaluate(node[2], record)
    _, name, op, literal = node
    value = str(record.get(name, ""))
    if op == "=":
        return bool(value == literal)
    if op == "!=":
        return bool(value != literal)
    contains = str(literal).lower() in value.lower()
    return contains if op == "~" else not contains


# --------------------------------------------------------------------------- server


def record_id() -> str:
    """A PocketBase record id: 15 characters of ``[a-z0-9]``."""
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(15))


def _b32(n: int) -> str:
    return "".join(secrets.choice(string.ascii_uppercase + "234567") for _ in range(n))


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def pb_error(status: int, message: str, data: dict[str, Any] | None = None) -> httpx.Response:
    """An error answer shaped like PocketBase's."""
    return httpx.Response(status, json={"data": data or {}, "message": message, "status": status})


Action = httpx.Response | BaseException | Callable[[httpx.Request], httpx.Response]


@dataclass
class Fault:
    """Replace (or, with ``after``, follow) a matching request's answer."""

    action: Action
    method: str | None = None
    collection: str | None = None
    times: int = 1
    after: bool = False  # process the request first, then answer with the fault


@dataclass
class Seen:
    method: str
    collection: str
    params: dict[str, str]
    token: str | None


@dataclass
class FakeTower:
    token: str = TOKEN
    records: dict[str, dict[str, Record]] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)

    # -- seeding

    def add(self, collection: str, **fields: Any) -> Record:
        record = {"id": record_id(), **fields}
        self.records.setdefault(collection, {})[record["id"]] = record
        return record

    def add_installation(self, url: str = "nats://a:4222, nats://b:4222") -> Record:
        return self.add("nats_auth_operators", public_key="O" + _b32(55), url=url)

    def add_account(self, operator_id: str, name: str) -> Record:
        return self.add(
            "nats_auth_accounts", operator=operator_id, name=name, public_key="A" + _b32(55)
        )

    def items(self, collection: str) -> list[Record]:
        return list(self.records.get(collection, {}).values())

    def count(self, method: str, collection: str) -> int:
        return sum(1 for s in self.seen if s.method == method and s.collection == collection)

    def fail(
        self,
        action: Action,
        *,
        method: str | None = None,
        collection: str | None = None,
        times: int = 1,
        after: bool = False,
    ) -> None:
        self.faults.append(Fault(action, method, collection, times, after))

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    # -- request handling

    def _take_fault(self, method: str, collection: str) -> Fault | None:
        for fault in self.faults:
            if (
                fault.times > 0
                and fault.method in (None, method)
                and fault.collection in (None, collection)
            ):
                fault.times -= 1
                return fault
        return None

    def handle(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.path.strip("/").split("/")
        if len(parts) not in (4, 5) or parts[:2] != ["api", "collections"] or parts[3] != "records":
            return pb_error(404, NOT_FOUND)
        collection = parts[2]
        record = parts[4] if len(parts) == 5 else None
        body = json.loads(request.content) if request.content else None
        token = request.headers.get("X-Token")
        self.seen.append(Seen(request.method, collection, dict(request.url.params), token))
        fault = self._take_fault(request.method, collection)
        if fault is not None and not fault.after:
            return self._apply(fault, request)
        response = self._route(request, collection, record, body, allowed=token == self.token)
        if fault is not None:
            return self._apply(fault, request)
        return response

    @staticmethod
    def _apply(fault: Fault, request: httpx.Request) -> httpx.Response:
        action = fault.action
        if isinstance(action, BaseException):
            raise action
        if isinstance(action, httpx.Response):
            return action
        return action(request)

    def _route(
        self, request: httpx.Request, collection: str, rid: str | None, body: Any, *, allowed: bool
    ) -> httpx.Response:
        # Every collection's rules require the token: a record the caller may not see
        # does not exist for it.
        table = self.records.setdefault(collection, {}) if allowed else {}
        fields = request.url.params.get("fields")
        if rid is None:
            if request.method == "GET":
                return self._list(table, request.url.params)
            if not allowed:
                return pb_error(400, CREATE_FAILED)
            return self._create(collection, table, body, fields)
        record = table.get(rid)
        if record is None:
            return pb_error(404, NOT_FOUND)
        if request.method == "DELETE":
            del table[rid]
            return httpx.Response(204)
        if request.method == "PATCH":
            record.update(body or {})
        return httpx.Response(200, json=_project(record, fields))

    def _list(self, table: dict[str, Record], params: httpx.QueryParams) -> httpx.Response:
        try:
            node = parse(params["filter"]) if params.get("filter") else None
        except FilterError:
            return pb_error(400, BAD_REQUEST)
        page = max(1, int(params.get("page", "1")))
        per_page = min(max(1, int(params.get("perPage", "30"))), MAX_PER_PAGE)
        matched = [r for r in table.values() if node is None or evaluate(node, r)]
        total_pages = (len(matched) + per_page - 1) // per_page
        skip_total = params.get("skipTotal") in ("1", "true")
        return httpx.Response(
            200,
            json={
                "items": [
                    _project(r, params.get("fields"))
                    for r in matched[(page - 1) * per_page : page * per_page]
                ],
                "page": page,
                "perPage": per_page,
                "totalItems": -1 if skip_total else len(matched),
                "totalPages": -1 if skip_total else total_pages,
            },
        )

    def _create(
        self, collection: str, table: dict[str, Record], body: Record, fields: str | None
    ) -> httpx.Response:
        record: Record = {"id": record_id(), **body}
        if collection == "nats_auth_users":  # Tower's hook issues the user's keys
            record.update(_user_secrets())
            record.setdefault("signing_key", "")
            record.setdefault("description", "")
        for index in UNIQUE.get(collection, ()):
            if any(all(r.get(k) == record.get(k) for k in index) for r in table.values()):
                code = {"code": "validation_not_unique", "message": "Value must be unique."}
                return pb_error(400, CREATE_FAILED, {k: dict(code) for k in index})
        table[record["id"]] = record
        return httpx.Response(200, json=_project(record, fields))


def _project(record: Record, fields: str | None) -> Record:
    if not fields:
        return dict(record)
    wanted = fields.split(",")
    return {k: v for k, v in record.items() if k in wanted}


def _user_secrets() -> Record:
    seed = "SU" + _b32(56)
    public_key = "U" + _b32(55)
    claims = {"sub": public_key, "iat": int(time.time()), "nats": {"type": "user"}}
    jwt = f"{_b64({'typ': 'JWT', 'alg': 'ed25519-nkey'})}.{_b64(claims)}.c2lnbmF0dXJl"
    creds = (
        f"-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n"
        f"-----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
    )
    return {"public_key": public_key, "seed": seed, "jwt": jwt, "creds": creds}
