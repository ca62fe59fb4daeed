"""Building PocketBase filter expressions from untrusted values (pure functions).

A value always becomes one single-quoted string literal in which every backslash and
every single quote is escaped with a backslash, so no value (quotes, ``||``, ``&&``,
parentheses, backslashes) can end the literal early and change the expression.
Field names are not values: they must be plain identifiers and are checked.

Note on the real PocketBase parser (fexpr): it only understands ``\\'`` inside a literal
and keeps other backslashes verbatim, so a value containing a backslash matches nothing
there (it cannot match anything else either). Every value the operator sends (public
keys, record ids, Kubernetes names) is free of backslashes.
"""

from __future__ import annotations

import re

__all__ = ["and_", "eq", "like", "or_", "quote", "unquote"]

_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def quote(value: str) -> str:
    """Return ``value`` as a PocketBase string literal that cannot change the filter."""
    if not isinstance(value, str):
        raise TypeError(f"filter values must be str, not {type(value).__name__}")
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def unquote(literal: str) -> str:
    """Inverse of :func:`quote`: the value of one single-quoted literal."""
    if len(literal) < 2 or literal[0] != "'" or literal[-1] != "'":
        raise ValueError("not a single-quoted literal")
    out: list[str] = []
    body = literal[1:-1]
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            if i + 1 >= len(body):
                raise ValueError("dangling backslash in literal")
            out.append(body[i + 1])
            i += 2
            continue
        if ch == "'":
            raise ValueError("unescaped quote inside literal")
        out.append(ch)
        i += 1
    return "".join(out)


def _field(name: str) -> str:
    if not _FIELD.fullmatch(name):
        raise ValueError(f"invalid filter field name {name!r}")
    return name


def eq(field: str, value: str) -> str:
    """``field = 'value'``."""
    return f"{_field(field)} = {quote(value)}"


def like(field: str, value: str) -> str:
    """``field ~ 'value'`` (PocketBase "contains", case-insensitive; post-filter exactly)."""
    return f"{_field(field)} ~ {quote(value)}"


def _top_level_joins(expr: str) -> set[str]:
    """The join operators (``&&``, ``||``) of ``expr`` outside parentheses and literals."""
    found: set[str] = set()
    depth = 0
    quote_char: str | None = None
    i = 0
    while i < len(expr):
        ch = expr[i]
        if quote_char is not None:
            if ch == "\\":
                i += 2
                continue
            if ch == quote_char:
                quote_char = None
        elif ch in "'\"":
            quote_char = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0 and expr.startswith(("||", "&&"), i):
            found.add(expr[i : i + 2])
            i += 1
        i += 1
    return found


def _join(op: str, parts: tuple[str, ...]) -> str:
    # PocketBase joins left to right without precedence, so a part using the other
    # operator at its top level is parenthesised.
    other = "||" if op == "&&" else "&&"
    return f" {op} ".join(f"({p})" if other in _top_level_joins(p) else p for p in parts)


def and_(*parts: str) -> str:
    """All of ``parts``; a part with a top-level ``||`` is parenthesised."""
    if not parts:
        raise ValueError("and_() needs at least one part")
    return _join("&&", parts)


def or_(*parts: str) -> str:
    """Any of ``parts``, parenthesised when there are several (safe to nest in ``and_``)."""
    if not parts:
        raise ValueError("or_() needs at least one part (an empty OR matches nothing)")
    if len(parts) == 1:
        return parts[0]
    return "(" + _join("||", parts) + ")"
