"""Bearer token auth: token-file rotation (mtime, rate-limited checks) and 401 retry-once."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from nats_tower_operator.kube import SECRETS, BearerTokenAuth, KubeClient, KubeConfig, Unauthorized


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _rotate(path: Path, token: str, mtime: float) -> None:
    path.write_text(token)
    os.utime(path, (mtime, mtime))


class Server:
    """Accepts only the tokens in ``valid``; records the Authorization headers it saw."""

    def __init__(self, *valid: str) -> None:
        self.valid = set(valid)
        self.seen: list[str | None] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        header = request.headers.get("Authorization")
        self.seen.append(header)
        if header and header.removeprefix("Bearer ") in self.valid:
            return httpx.Response(200, json={"metadata": {"name": "s"}})
        return httpx.Response(401, json={"kind": "Status", "code": 401, "reason": "Unauthorized"})


async def test_token_file_rechecked_at_most_every_interval(tmp_path: Path) -> None:
    token = tmp_path / "token"
    _rotate(token, "one", 1)
    clock = Clock()
    server = Server("one", "two")
    auth = BearerTokenAuth(token_file=str(token), check_interval=5, clock=clock)
    async with httpx.AsyncClient(auth=auth, transport=httpx.MockTransport(server)) as http:
        await http.get("https://k/")
        _rotate(token, "two", 2)
        clock.now += 1
        await http.get("https://k/")  # within the interval: the file is not looked at
        clock.now += 5
        await http.get("https://k/")
    assert server.seen == ["Bearer one", "Bearer one", "Bearer two"]


async def test_401_reloads_the_file_and_retries_once(tmp_path: Path) -> None:
    token = tmp_path / "token"
    _rotate(token, "old", 1)
    server = Server("old")
    config = KubeConfig(server="https://k", token="static", token_file=str(token))
    async with KubeClient(config, transport=httpx.MockTransport(server)) as client:
        await client.get(SECRETS, "s", namespace="n")
        _rotate(token, "new", 2)  # rotated; the cached token is now rejected
        server.valid = {"new"}
        await client.get(SECRETS, "s", namespace="n")
    # The file wins over the static token; the 401 is retried exactly once with the new token
    # (by the auth flow: the client's own retry policy never saw it).
    assert server.seen == ["Bearer old", "Bearer old", "Bearer new"]


async def test_401_with_unchanged_token_is_not_retried(tmp_path: Path) -> None:
    token = tmp_path / "token"
    _rotate(token, "bad", 1)
    server = Server("good")
    config = KubeConfig(server="https://k", token_file=str(token))
    async with KubeClient(config, transport=httpx.MockTransport(server)) as client:
        with pytest.raises(Unauthorized):
            await client.get(SECRETS, "s", namespace="n")
    assert server.seen == ["Bearer bad"]


async def test_static_token_and_no_token(tmp_path: Path) -> None:
    server = Server("s3cret")
    async with KubeClient(
        KubeConfig(server="https://k", token="s3cret"), transport=httpx.MockTransport(server)
    ) as client:
        await client.get(SECRETS, "s", namespace="n")
    async with KubeClient(
        KubeConfig(server="https://k"), transport=httpx.MockTransport(server)
    ) as client:
        with pytest.raises(Unauthorized):
            await client.get(SECRETS, "s", namespace="n")
    assert server.seen == ["Bearer s3cret", None]
    assert "s3cret" not in repr(KubeConfig(server="https://k", token="s3cret"))


async def test_unreadable_token_file_keeps_previous_token(tmp_path: Path) -> None:
    token = tmp_path / "token"
    _rotate(token, "keep", 1)
    clock = Clock()
    auth = BearerTokenAuth(token_file=str(token), check_interval=1, clock=clock)
    assert await auth.current_token() == "keep"
    token.unlink()
    clock.now += 2
    assert await auth.current_token() == "keep"
