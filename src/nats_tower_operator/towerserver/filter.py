"""PocketBase list query parsing (pure): ``filter`` and ``sort`` to parameterised SQL fragments.

Supported filter grammar (a subset of PocketBase's)::

    expr       := and_expr ( "||" and_expr )*
    and_expr   := primary ( "&&" primary )*
    primary    := "(" expr ")" | operand OP operand
    OP         := "=" | "!=" | "~" | "!~" | ">" | ">=" | "<" | "<="
    operand    := field | field "." field | 'text' | "text" | number | true | false | null

Inside a quoted string a backslash escapes a backslash or either quote character (any other
backslash is kept as is), so :func:`quote` can express any value. Values are never spliced into
SQL: every literal becomes a bound parameter, and field names are checked against the
collection's :class:`QuerySchema` before they are used as (double-quoted) column names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "CompiledFilter",
    "FieldType",
    "FilterError",
    "QuerySchema",
    "SortError",
    "compile_filter",
    "compile_sort",
    "quote",
]

FieldType = Literal["text", "number", "bool", "json", "date"]
SqlParam = str | int | float | None

MAX_FILTER_LENGTH = 8192
MAX_COMPARISONS = 200
MAX_DEPTH = 32


class FilterError(ValueError):
    """The filter expression is malformed or names an unknown field."""


class SortError(ValueError):
    """The sort expression names an unknown field."""


@dataclass(frozen=True)
class QuerySchema:
    """What a collection exposes to filters: its table, typed fields and single relations."""

    table: str
    fields: Mapping[str, FieldType]
    relations: Mapping[str, QuerySchema] = field(default_factory=dict)


@dataclass(frozen=True)
class CompiledFilter:
    """A SQL boolean expression and its positional parameters."""

    sql: str
    params: tuple[SqlParam, ...]


def quote(value: str) -> str:
    """Return ``value`` as a single-quoted filter literal that parses back to exactly ``value``."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# --- tokenizer -------------------------------------------------------------------------------

_TokenKind = Literal["ident", "string", "number", "op", "lparen", "rparen", "and", "or", "end"]


@dataclass(frozen=True)
class _Token:
    kind: _TokenKind
    text: str
    value: SqlParam = None


_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_NUMBER_RE = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_OPS = ("!=", "!~", ">=", "<=", "=", "~", ">", "<")
_ESCAPABLE = {"\\", "'", '"'}


def _read_string(text: str, start: int) -> tuple[str, int]:
    quote_char = text[start]
    out: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in _ESCAPABLE:
            out.append(text[i + 1])
            i += 2
            continue
        if ch == quote_char:
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise FilterError("unterminated string literal")


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "'\"":
            value, i = _read_string(text, i)
            tokens.append(_Token("string", value, value))
        elif ch == "(":
            tokens.append(_Token("lparen", ch))
            i += 1
        elif ch == ")":
            tokens.append(_Token("rparen", ch))
            i += 1
        elif text.startswith("&&", i):
            tokens.append(_Token("and", "&&"))
            i += 2
        elif text.startswith("||", i):
            tokens.append(_Token("or", "||"))
            i += 2
        elif (m := _NUMBER_RE.match(text, i)) is not None:
            literal = m.group(0)
            number: int | float = float(literal) if "." in literal else int(literal)
            if isinstance(number, int) and abs(number) > 2**63 - 1:
                raise FilterError("number out of range")
            tokens.append(_Token("number", literal, number))
            i = m.end()
        elif (m := _IDENT_RE.match(text, i)) is not None:
            tokens.append(_Token("ident", m.group(0)))
            i = m.end()
        else:
            op = next((o for o in _OPS if text.startswith(o, i)), None)
            if op is None:
                raise FilterError(f"unexpected character at offset {i}")
            tokens.append(_Token("op", op))
            i += len(op)
    tokens.append(_Token("end", ""))
    return tokens


# --- parser + SQL generation -----------------------------------------------------------------


@dataclass
class _Operand:
    sql: str
    params: list[SqlParam]
    is_null: bool = False
    is_field: bool = False
    relation: tuple[str, QuerySchema, str] | None = None


