"""Integration harness: emulator + Tower-compatible server + real nats-server + the operator.

The operator runs in-process (built by ``bootstrap.build_operator`` from env-style settings,
exactly as ``nats-tower-operator run`` builds it) and talks to the emulator and Tower over
loopback HTTP; tests observe only through the Kubernetes API, Tower's API and nats-server.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from nats_tower_operator.bootstrap import Operator, build_operator
from nats_tower_operator.kube import EVENTS, PODS, SECRETS, KubeClient, KubeConfig, NotFound
from nats_tower_operator.sandbox import Environment, nats_round_trip
from nats_tower_operator.settings import load_settings

NAMESPACES = ("default", "team-a", "team-b")


class OperatorHandle:
    """Start, stop and restart an in-process operator against an :class:`Environment`."""

    def __init__(self, env: Environment) -> None:
        self.env = env
        self.op: Operator | None = None
        self._task: asyncio.Task[int] | None = None
        self.overrides: dict[str, str] = {}

    async def start(self, **overrides: str) -> Operator:
        self.overrides.update(overrides)
        settings = load_settings(self.env.operator_env(**self.overrides))
        op = build_operator(
            settings, kube_config=KubeConfig.from_kubeconfig(str(self.env.kubeconfig))
        )
        self.op = op
        self._task = asyncio.create_task(op.run(install_signal_handlers=False))
        deadline = time.monotonic() + 10
        while not op.synced():
            if self._task.done():
                raise RuntimeError(f"operator exited early: {self._task.result()}")
            if time.monotonic() > deadline:
                raise TimeoutError("operator caches did not sync")
            await asyncio.sleep(0.02)
        return op

    async def stop(self) -> int | None:
        if self.op is None or self._task is None:
            return None
        self.op.manager.request_stop()
        try:
            code = await asyncio.wait_for(self._task, timeout=20)
        finally:
            self.op, self._task = None, None
        return code

    async def restart(self, **overrides: str) -> Operator:
        await self.stop()
        return await self.start(**overrides)

    async def idle(self, timeout: float = 10.0) -> None:
        """Wait until the work queue is empty and nothing is being reconciled."""
        assert self.op is not None
        await self.op.controller.wait_idle(timeout)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Environment]:
    async with Environment.running(tmp_path / "env", namespaces=NAMESPACES) as environment:
        yield environment


@pytest.fixture
async def kube(env: Environment) -> AsyncIterator[KubeClient]:
    async with env.kube_client() as client:
        yield client


@pytest.fixture
async def operator(env: Environment) -> AsyncIterator[OperatorHandle]:
    """A not-yet-started operator; call ``await operator.start(**env_overrides)``."""
    handle = OperatorHandle(env)
    try:
        yield handle
    finally:
        await handle.stop()


async def wait_until(
    check: Callable[[], Awaitable[Any]], *, timeout: float = 15.0, what: str = "condition"
) -> Any:
    """Poll ``check`` until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.05)


def labelled_pod(
    name: str,
    *,
    secret: str,
    account: str | None = "operator",
    namespace: str = "default",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    all_labels = {"nats-tower.com/nats-tower-secret": secret}
    if account is not None:
        all_labels["nats-tower.com/nats-tower-account"] = account
    all_labels.update(labels or {})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": all_labels,
            "annotations": annotations or {},
        },
        "spec": {"containers": [{"name": "app", "image": "busybox"}]},
    }


async def create_pod(kube: KubeClient, pod: dict[str, Any]) -> dict[str, Any]:
    return await kube.create(PODS, pod, namespace=pod["metadata"]["namespace"])


async def get_secret(kube: KubeClient, namespace: str, name: str) -> dict[str, Any] | None:
    with contextlib.suppress(NotFound):
        return await kube.get(SECRETS, name, namespace=namespace)
    return None


async def wait_secret(
    kube: KubeClient, namespace: str, name: str, *, timeout: float = 15.0
) -> dict[str, Any]:
    async def filled() -> dict[str, Any] | None:
        secret = await get_secret(kube, namespace, name)
        if secret and (secret.get("data") or {}).get("nats.creds"):
            return secret
        return None

    result: dict[str, Any] = await wait_until(
        filled, timeout=timeout, what=f"Secret {namespace}/{name}"
    )
    return result


async def wait_secret_gone(
    kube: KubeClient, namespace: str, name: str, *, timeout: float = 15.0
) -> None:
    async def gone() -> bool:
        return await get_secret(kube, namespace, name) is None

    await wait_until(gone, timeout=timeout, what=f"Secret {namespace}/{name} deleted")


def decode(secret: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


async def events_for(kube: KubeClient, namespace: str, name: str) -> list[dict[str, Any]]:
    listing = await kube.list(
        EVENTS, namespace=namespace, field_selector=f"involvedObject.name={name}"
    )
    return [e for e in listing.items if (e.get("involvedObject") or {}).get("name") == name]


async def wait_event(
    kube: KubeClient, namespace: str, name: str, reason: str, *, timeout: float = 15.0
) -> dict[str, Any]:
    async def found() -> dict[str, Any] | None:
        for event in await events_for(kube, namespace, name):
            if event.get("reason") == reason:
                return event
        return None

    result: dict[str, Any] = await wait_until(
        found, timeout=timeout, what=f"Event {reason} on {namespace}/{name}"
    )
    return result


async def creds_refused(secret: dict[str, Any]) -> bool:
    """True when nats-server refuses a connection with the Secret's creds."""
    values = decode(secret)
    try:
        await nats_round_trip(values["nats.creds"], values["URLS"], subject="it.refused")
    except Exception as exc:
        text = f"{type(exc).__name__} {exc}".lower()
        return "authorization" in text or "revoked" in text or "noservers" in text
    return False


async def assert_creds_work(secret: dict[str, Any], subject: str = "it.check") -> None:
    values = decode(secret)
    await nats_round_trip(values["nats.creds"], values["URLS"], subject=subject)


async def tower_users(env: Environment) -> list[dict[str, Any]]:
    """Every user record in Tower except the SYS accounts' (Tower's own), via its REST API."""
    system = {a["id"] for a in await env.tower.admin.list("nats_auth_accounts", "name = 'SYS'")}
    users = await env.tower.admin.list(
        "nats_auth_users", fields="id,name,account,signing_key,public_key"
    )
    return [u for u in users if u["account"] not in system]
