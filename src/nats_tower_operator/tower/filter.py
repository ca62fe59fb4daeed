"""Building PocketBase filter expressions from untrusted values (pure functions).

PocketBase parses filters with fexpr. A string literal ends at the first quote that is not
preceded by a backslash, and its value is the text with every ``\\'`` turned into ``'``;
no other escape exists (other backslashes are kept as they are). So a value is written as
a single-quoted literal with each ``'`` escaped, and that is exact for every value except
one ending in a backslash, which fexpr cannot express at all: :func:`quote` refuses it
(:class:`FilterValueError`) rather than send a filter that means something else.

PocketBase answers 400 to a filter over :data:`MAX_FILTER_BYTES` bytes (UTF-8, so a
non-ASCII character counts more than once) or with more than :data:`MAX_COMPARISONS`
comparisons; :func:`any_of_chunks` splits long "one of these values" filters so that every
piece stays within both limits.
Field names are not values: they must be plain identifiers and are checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

__all__ = [
    "MAX_COMPARISONS",
    "MAX_FILTER_BYTES",
    "FilterTooLong",
    "FilterValueError",
    "and_",
    "any_of_chunks",
    "check_limits",
    "eq",
    "expressible",
    "like",
    "or_",
    "quote",
    "unquote",
]

#: PocketBase's limits on one filter, in UTF-8 bytes and comparisons (over: a 400).
MAX_FILTER_BYTES = 3500
MAX_COMPARISONS = 200

_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_OPERATORS = ("!=", "!~", "=", "~")


class FilterValueError(ValueError):
    """A value that no PocketBase filter literal can express (it ends in a backslash)."""


class FilterTooLong(ValueError):
    """A filter over PocketBase's length or comparison limit (it would be answered 400)."""


def expressible(value: str) -> bool:
    """Whether ``value`` can be written as a filter literal exactly."""
    return not value.endswith("\\")


def quote(value: str) -> str:
    """Return ``value`` as a PocketBase string literal that cannot change the filter."""
    if not isinstance(value, str):
        raise TypeError(f"filter values must be str, not {type(value).__name__}")
    if not expressible(value):
        raise FilterValueError("a value ending in a backslash cannot be used in a Tower filter")
    return "'" + value.replace("'", "\\'") + "'"


def unquote(literal: str) -> str:
    """The value fexpr reads from one single-quoted literal (inverse of :func:`quote`)."""
    if len(literal) < 2 or literal[0] != "'" or literal[-1] != "'" or literal[-2] == "\\":
        raise ValueError("not a single-quoted literal")
    body = literal[1:-1]
    for i, ch in enumerate(body):
        if ch == "'" and (i == 0 or body[i - 1] != "\\"):
            raise ValueError("unescaped quote inside literal")
    return body.replace("\\'", "'")


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


def _scan(expr: str) -> tuple[set[str], int]:  # noqa: C901 - a scanner: one branch per token kind
    """The join operators at the top level of ``expr`` and its number of comparisons."""
    joins: set[str] = set()
    comparisons = 0
    depth = 0
    quote_char: str | None = None
    i = 0
    while i < len(expr):
        ch = expr[i]
        if quote_char is not None:
            if ch == quote_char and expr[i - 1] != "\\":
                quote_char = None
        elif ch in "'\"":
            quote_char = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif expr.startswith(("||", "&&"), i):
            if depth == 0:
                joins.add(expr[i : i + 2])
            i += 1
        elif expr.startswith(_OPERATORS, i):
            comparisons += 1
            if expr.startswith(("!=", "!~"), i):
                i += 1
        i += 1
    return joins, comparisons


def check_limits(expr: str) -> str:
    """``expr`` itself, or :class:`FilterTooLong` when PocketBase would refuse it."""
    _, comparisons = _scan(expr)
    size = _size(expr)
    if size > MAX_FILTER_BYTES or comparisons > MAX_COMPARISONS:
        raise FilterTooLong(
            f"filter of {size} bytes and {comparisons} comparisons is over "
            f"PocketBase's limits ({MAX_FILTER_BYTES}, {MAX_COMPARISONS})"
        )
    return expr


def _size(text: str) -> int:
    return len(text.encode("utf-8", errors="surrogatepass"))


def _join(op: str, parts: tuple[str, ...]) -> str:
    # PocketBase gives && precedence over || (the filter becomes SQL). Parts using the other
    # operator at their top level are parenthesised anyway, so no reader needs that rule.
    other = "||" if op == "&&" else "&&"
    return f" {op} ".join(f"({p})" if other in _scan(p)[0] else p for p in parts)


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


def any_of_chunks(
    base: str, field: str, values: Sequence[str], *, max_values: int | None = None
) -> Iterator[tuple[str, list[str]]]:
    """``base && (field = v1 || field = v2 ...)`` split into filters within the limits.

    Yields ``(filter, values in it)``; duplicates are dropped, order is kept. A single value
    that cannot fit even alone raises :class:`FilterTooLong`.
    """
    _, base_comparisons = _scan(base)
    overhead = _size(base) + len(" && ()")
    chunk: list[str] = []
    terms: list[str] = []
    size = overhead
    for value in dict.fromkeys(values):
        term = eq(field, value)
        cost = _size(term) + (len(" || ") if terms else 0)
        full = (
            size + cost > MAX_FILTER_BYTES
            or base_comparisons + len(terms) + 1 > MAX_COMPARISONS
            or (max_values is not None and len(terms) >= max_values)
        )
        if full and terms:
            yield check_limits(and_(base, or_(*terms))), chunk
            chunk, terms, size = [], [], overhead
            cost = _size(term)
        chunk.append(value)
        terms.append(term)
        size += cost
    if terms:
        yield check_limits(and_(base, or_(*terms))), chunk
