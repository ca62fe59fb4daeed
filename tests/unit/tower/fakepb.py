"""An in-memory fake of NATS Tower's PocketBase records API, served via httpx.MockTransport.

Independent of the client's own filter module: it has its own small filter parser
(``=``, ``!=``, ``~``, ``!~``, ``&&``, ``||``, parentheses, quoted literals with backslash
escapes) and joins left to right without precedence, like PocketBase does, so a filter
whose meaning depends on precedence would be caught.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote as url_unquote

import httpx

TOKEN = "tok-S3CR3T-value-0123456789"

UNIQUE: dict[str, tuple[str, ...]] = {
    "nats_auth_operators": ("public_key",),
    "nats_auth_accounts": ("operator", "name"),
    "nats_auth_users": ("account", "name"),
    "nats_auth_signing_keys": ("account", "role"),
    "nats_auth_k8s_access": ("account", "cluster", "namespace"),
}

# --------------------------------------------------------------------------- filter


class FilterError(ValueError):
    pass


Node = tuple[Any, ...]


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in " \t\n":
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
            quote_char, i, out = ch, i + 1, []
            while True:
                if i >= len(text):
                    raise FilterError("unterminated literal")
                c = text[i]
                if c == "\\":
                    if i + 1 >= len(text):
                        raise FilterError("dangling backslash")
                    out.append(text[i + 1])
                    i += 2
                elif c == quote_char:
                    i += 1
                    break
                else:
                    out.append(c)
                    i += 1
            tokens.append(("str", "".join(out)))
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
    tokens = tokenize(text)
    pos = 0

    def expr() -> Node:
        nonlocal pos
        node = term()
        while pos < len(tokens) and tokens[pos][0] == "join":
            op = "and" if tokens[pos][1] == "&&" else "or"
            pos += 1
            node = (op, node, term())
        return node

    def term() -> Node:
        nonlocal pos
        if pos >= len(tokens):
            raise FilterError("unexpected end")
        kind, value = tokens[pos]
        if kind == "(":
            pos += 1
            node = expr()
            if pos >= len(tokens) or tokens[pos][0] != ")":
                raise FilterError("missing )")
            pos += 1
            return node
        if kind != "ident":
            raise FilterError(f"expected a field, got {value!r}")
        if pos + 2 >= len(tokens):
            raise FilterError("incomplete comparison")
        op_kind, op = tokens[pos + 1]
        lit_kind, lit = tokens[pos + 2]
        if op_kind != "op" or lit_kind != "str":
            raise FilterError("bad comparison")
        pos += 3
        return ("cmp", value, op, lit)

    node = expr()
    if pos != len(tokens):
        raise FilterError("trailing tokens")
    return node


def evaluate(node: Node, record: dict[str, Any]) -> bool:
    kind = node[0]
    if kind == "and":
        return evaluate(node[1], record) and evaluate(node[2], record)
    if kind == "or":
        return evaluate(node[1], record) or evaluate(node[2], record)
    _, fld, op, lit = node
    lit = str(lit)
    value = str(record.get(fld, ""))
    if op == "=":
        return value == lit
    if op == "!=":
        return value != lit
    contains = lit.lower() in value.lower()
    return contains if op == "~" else not contains


# --------------------------------------------------------------------------- server


def _b32(n: int) -> str:
    return "".join(secrets.choice(string.ascii_uppercase + "234567") for _ in range(n))


def _id() -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(15))


def pb_error(status: int, message: str, data: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"code": status, "message": message, "data": data or {}})


@dataclass
class Fault:
    """Replace (or, with ``after``, follow) a matching request's answer."""

    action: httpx.Response | BaseException | Callable[[httpx.Request], httpx.Response]
    method: str | None = None
    collection: str | None = None
    times: int = 1
    after: bool = False  # process the request first, then answer with the fault


@dataclass
class Seen:
    method: str
    collection: str
    params: dict[str, str]
    body: Any


