"""The sandbox: the whole system on one machine, proven end to end.

:class:`Environment` starts a real nats-server in operator mode, the NATS Tower stand-in
(the real PocketBase with NATS Tower's collections and rules: an installation, an account
named ``operator`` linked to the sandbox cluster and namespace) and the Kubernetes API
emulator with NACK's Account CRD. The integration tests use the same class, so the sandbox
and the tests exercise one bring-up.

:func:`run_sandbox` adds the operator (as a real ``nats-tower-operator run`` process
configured only by env vars), applies the two examples of the NATS Tower docs, waits for
both Secrets, proves each ``nats.creds`` with a publish/subscribe round trip on
nats-server, and prints a report.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nats_tower_operator.emulator.crd import load_nack_accounts_crd
from nats_tower_operator.emulator.server import Emulator
from nats_tower_operator.kube import (
    NACK_ACCOUNTS,
    NAMESPACES,
    PODS,
    SECRETS,
    KubeClient,
    KubeConfig,
    NotFound,
)
from nats_tower_operator.towerserver.natsserver import NatsServer
from nats_tower_operator.towerserver.standin import TowerStandIn

__all__ = [
    "Environment",
    "nats_round_trip",
    "run_sandbox",
    "seed_examples",
    "start_operator_process",
]

CLUSTER_ID = "sandbox-cluster"
NAMESPACE = "default"
ACCOUNT = "operator"
#: An installation's URL until its nats-server runs (Tower requires a unique one); a
#: refused loopback port, so an early push fails at once instead of waiting for DNS.
PLACEHOLDER_URL = "nats://127.0.0.1:1"


@dataclass
class Environment:
    """nats-server + NATS Tower stand-in + Kubernetes emulator, provisioned."""

    workdir: Path
    tower: TowerStandIn
    nats: NatsServer
    emulator: Emulator
    kubeconfig: Path
    token: str
    installation: dict[str, Any]
    account: dict[str, Any]
    cluster_id: str = CLUSTER_ID
    installations_file: Path = field(default=Path())

    @classmethod
    @contextlib.asynccontextmanager
    async def running(
        cls,
        workdir: Path,
        *,
        namespaces: tuple[str, ...] = (NAMESPACE,),
        link: bool = True,
        nack_crd: bool = True,
        tower_port: int = 0,
        emulator_port: int = 0,
    ) -> AsyncIterator[Environment]:
        """Start everything in ``workdir``; stop it all on exit."""
        workdir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, at start-up
        token = "sandbox-" + secrets.token_hex(16)
        async with (
            TowerStandIn.running(data_dir=workdir / "tower", token=token, port=tower_port) as tower,
            Emulator.running(port=emulator_port) as emulator,
        ):
            admin = tower.admin
            installation = await admin.create_installation(PLACEHOLDER_URL, "sandbox")
            key = str(installation["public_key"])
            nats = await tower.start_nats(key, workdir=workdir / "nats")
            installation = await admin.installation(key)
            account = await admin.create_account(key, ACCOUNT)
            if link:
                for namespace in namespaces:
                    await admin.link(key, ACCOUNT, cluster=CLUSTER_ID, namespace=namespace)
            await tower.wait_pushed()
            if nack_crd:
                emulator.register_crd(load_nack_accounts_crd())
            kubeconfig = emulator.write_kubeconfig(workdir / "kubeconfig")
            async with KubeClient(KubeConfig.from_kubeconfig(str(kubeconfig))) as kube:
                for namespace in namespaces:
                    if namespace not in {"default", "kube-system"}:
                        body = {
                            "apiVersion": "v1",
                            "kind": "Namespace",
                            "metadata": {"name": namespace},
                        }
                        await kube.create(NAMESPACES, body)
            installations_file = workdir / "installations.yaml"
            installations_file.write_text(f"{installation['public_key']}: {{}}\n")
            yield cls(
                workdir=workdir,
                tower=tower,
                nats=nats,
                emulator=emulator,
                kubeconfig=kubeconfig,
                token=token,
                installation=dict(installation),
                account=dict(account),
                installations_file=installations_file,
            )

    @property
    def installation_key(self) -> str:
        """The installation's public key (what labels and admin commands name it by)."""
        return str(self.installation["public_key"])

    def operator_env(self, **overrides: str) -> dict[str, str]:
        """The env vars a ``nats-tower-operator run`` needs to work against this environment."""
        env = {
            "NATS_TOWER_URL": self.tower.url,
            "NATS_TOWER_API_TOKEN": self.token,
            "NATS_TOWER_CLUSTER_ID": self.cluster_id,
            "NATS_TOWER_DEFAULT_INSTALLATION": str(self.installation["public_key"]),
            "NATS_TOWER_INSTALLATIONS_FILE_PATH": str(self.installations_file),
            "NATS_TOWER_HEALTH_ADDR": "127.0.0.1:0",
            "KUBECONFIG": str(self.kubeconfig),
        }
        env.update(overrides)
        return env

    def kube_client(self) -> KubeClient:
        """A Kubernetes client for this environment (the caller closes it)."""
        return KubeClient(KubeConfig.from_kubeconfig(str(self.kubeconfig)))


