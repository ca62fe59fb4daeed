"""``nats-tower-operator check`` against a real environment: OK, and each failure with a fix."""

from __future__ import annotations

import asyncio
import os
import sys

from nats_tower_operator.sandbox import Environment


async def check(env: Environment, **overrides: str) -> tuple[int, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("NATS_TOWER_")}
    environ.update(env.operator_env(**overrides))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "nats_tower_operator.cli",
        "check",
        env=environ,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_check_reports_ok_then_each_problem_with_a_fix(env: Environment) -> None:
    code, out = await check(env)
    assert code == 0, out
    assert "FAIL" not in out
    for name in ("config", "tower", "installation", "access links", "rbac", "nack accounts"):
        assert f"OK    {name}" in out, out
    assert "default, team-a, team-b" in out and "CRD installed" in out

    rule = env.emulator.access.deny(verb="delete", resource="secrets")
    code, out = await check(env)
    env.emulator.access.rules.remove(rule)
    assert code == 1 and "FAIL  rbac" in out and "delete secrets" in out and "fix:" in out

    code, out = await check(env, NATS_TOWER_CLUSTER_ID="nobody-linked-me")
    assert code == 1 and "FAIL  access links" in out and "0 link(s)" in out

    code, out = await check(env, NATS_TOWER_API_TOKEN="wrong-token")
    assert code == 1 and "FAIL  tower" in out and "refused the API token" in out
    assert "wrong-token" not in out and env.token not in out
