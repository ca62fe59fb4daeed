"""Log lines: text or JSON, never a credential (the shared redactor is the last guard)."""

from __future__ import annotations

import json
import logging

import pytest

from nats_tower_operator.logs import configure_logging
from nats_tower_operator.redaction import redact

SEED = "SUAM" + "A" * 54
JWT = "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJVQUJDIn0.c2lnbmF0dXJl"
CREDS = f"-----BEGIN NATS USER JWT-----\n{JWT}\n------END NATS USER JWT------\n"
PUBLIC_KEY = "OPOHASCXMBKDX24Q4HT6VMX7UAEBZQGFJHCWRDSZUYNWJ6YB2EZRU2KO"


def test_redact_removes_each_kind_and_keeps_public_keys() -> None:
    text = redact(f"a {SEED} b {JWT} c {CREDS} d nt_abcdefghijkl e tok3n {PUBLIC_KEY}", "tok3n")
    for secret in (SEED, JWT, "BEGIN NATS", "nt_abcdefghijkl", "tok3n"):
        assert secret not in text
    assert PUBLIC_KEY in text


@pytest.fixture(autouse=True)
def restore_root_logger() -> object:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield None
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_with_extras_and_redaction(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(level="DEBUG", fmt="json", secrets=lambda: ("the-api-token",))
    log = logging.getLogger("nats_tower_operator.test")
    log.info("issued %s for %s", SEED, "team-a", extra={"secret": "team-a/app", "jwt": JWT})
    try:
        raise RuntimeError(f"tower said {CREDS} with the-api-token")
    except RuntimeError:
        log.exception("boom")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert lines[0]["msg"] == "issued [redacted] for team-a"
    assert lines[0]["secret"] == "team-a/app" and lines[0]["jwt"] == "[redacted]"
    assert lines[0]["level"] == "info" and lines[0]["logger"] == "nats_tower_operator.test"
    assert "RuntimeError" in lines[1]["exception"]
    blob = json.dumps(lines)
    assert SEED not in blob and JWT not in blob and "the-api-token" not in blob


def test_text_format(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(level="INFO", fmt="text")
    logging.getLogger("x").warning("hello", extra={"secret": "ns/s"})
    logging.getLogger("x").debug("hidden")
    err = capsys.readouterr().err
    assert "WARNING" in err and "hello secret=ns/s" in err and "hidden" not in err
