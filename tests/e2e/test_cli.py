"""The ``nats-tower-operator`` command as users run it: exit codes and messages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

INSTALLATION = "OC7OMSNNKRRZ3AQ3ZMBMYVDPBDI5UMFMZVJ6H4V5PNUUSM5UAB6BZFIT"


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("NATS_TOWER_", "KUBECONFIG"))}
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "nats_tower_operator.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=base,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )


def test_run_without_config_exits_2_with_one_line_per_problem(tmp_path: Path) -> None:
    result = run("run", env={"NATS_TOWER_URL": "tower.example.com"}, cwd=tmp_path)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("config error:")]
    assert any("NATS_TOWER_URL" in line for line in lines)
    assert any("NATS_TOWER_CLUSTER_ID" in line for line in lines)
    assert any("NATS_TOWER_API_TOKEN" in line for line in lines)
    assert any("installations" in line for line in lines)
    assert "Traceback" not in result.stderr


def test_run_with_valid_config_but_no_cluster_access_says_so(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("t0ken")
    env = {
        "NATS_TOWER_URL": "http://127.0.0.1:9",
        "NATS_TOWER_API_TOKEN_PATH": str(token),
        "NATS_TOWER_CLUSTER_ID": "c1",
        "NATS_TOWER_DEFAULT_INSTALLATION": INSTALLATION,
        "KUBECONFIG": str(tmp_path / "missing-kubeconfig"),
        "HOME": str(tmp_path),
    }
    result = run("run", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "config error:" in result.stderr and "Traceback" not in result.stderr
    assert "t0ken" not in result.stderr


def test_help_lists_every_command() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("run", "check", "sandbox", "tower", "dev-cluster"):
        assert command in result.stdout