def seed_examples(installation: str) -> list[tuple[Any, dict[str, Any]]]:
    """The Pod and NACK Account of the NATS Tower docs, for ``installation``."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "test",
            "labels": {
                "nats-tower.com/nats-tower-installation": installation,
                "nats-tower.com/nats-tower-account": "operator",
                "nats-tower.com/nats-tower-secret": "mycreds",
            },
        },
        "spec": {
            "containers": [
                {
                    "name": "web",
                    "image": "nginx",
                    "ports": [{"name": "web", "containerPort": 80, "protocol": "TCP"}],
                    "volumeMounts": [{"name": "creds", "mountPath": "/creds"}],
                }
            ],
            "volumes": [{"name": "creds", "secret": {"secretName": "mycreds"}}],
        },
    }
    account = {
        "apiVersion": "jetstream.nats.io/v1beta2",
        "kind": "Account",
        "metadata": {
            "name": "operator",
            "labels": {
                "nats-tower.com/nats-tower-installation": installation,
                "nats-tower.com/nats-tower-secret": "nack",
            },
        },
        "spec": {
            "name": "operator",
            "servers": ["nats://nats:4222"],
            "creds": {"secret": {"name": "nack"}, "file": "nats.creds"},
        },
    }
    return [(PODS, pod), (NACK_ACCOUNTS, account)]


def decode_secret(secret: Mapping[str, Any]) -> dict[str, str]:
    """A Secret's ``data`` decoded to text."""
    data = secret.get("data") or {}
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


