"""The README's main command: ``nats-tower-operator sandbox`` proves the whole system."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_sandbox_command_succeeds(tmp_path: Path) -> None:
    workdir = tmp_path / "sandbox"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nats_tower_operator.cli",
            "sandbox",
            "--workdir",
            str(workdir),
            "--timeout",
            "30",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "SANDBOX OK" in output, output
    assert "FAIL" not in output, output
    for secret in ("mycreds", "nack"):
        assert f"ok    Secret default/{secret}" in output, output
        assert f"ok    {secret}/nats.creds: publish/subscribe round trip" in output, output
    assert (workdir / "operator.log").exists()
