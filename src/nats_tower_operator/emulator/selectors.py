"""Label and field selectors: parsing and matching, pure functions only.

Label selectors follow ``k8s.io/apimachinery/pkg/labels``: comma separated requirements
``key``, ``!key``, ``key=value``, ``key==value``, ``key!=value``, ``key in (a,b)``,
``key notin (a,b)``, ``key>N``, ``key<N``. As in Kubernetes, ``!=`` and ``notin`` also match
objects that lack the label. Field selectors are ``field=value``, ``field==value``,
``field!=value`` joined by commas, with ``\\`` escapes for ``,``, ``=``, ``!`` and ``\\``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "FieldSelector",
    "LabelSelector",
    "Requirement",
    "SelectorError",
    "label_key_errors",
    "label_value_errors",
]


class SelectorError(ValueError):
    """A selector string could not be parsed or holds invalid keys/values."""


_NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def label_key_errors(key: str) -> list[str]:
    """Return why ``key`` is not a valid qualified name (label/annotation key); empty if valid."""
    errors: list[str] = []
    prefix, slash, name = key.rpartition("/")
    if slash and not prefix:
        errors.append("prefix part must be non-empty")
    elif prefix:
        if len(prefix) > 253:
            errors.append("prefix part must be no more than 253 characters")
        elif not _DNS_SUBDOMAIN_RE.match(prefix):
            errors.append(
                "prefix part a lowercase RFC 1123 subdomain must consist of lower case "
                "alphanumeric characters, '-' or '.', and must start and end with an "
                "alphanumeric character"
            )
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > 63:
        errors.append("name part must be no more than 63 characters")
    elif not _NAME_RE.match(name):
        errors.append(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must "
            "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  "
            "or '123-abc', regex used for validation is "
            "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        )
    return errors


def label_value_errors(value: str) -> list[str]:
    """Return why ``value`` is not a valid label value; empty if valid."""
    if value == "":
        return []
    if len(value) > 63:
        return ["must be no more than 63 characters"]
    if not _NAME_RE.match(value):
        return [
            "a valid label must be an empty string or consist of alphanumeric characters, "
            "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
            "'MyValue',  or 'my_value',  or '12345', regex used for validation is "
            "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        ]
    return []


@dataclass(frozen=True, slots=True)
class Requirement:
    """One label requirement: ``key <operator> values``."""

    key: str
    operator: str  # "=", "!=", "in", "notin", "exists", "!", "gt", "lt"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:  # noqa: PLR0911 - one return per selector operator
        """Return whether ``labels`` satisfy this requirement."""
        op = self.operator
        present = self.key in labels
        if op == "exists":
            return present
        if op == "!":
            return not present
        if op in ("=", "in"):
            return present and labels[self.key] in self.values
        if op in ("!=", "notin"):
            return not present or labels[self.key] not in self.values
        if not present:
            return False
        try:
            have = int(labels[self.key])
        except ValueError:
            return False
        want = int(self.values[0])
        return have > want if op == "gt" else have < want


_TOKEN_RE = re.compile(r"\s*(?:(?P<op>!=|==|=|!|\(|\)|,|>|<)|(?P<word>[^\s!=(),<>]+))")


def _tokens(text: str) -> list[tuple[str, str]]:
    pos = 0
    out: list[tuple[str, str]] = []
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN_RE.match(text, pos)
        if m is None:  # pragma: no cover - the regex matches any non-space character
            raise SelectorError(f"unable to parse requirement: unexpected input at {pos}")
        if m.group("op") is not None:
            out.append(("op", m.group("op")))
        else:
            out.append(("word", m.group("word")))
        pos = m.end()
    return out


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A parsed label selector (all requirements must hold); empty matches everything."""

    requirements: tuple[Requirement, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> LabelSelector:  # noqa: C901, PLR0912, PLR0915 - a parser: one branch per token kind
        """Parse a selector string; raise :class:`SelectorError` when it is invalid."""
        if text is None or text.strip() == "":
            return cls()
        toks = _tokens(text)
        reqs: list[Requirement] = []
        i = 0

        def expect_word(what: str) -> str:
            nonlocal i
            if i >= len(toks) or toks[i][0] != "word":
                raise SelectorError(f"unable to parse requirement: expected {what}")
            word = toks[i][1]
            i += 1
            return word

        while i < len(toks):
            kind, val = toks[i]
            if kind == "op" and val == "!":
                i += 1
                key = expect_word("key after '!'")
                reqs.append(_requirement(key, "!", ()))
            elif kind == "word":
                key = val
                i += 1
                if i >= len(toks) or toks[i] == ("op", ","):
                    reqs.append(_requirement(key, "exists", ()))
                else:
                    okind, oval = toks[i]
                    i += 1
                    if okind == "op" and oval in ("=", "==", "!="):
                        value = ""
                        if i < len(toks) and toks[i][0] == "word":
                            value = toks[i][1]
                            i += 1
                        reqs.append(_requirement(key, "!=" if oval == "!=" else "=", (value,)))
                    elif okind == "op" and oval in (">", "<"):
                        value = expect_word("integer value")
                        reqs.append(_requirement(key, "gt" if oval == ">" else "lt", (value,)))
                    elif okind == "word" and oval in ("in", "notin"):
                        if i >= len(toks) or toks[i] != ("op", "("):
                            found = toks[i][1] if i < len(toks) else ""
                            raise SelectorError(
                                f"unable to parse requirement: found '{found}', expected: '('"
                            )
                        i += 1
                        values: list[str] = []
                        while True:
                            if i >= len(toks):
                                raise SelectorError("unable to parse requirement: expected ')'")
                            tkind, tval = toks[i]
                            if tkind == "word":
                                values.append(tval)
                                i += 1
                            elif tval == ",":
                                if not values or toks[i - 1] == ("op", ","):
                                    values.append("")
                                i += 1
                            elif tval == ")":
                                if toks[i - 1] == ("op", ","):
                                    values.append("")
                                i += 1
                                break
                            else:
                                raise SelectorError(
                                    f"unable to parse requirement: unexpected '{tval}' in set"
                                )
                        if not values:
                            raise SelectorError(
                                "unable to parse requirement: for 'in', 'notin' operators, "
                                "values set can't be empty"
                            )
                        reqs.append(_requirement(key, oval, tuple(values)))
                    else:
                        raise SelectorError(
                            f"unable to parse requirement: found '{oval}', expected: "
                            "'=', '!=', '==', 'in', notin'"
                        )
            else:
                raise SelectorError(
                    f"unable to parse requirement: found '{val}', expected: identifier"
                )
            if i < len(toks):
                if toks[i] != ("op", ","):
                    raise SelectorError(
                        f"unable to parse requirement: found '{toks[i][1]}', expected: ','"
                    )
                i += 1
                if i >= len(toks):
                    raise SelectorError(
                        "unable to parse requirement: found '', expected: identifier"
                    )
        return cls(tuple(reqs))

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """Return whether an object's labels satisfy every requirement."""
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        """True when the selector has no requirements (matches everything)."""
        return not self.requirements


def _requirement(key: str, op: str, values: tuple[str, ...]) -> Requirement:
    problems = label_key_errors(key)
    if problems:
        raise SelectorError(
            f'unable to parse requirement: key: Invalid value: "{key}": {problems[0]}'
        )
    if op in ("gt", "lt"):
        try:
            int(values[0])
        except ValueError:
            raise SelectorError(
                f'unable to parse requirement: values[0]: Invalid value: "{values[0]}": '
                "for 'Gt', 'Lt' operators, the value must be an integer"
            ) from None
    else:
        for idx, value in enumerate(values):
            vp = label_value_errors(value)
            if vp:
                raise SelectorError(
                    f"unable to parse requirement: values[{idx}][{key}]: "
                    f'Invalid value: "{value}": {vp[0]}'
                )
    return Requirement(key, op, values)


@dataclass(frozen=True, slots=True)
class FieldSelector:
    """A parsed field selector: ``(field, operator, value)`` terms that must all hold."""

    terms: tuple[tuple[str, str, str], ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> FieldSelector:
        """Parse ``a=b,c!=d``; raise :class:`SelectorError` when it is invalid."""
        if text is None or text.strip() == "":
            return cls()
        terms: list[tuple[str, str, str]] = []
        for part in _split_unescaped(text, ","):
            if part == "":
                continue
            field, op, value = _split_term(part)
            terms.append((field, op, value))
        return cls(tuple(terms))

    def matches(self, fields: Mapping[str, str]) -> bool:
        """Return whether the object's selectable ``fields`` satisfy every term."""
        for field, op, value in self.terms:
            have = fields.get(field, "")
            if op == "=" and have != value:
                return False
            if op == "!=" and have == value:
                return False
        return True

    @property
    def fields(self) -> frozenset[str]:
        """The field names used by this selector."""
        return frozenset(t[0] for t in self.terms)

    @property
    def empty(self) -> bool:
        """True when the selector has no terms (matches everything)."""
        return not self.terms


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    buf: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            buf.append(text[i : i + 2])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
        i += 1
    parts.append("".join(buf))
    return parts


def _unescape(text: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            if i + 1 >= len(text) or text[i + 1] not in "\\,=!":
                raise SelectorError(f"invalid field selector: invalid escape sequence in {text!r}")
            out.append(text[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _split_term(part: str) -> tuple[str, str, str]:
    i = 0
    while i < len(part):
        ch = part[i]
        if ch == "\\":
            i += 2
            continue
        if part.startswith("!=", i):
            return part[:i].strip(), "!=", _unescape(part[i + 2 :])
        if part.startswith("==", i):
            return part[:i].strip(), "=", _unescape(part[i + 2 :])
        if ch == "=":
            return part[:i].strip(), "=", _unescape(part[i + 1 :])
        i += 1
    raise SelectorError(f"invalid selector: '{part}'; can't understand '{part}'")