class _Parser:
    def __init__(self, tokens: Sequence[_Token], schema: QuerySchema) -> None:
        self._tokens = tokens
        self._pos = 0
        self._schema = schema
        self._comparisons = 0

    def _peek(self) -> _Token:
        return self._tokens[self._pos]

    def _next(self) -> _Token:
        token = self._tokens[self._pos]
        self._pos += 1
        return token

    def parse(self) -> CompiledFilter:
        sql, params = self._expr(0)
        if self._peek().kind != "end":
            raise FilterError("unexpected trailing input")
        return CompiledFilter(sql=sql, params=tuple(params))

    def _expr(self, depth: int) -> tuple[str, list[SqlParam]]:
        if depth > MAX_DEPTH:
            raise FilterError("filter nested too deeply")
        parts = [self._and(depth)]
        while self._peek().kind == "or":
            self._next()
            parts.append(self._and(depth))
        return self._join(parts, "OR")

    def _and(self, depth: int) -> tuple[str, list[SqlParam]]:
        parts = [self._primary(depth)]
        while self._peek().kind == "and":
            self._next()
            parts.append(self._primary(depth))
        return self._join(parts, "AND")

    @staticmethod
    def _join(parts: list[tuple[str, list[SqlParam]]], word: str) -> tuple[str, list[SqlParam]]:
        if len(parts) == 1:
            return parts[0]
        params: list[SqlParam] = []
        for _, p in parts:
            params.extend(p)
        return "(" + f" {word} ".join(sql for sql, _ in parts) + ")", params

    def _primary(self, depth: int) -> tuple[str, list[SqlParam]]:
        if self._peek().kind == "lparen":
            self._next()
            inner = self._expr(depth + 1)
            if self._next().kind != "rparen":
                raise FilterError("missing closing parenthesis")
            return inner
        left = self._operand()
        op_token = self._next()
        if op_token.kind != "op":
            raise FilterError("expected a comparison operator")
        right = self._operand()
        self._comparisons += 1
        if self._comparisons > MAX_COMPARISONS:
            raise FilterError("too many comparisons in filter")
        return _compare(left, op_token.text, right)

    def _operand(self) -> _Operand:
        token = self._next()
        if token.kind == "string" or token.kind == "number":
            return _Operand("?", [token.value])
        if token.kind != "ident":
            raise FilterError("expected a field or a value")
        lowered = token.text.lower()
        if lowered == "null":
            return _Operand("NULL", [], is_null=True)
        if lowered in ("true", "false"):
            return _Operand("?", [1 if lowered == "true" else 0])
        return self._field(token.text)

    def _field(self, name: str) -> _Operand:
        parts = name.split(".")
        if len(parts) == 1:
            if name not in self._schema.fields:
                raise FilterError("unknown filter field")
            return _Operand(_col(name), [], is_field=True)
        if len(parts) == 2 and parts[0] in self._schema.relations:
            target = self._schema.relations[parts[0]]
            if parts[1] not in target.fields:
                raise FilterError("unknown filter field")
            # Resolved by _compare through a sub-select on the related table.
            return _Operand("", [], is_field=True, relation=(parts[0], target, parts[1]))
        raise FilterError("unknown filter field")


def _col(name: str) -> str:
    return f'"{name}"'


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _simple_compare(left: _Operand, op: str, right: _Operand) -> tuple[str, list[SqlParam]]:
    if right.is_null or left.is_null:
        other = left if right.is_null else right
        if left.is_null and right.is_null:
            truth = op in ("=", "~")
            return ("1=1" if truth else "1=0"), []
        if op in ("=", "~"):
            return f"({other.sql} IS NULL OR {other.sql} = '')", list(other.params)
        if op in ("!=", "!~"):
            return f"({other.sql} IS NOT NULL AND {other.sql} != '')", list(other.params)
        return "1=0", []
    params = [*left.params, *right.params]
    if op in ("~", "!~"):
        if right.params and not right.is_field:
            value = right.params[0]
            pattern = "%" + _escape_like("" if value is None else str(value)) + "%"
            params = [*left.params, pattern]
            right_sql = "?"
        else:
            right_sql = f"'%' || {right.sql} || '%'"
        negate = "NOT " if op == "!~" else ""
        return f"(COALESCE({left.sql}, '') {negate}LIKE {right_sql} ESCAPE '\\')", params
    # Every stored column is NOT NULL, so plain comparisons are exact and can use indexes.
    return f"({left.sql} {op} {right.sql})", params


def _compare(left: _Operand, op: str, right: _Operand) -> tuple[str, list[SqlParam]]:
    if left.relation is None:
        if right.relation is not None:
            raise FilterError("relation fields are only supported on the left side")
        return _simple_compare(left, op, right)
    rel, target, target_field = left.relation
    if right.is_field:
        raise FilterError("relation fields cannot be compared with fields")
    inner_sql, params = _simple_compare(_Operand(_col(target_field), [], is_field=True), op, right)
    sub = f"SELECT id FROM {_col(target.table)} WHERE {inner_sql}"  # noqa: S608
    return f"({_col(rel)} IN ({sub}))", params


def compile_filter(text: str, schema: QuerySchema) -> CompiledFilter | None:
    """Compile a PocketBase filter; ``None`` for an empty filter; :class:`FilterError` if bad."""
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterError("filter too long")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise FilterError("filter is not valid UTF-8") from None
    if not text.strip():
        return None
    parser = _Parser(_tokenize(text), schema)
    return parser.parse()


def compile_sort(text: str, schema: QuerySchema) -> str:
    """Compile ``-created,name`` to ``"created" DESC, "name" ASC`` ('' for an empty sort)."""
    clauses: list[str] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        direction = "ASC"
        if item[0] in "+-":
            direction = "DESC" if item[0] == "-" else "ASC"
            item = item[1:].strip()
        if item not in schema.fields:
            raise SortError("unknown sort field")
        clauses.append(f"{_col(item)} {direction}")
    return ", ".join(clauses)
