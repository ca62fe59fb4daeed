"""The nats-server configuration of an installation (pure rendering, atomic writing); that
nats-server accepts it is proved by every test that starts one with it."""

from __future__ import annotations

import stat
from pathlib import Path

from nats_tower_operator.towerserver.natsconfig import (
    NatsConfigInputs,
    render_config,
    write_config,
)

INPUTS = NatsConfigInputs(
    operator_public_key="OKEY",
    operator_jwt="op.jwt.sig",
    system_account="ASYS",
    account_jwts={"ASYS": "sys.jwt.sig", "AAPP": "app.jwt.sig"},
)


def test_config_trusts_the_operator_and_preloads_every_account() -> None:
    text = render_config(INPUTS, resolver_dir='/tmp/with "quote"')
    lines = text.splitlines()
    assert 'operator: "op.jwt.sig"' in lines
    assert 'system_account: "ASYS"' in lines
    assert '  dir: "/tmp/with \\"quote\\""' in lines
    assert "  type: full" in lines and "  allow_delete: false" in lines
    preload = lines[lines.index("resolver_preload: {") + 1 : -1]
    assert preload == ['  AAPP: "app.jwt.sig"', '  ASYS: "sys.jwt.sig"']
    assert lines[-1] == "}"


def test_inputs_repr_hides_the_jwts() -> None:
    assert "jwt.sig" not in repr(INPUTS)


def test_write_config_replaces_the_file_owner_readable_only(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "nats.conf"
    write_config(path, "first\n")
    write_config(path, "second\n")
    assert path.read_text() == "second\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["nats.conf"]
