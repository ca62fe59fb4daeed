"""nats-server configuration for one NATS Tower installation (pure).

Operator mode: the installation's operator JWT, its SYS account as system account, a
``full`` resolver (account JWT pushes are accepted and stored) with every account JWT
preloaded, so a fresh nats-server knows every account before the first push.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["NatsConfigInputs", "render_config", "write_config"]


@dataclass(frozen=True)
class NatsConfigInputs:
    """What a nats-server needs to know about an installation."""

    operator_public_key: str
    operator_jwt: str = field(repr=False)
    system_account: str
    account_jwts: Mapping[str, str] = field(repr=False)


def _q(text: str) -> str:
    return json.dumps(text)


def render_config(inputs: NatsConfigInputs, *, resolver_dir: str | Path) -> str:
    """The operator-mode part of a nats-server configuration."""
    lines = [
        f"# nats-server config for NATS installation {inputs.operator_public_key}",
        f"operator: {_q(inputs.operator_jwt)}",
        f"system_account: {_q(inputs.system_account)}",
        "resolver: {",
        "  type: full",
        f"  dir: {_q(str(resolver_dir))}",
        "  allow_delete: false",
        '  interval: "2m"',
        "}",
        "resolver_preload: {",
    ]
    lines += [f"  {pub}: {_q(token)}" for pub, token in sorted(inputs.account_jwts.items())]
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_config(path: Path, text: str) -> None:
    """Atomically replace ``path`` with ``text`` (owner-readable only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
