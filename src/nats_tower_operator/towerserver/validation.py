"""Request body validation (pure): typed field readers that collect PocketBase-style errors."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from nats_tower_operator.towerserver.errors import ValidationFailed, field_error

__all__ = ["Form", "split_subjects"]

MAX_SUBJECTS = 100
_SUBJECT_TOKEN_RE = re.compile(r"^[^\s.]+$")


def split_subjects(value: str) -> list[str]:
    """Split a comma or newline separated subject list, dropping blanks."""
    return [part.strip() for part in re.split(r"[,\n]", value) if part.strip()]


def _storable(text: str) -> bool:
    """No NUL and valid UTF-8 (JSON can carry lone surrogates, SQLite cannot store them)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _valid_subject(subject: str) -> bool:
    if not subject or len(subject) > 255 or not _storable(subject):
        return False
    tokens = subject.split(".")
    if not all(_SUBJECT_TOKEN_RE.match(t) for t in tokens):
        return False
    return ">" not in tokens[:-1]


class Form:
    """Reads fields from a JSON object body; absent fields are None when ``partial``."""

    def __init__(self, body: Mapping[str, Any], *, partial: bool) -> None:
        self._body = body
        self._partial = partial
        self.errors: dict[str, dict[str, str]] = {}

    def _absent(self, name: str, required: bool) -> bool:
        if name in self._body and self._body[name] is not None:
            return False
        if required and not self._partial:
            self.errors[name] = field_error("validation_required", "Cannot be blank.")
        return True

    def text(self, name: str, *, required: bool = False, max_len: int = 255) -> str | None:
        """A string field (numbers are accepted as their text, like PocketBase)."""
        if self._absent(name, required):
            return None if self._partial else ""
        raw = self._body[name]
        if isinstance(raw, bool) or not isinstance(raw, str | int | float):
            self.errors[name] = field_error("validation_invalid_value", "Invalid value.")
            return None
        value = raw if isinstance(raw, str) else str(raw)
        value = value.strip()
        if required and not value:
            self.errors[name] = field_error("validation_required", "Cannot be blank.")
            return None
        if len(value) > max_len or not _storable(value):
            self.errors[name] = field_error(
                "validation_length_out_of_range",
                f"The length must be no more than {max_len}.",
            )
            return None
        return value

    def integer(self, name: str, *, minimum: int, maximum: int) -> int | None:
        """A whole number within [minimum, maximum]."""
        if self._absent(name, False):
            return None if self._partial else 0
        raw = self._body[name]
        if isinstance(raw, float) and raw.is_integer():
            raw = int(raw)
        if isinstance(raw, bool) or not isinstance(raw, int):
            self.errors[name] = field_error("validation_invalid_value", "Must be a number.")
            return None
        if not minimum <= raw <= maximum:
            self.errors[name] = field_error(
                "validation_out_of_range", f"Must be between {minimum} and {maximum}."
            )
            return None
        return raw

    def subjects(self, name: str) -> list[str] | None:
        """A list of NATS subjects, given as a JSON list or a comma/newline separated string."""
        if self._absent(name, False):
            return None if self._partial else []
        raw = self._body[name]
        if isinstance(raw, str):
            items: list[Any] = split_subjects(raw)
        elif isinstance(raw, list):
            items = raw
        else:
            self.errors[name] = field_error("validation_invalid_value", "Invalid value.")
            return None
        if len(items) > MAX_SUBJECTS or not all(
            isinstance(s, str) and _valid_subject(s.strip()) for s in items
        ):
            self.errors[name] = field_error("validation_invalid_subject", "Invalid NATS subject.")
            return None
        return [str(s).strip() for s in items]

    def fail(self, name: str, code: str, message: str) -> None:
        """Record an error found by the caller."""
        self.errors[name] = field_error(code, message)

    def check(self, message: str) -> None:
        """Raise :class:`ValidationFailed` if any error was collected."""
        if self.errors:
            raise ValidationFailed(message, self.errors)
