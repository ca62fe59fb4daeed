"""Redaction of secrets in Tower error messages, and only of secrets."""

from __future__ import annotations

from nats_tower_operator.tower.errors import AccountNotFound, redact

# An operator public key with "SC" + 40 base32 characters inside it: not a seed.
PUBLIC_KEY_WITH_S_INSIDE = "OPOHASCXMBKDX24Q4HT6VMX7UAEBZQGFJHCWRDSZUYNWJ6YB2EZRU2KO"


def test_public_keys_that_contain_seed_like_runs_are_kept() -> None:
    assert redact(f"installation {PUBLIC_KEY_WITH_S_INSIDE}") == (
        f"installation {PUBLIC_KEY_WITH_S_INSIDE}"
    )
    err = AccountNotFound(PUBLIC_KEY_WITH_S_INSIDE, "billing")
    assert PUBLIC_KEY_WITH_S_INSIDE in str(err)


def test_real_seeds_are_removed() -> None:
    seed = "SUAM" + "A" * 54  # the shape of a user seed: 58 base32 characters
    text = redact(f"bad creds: {seed}, in ({seed})")
    assert seed not in text and text.count("[redacted]") == 2