@dataclass
class FakeTower:
    token: str = TOKEN
    delay: float = 0.0
    records: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    max_per_page: int = 500

    # -- seeding helpers

    def add(self, collection: str, **fields: Any) -> dict[str, Any]:
        record = {"id": _id(), "created": "2024-05-01 10:00:00.000Z", **fields}
        self.records.setdefault(collection, {})[record["id"]] = record
        return record

    def add_installation(self, url: str = "nats://a:4222, nats://b:4222") -> dict[str, Any]:
        return self.add(
            "nats_auth_operators",
            public_key="O" + _b32(55),
            url=url,
            name="main",
            sign_seed="SO" + _b32(56),
        )

    def add_account(self, operator_id: str, name: str) -> dict[str, Any]:
        return self.add(
            "nats_auth_accounts",
            operator=operator_id,
            name=name,
            public_key="A" + _b32(55),
            jwt="eyJhbGciOi.eyJzdWIi.sig",
            sign_seed="SA" + _b32(56),
        )

    def add_access(self, account_id: str, cluster: str, namespace: str) -> dict[str, Any]:
        return self.add(
            "nats_auth_k8s_access", account=account_id, cluster=cluster, namespace=namespace
        )

    def add_role(
        self, account_id: str, role: str, publish: list[str], subscribe: list[str]
    ) -> dict[str, Any]:
        return self.add(
            "nats_auth_signing_keys",
            account=account_id,
            role=role,
            publish=publish,
            subscribe=subscribe,
            public_key="A" + _b32(55),
        )

    def add_user(self, account_id: str, name: str, signing_key: str = "") -> dict[str, Any]:
        return self.add("nats_auth_users", **self._user_fields(account_id, name, "", signing_key))

    def _user_fields(
        self, account: str, name: str, description: str, signing_key: str
    ) -> dict[str, Any]:
        seed = "SU" + _b32(56)
        jwt = "eyJ0eXAiOiJKV1QifQ.eyJuYW1lIjoi" + _b32(10) + ".c2ln"
        creds = (
            f"-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n"
            f"-----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
        )
        return {
            "account": account,
            "name": name,
            "description": description,
            "signing_key": signing_key,
            "public_key": "U" + _b32(55),
            "seed": seed,
            "jwt": jwt,
            "creds": creds,
        }

    def items(self, collection: str) -> list[dict[str, Any]]:
        return list(self.records.get(collection, {}).values())

    def count(self, method: str, collection: str) -> int:
        return sum(1 for s in self.seen if s.method == method and s.collection == collection)

    def fail(
        self,
        action: Any,
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

    async def handle(self, request: httpx.Request) -> httpx.Response:
        if self.delay:
            await asyncio.sleep(self.delay)
        parts = request.url.path.strip("/").split("/")
        if len(parts) < 4 or parts[:2] != ["api", "collections"] or parts[3] != "records":
            return pb_error(404, "The requested resource wasn't found.")
        collection = parts[2]
        record_id = url_unquote(parts[4]) if len(parts) > 4 else None
        method = request.method
        body = json.loads(request.content) if request.content else None
        self.seen.append(Seen(method, collection, dict(request.url.params), body))

        fault = self._take_fault(method, collection)
        if fault is not None and not fault.after:
            return self._apply(fault, request)
        if request.headers.get("X-Token") != self.token:
            return pb_error(401, "The request requires valid authorization token.")
        response = self._route(method, collection, record_id, request, body)
        if fault is not None:
            return self._apply(fault, request)
        return response

    def _apply(self, fault: Fault, request: httpx.Request) -> httpx.Response:
        action = fault.action
        if isinstance(action, BaseException):
            raise action
        if isinstance(action, httpx.Response):
            return action
        return action(request)

    def _route(
        self, method: str, collection: str, record_id: str | None, request: httpx.Request, body: Any
    ) -> httpx.Response:
        table = self.records.setdefault(collection, {})
        params = request.url.params
        fields = params.get("fields")
        if record_id is None and method == "GET":
            return self._list(table, params)
        if record_id is None and method == "POST":
            return self._create(collection, table, body, fields)
        if record_id is None:
            return pb_error(405, "Method not allowed.")
        record = table.get(record_id)
        if record is None:
            return pb_error(404, "The requested resource wasn't found.")
        if method == "GET":
            return httpx.Response(200, json=self._project(record, fields))
        if method == "PATCH":
            record.update(body or {})
            return httpx.Response(200, json=self._project(record, fields))
        if method == "DELETE":
            del table[record_id]
            return httpx.Response(204)
        return pb_error(405, "Method not allowed.")

    @staticmethod
    def _project(record: dict[str, Any], fields: str | None) -> dict[str, Any]:
        if not fields:
            return dict(record)
        wanted = fields.split(",")
        return {k: v for k, v in record.items() if k in wanted}

    def _list(self, table: dict[str, dict[str, Any]], params: httpx.QueryParams) -> httpx.Response:
        try:
            node = parse(params["filter"]) if params.get("filter") else None
        except FilterError as exc:
            return pb_error(400, f"Invalid filter: {exc}")
        page = int(params.get("page", "1"))
        per_page = min(int(params.get("perPage", "30")), self.max_per_page)
        matched = [r for r in table.values() if node is None or evaluate(node, r)]
        total_pages = (len(matched) + per_page - 1) // per_page
        chunk = matched[(page - 1) * per_page : page * per_page]
        return httpx.Response(
            200,
            json={
                "page": page,
                "perPage": per_page,
                "totalItems": len(matched),
                "totalPages": total_pages,
                "items": [self._project(r, params.get("fields")) for r in chunk],
            },
        )

    def _create(
        self, collection: str, table: dict[str, dict[str, Any]], body: Any, fields: str | None
    ) -> httpx.Response:
        if not isinstance(body, dict):
            return pb_error(400, "Failed to load the submitted data.")
        unique = UNIQUE.get(collection, ())
        if unique and any(all(r.get(k) == body.get(k) for k in unique) for r in table.values()):
            return pb_error(
                400,
                "Failed to create record.",
                {unique[-1]: {"code": "validation_not_unique", "message": "Value must be unique."}},
            )
        if collection == "nats_auth_users":
            record = {
                "id": _id(),
                "created": "2024-05-01 10:00:00.000Z",
                **self._user_fields(
                    body["account"],
                    body["name"],
                    body.get("description", ""),
                    body.get("signing_key", ""),
                ),
            }
        elif collection == "nats_auth_signing_keys":
            record = {
                "id": _id(),
                "created": "2024-05-01 10:00:00.000Z",
                "public_key": "A" + _b32(55),
                **body,
            }
        else:
            record = {"id": _id(), "created": "2024-05-01 10:00:00.000Z", **body}
        table[record["id"]] = record
        return httpx.Response(200, json=self._project(record, fields))