async def wait_for_secret(
    kube: KubeClient, namespace: str, name: str, *, timeout: float = 30.0
) -> dict[str, Any]:
    """Poll until Secret ``namespace/name`` holds non-empty ``nats.creds``."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(NotFound):
            secret = await kube.get(SECRETS, name, namespace=namespace)
            if (secret.get("data") or {}).get("nats.creds"):
                return secret
        if time.monotonic() > deadline:
            raise TimeoutError(f"Secret {namespace}/{name} did not appear within {timeout:g} s")
        await asyncio.sleep(0.1)


async def nats_round_trip(creds: str, urls: str, *, subject: str = "sandbox.check") -> float:
    """Connect with ``creds``, publish and receive one message; return the round trip (s)."""
    import nats

    with tempfile.NamedTemporaryFile("w", suffix=".creds", delete=False) as handle:
        handle.write(creds)
        path = handle.name
    try:
        os.chmod(path, 0o600)
        conn = await nats.connect(
            servers=[u.strip() for u in urls.split(",") if u.strip()],
            user_credentials=path,
            connect_timeout=5,
            max_reconnect_attempts=0,
            allow_reconnect=False,
        )
        try:
            sub = await conn.subscribe(subject)
            await conn.flush()
            started = time.perf_counter()
            await conn.publish(subject, b"ping")
            msg = await sub.next_msg(timeout=5)
            elapsed = time.perf_counter() - started
            if msg.data != b"ping":
                raise RuntimeError("round trip returned a different payload")
            return elapsed
        finally:
            await conn.close()
    finally:
        os.unlink(path)


async def start_operator_process(
    env: Environment, log_path: Path, **overrides: str
) -> asyncio.subprocess.Process:
    """Start ``nats-tower-operator run`` as a process for ``env``; output goes to ``log_path``."""
    process_env = dict(os.environ)
    process_env.update(env.operator_env(NATS_TOWER_LOG_FORMAT="json", **overrides))
    log_file = log_path.open("ab")
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "nats_tower_operator.cli",
            "run",
            env=process_env,
            stdout=log_file,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
        )
    finally:
        log_file.close()


async def _stop(process: asyncio.subprocess.Process) -> int | None:
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout=15)
        except TimeoutError:
            process.kill()
            await process.wait()
    return process.returncode


def _say(line: str = "") -> None:
    print(line, flush=True)


async def run_sandbox(*, workdir: Path, keep: bool, timeout: float = 60.0) -> int:  # noqa: PLR0915 - the sandbox's report, step by step
    """Bring the system up, run the docs' examples, report; 0 only if everything worked."""
    started = time.monotonic()
    failures: list[str] = []
    _say("nats-tower-operator sandbox")
    _say(f"  workdir: {workdir}")
    async with Environment.running(workdir) as env:
        _say(f"  nats-server   {env.nats.client_url} (operator mode, full resolver)")
        _say(
            f"  NATS Tower    {env.tower.url} (PocketBase with Tower's collections; installation "
            f"{env.installation['public_key']})"
        )
        _say(f"  Kubernetes    {env.emulator.url} (emulator, NACK Account CRD registered)")
        _say(
            f"  account       {ACCOUNT!r} linked to cluster {CLUSTER_ID!r}, namespace {NAMESPACE!r}"
        )
        operator_log = workdir / "operator.log"
        operator = await start_operator_process(env, operator_log)
        _say(f"  operator      pid {operator.pid}, logs in {operator_log}")
        _say()
        async with env.kube_client() as kube:
            try:
                for resource, manifest in seed_examples(str(env.installation["public_key"])):
                    await kube.create(resource, manifest, namespace=NAMESPACE)
                    _say(f"applied {manifest['kind']} {NAMESPACE}/{manifest['metadata']['name']}")
                for secret_name in ("mycreds", "nack"):
                    try:
                        secret = await wait_for_secret(
                            kube, NAMESPACE, secret_name, timeout=timeout
                        )
                    except TimeoutError as exc:
                        failures.append(str(exc))
                        _say(f"FAIL  Secret {secret_name}: {exc}")
                        continue
                    values = decode_secret(secret)
                    took = time.monotonic() - started
                    _say(
                        f"ok    Secret {NAMESPACE}/{secret_name}: keys "
                        f"{', '.join(sorted(values))}; ACCOUNT_NAME={values.get('ACCOUNT_NAME')}; "
                        f"URLS={values.get('URLS')} ({took:.1f} s after start)"
                    )
                    try:
                        rtt = await nats_round_trip(
                            values["nats.creds"],
                            values["URLS"],
                            subject=f"sandbox.{secret_name}",
                        )
                        _say(
                            f"ok    {secret_name}/nats.creds: publish/subscribe round trip on "
                            f"nats-server in {rtt * 1000:.1f} ms"
                        )
                    except Exception as exc:
                        failures.append(f"{secret_name}: {type(exc).__name__}: {exc}")
                        _say(f"FAIL  {secret_name}/nats.creds: {type(exc).__name__}: {exc}")
                if keep and not failures:
                    _say()
                    _say("The sandbox keeps running (Ctrl-C to stop). Try:")
                    _say(f"  export KUBECONFIG={env.kubeconfig}")
                    _say("  kubectl get secrets,pods,accounts")
                    _say(f"  Tower: {env.tower.url}  X-Token: {env.token}")
                    superuser = env.tower.superuser
                    _say(
                        f"  PocketBase admin UI: {env.tower.url}/_/  "
                        f"({superuser.email} / {superuser.password})"
                    )
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.Event().wait()
            finally:
                code = await _stop(operator)
                if code not in (0, None):
                    failures.append(f"operator exited with {code}; see {operator_log}")
    _say()
    if failures:
        _say(f"SANDBOX FAILED ({len(failures)} problem(s)); logs: {workdir}")
        return 1
    _say(
        f"SANDBOX OK in {time.monotonic() - started:.1f} s: both Secrets written by the "
        "operator, both creds accepted by nats-server"
    )
    return 0


def default_workdir() -> Path:
    """A fresh directory under ``.sandbox/`` for one run."""
    base = Path(".sandbox")
    base.mkdir(exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=base)).resolve()
