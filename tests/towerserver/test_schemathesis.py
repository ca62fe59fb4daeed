"""Fuzzing the API from its own OpenAPI document: no request may produce a 5xx."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx

from nats_tower_operator.towerserver.server import TowerServer

from .conftest import TOKEN


async def test_schemathesis_finds_no_server_error(
    tower: TowerServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    # Some real data so that fuzzed ids and filters can hit existing records.
    operator = await tower.create_installation("fuzz")
    account = await tower.create_account(operator["id"], "acct")
    role = await tower.create_role(account["id"], "r", publish=["a.>"])
    await tower.create_user(account["id"], "u", signing_key_id=role["id"])
    await tower.link_k8s(account["id"], cluster="c", namespace="n")

    schemathesis = Path(sys.executable).parent / "schemathesis"
    process = await asyncio.create_subprocess_exec(
        str(schemathesis),
        "run",
        f"{tower.url}/api/openapi.json",
        "--header",
        f"X-Token: {TOKEN}",
        "--checks",
        "not_a_server_error",
        "--phases",
        "fuzzing,stateful",
        "--max-examples",
        "15",
        "--max-time",
        "20",
        "--generation-database",
        "none",
        "--workers",
        "1",
        "--no-color",
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false"},
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-4000:]
    assert "generated" in text and " failed" not in text.split("Test cases:")[-1], text[-2000:]
    # The fuzzer really talked to the records API (not only to the schema URL).
    stats = (await client.get("/api/_stats")).json()
    assert stats["total"] > 100, stats
