"""Frozen operator settings read from the environment and validated once at start.

Every problem found is collected, so a misconfigured deployment gets one clear line per
problem in a single start attempt instead of one problem per crash loop.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import yaml

__all__ = [
    "DEFAULT_INSTALLATIONS_FILE",
    "INSTALLATION_KEY_RE",
    "ConfigError",
    "Settings",
    "TokenSource",
    "load_settings",
]

DEFAULT_INSTALLATIONS_FILE = "config/installations.yaml"
INSTALLATION_KEY_RE = re.compile(r"^O[A-Z2-7]{55}$")

LogFormat = Literal["text", "json"]


class ConfigError(Exception):
    """The configuration is invalid; ``problems`` lists each problem on its own line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class TokenSource:
    """The Tower API token, from a literal value or a file re-read when it changes.

    Mounted Secrets are updated in place by the kubelet, so a rotated token is picked up
    without a restart. ``repr`` never shows the token.
    """

    def __init__(self, *, value: str | None = None, path: str | None = None) -> None:
        if (value is None) == (path is None):
            raise ValueError("exactly one of value or path is required")
        self._value = value
        self._path = path
        self._mtime: float | None = None
        if path is not None:
            self._reload()

    @property
    def path(self) -> str | None:
        """The token file, when the token comes from one."""
        return self._path

    def _reload(self) -> None:
        assert self._path is not None
        stat = os.stat(self._path)
        if self._mtime != stat.st_mtime:
            token = Path(self._path).read_text(encoding="utf-8").strip()
            if not token:
                raise ValueError(f"token file {self._path} is empty")
            self._value = token
            self._mtime = stat.st_mtime

    def __call__(self) -> str:
        if self._path is not None:
            # On a read error keep the last good token; the next call tries again.
            with contextlib.suppress(OSError, ValueError):
                self._reload()
        assert self._value is not None
        return self._value

    def __repr__(self) -> str:
        return f"TokenSource(path={self._path!r})" if self._path else "TokenSource(<value>)"


@dataclass(frozen=True)
class Settings:
    """Everything the operator needs to know before it starts watching."""

    tower_url: str
    token: TokenSource = field(repr=False)
    cluster_id: str
    namespace: str | None
    default_installation: str | None
    allowed_installations: frozenset[str]
    installations_file: str
    resync_interval: float
    """Seconds between full resyncs against Tower; 0 disables them."""
    workers: int = 8
    kube_qps: float = 500.0
    kube_burst: int = 1000
    tower_timeout: float = 10.0
    tower_cache_ttl: float = 30.0
    tower_caching: bool = True
    access_retry_interval: float = 30.0
    revoke_grace_period: float = 600.0
    renew_fraction: float = 2.0 / 3.0
    health_host: str = "0.0.0.0"
    health_port: int = 8080
    log_format: LogFormat = "text"
    log_level: str = "INFO"
    server_side_selector: bool = True
    watch_nack_accounts: bool = True
    leader_election: bool = False
    """Elect one active replica through a Lease (needed with more than one replica)."""
    leader_election_namespace: str | None = None
    """The Lease's namespace; None: the operator's own (in-cluster) namespace."""
    leader_election_id: str = "nats-tower-operator"
    """The Lease's name."""
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    @property
    def namespaced(self) -> bool:
        """True when the operator is installed for one namespace only."""
        return self.namespace is not None


_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _read_installations(path: str, problems: list[str], *, explicit: bool) -> frozenset[str] | None:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        if explicit:
            problems.append(f"NATS_TOWER_INSTALLATIONS_FILE_PATH: file {path} does not exist")
        return None
    except OSError as exc:
        problems.append(f"NATS_TOWER_INSTALLATIONS_FILE_PATH: cannot read {path}: {exc.strerror}")
        return None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problems.append(f"installations file {path}: not valid YAML{where}")
        return None
    if not isinstance(data, dict) or not data:
        problems.append(
            f"installations file {path}: expected a non-empty YAML map whose keys are "
            "installation public keys, e.g. 'OC7O...BFIT: {}'"
        )
        return None
    keys: set[str] = set()
    for key in data:
        if not isinstance(key, str) or not INSTALLATION_KEY_RE.match(key):
            problems.append(
                f"installations file {path}: {str(key)[:64]!r} is not an installation public "
                "key (56 characters starting with 'O')"
            )
        else:
            keys.add(key)
    return frozenset(keys)


def _number(
    env: Mapping[str, str],
    name: str,
    default: float,
    problems: list[str],
    *,
    minimum: float = 0.0,
    cast: Callable[[str], float] = float,
) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = cast(raw)
    except ValueError:
        problems.append(f"{name}: {raw[:32]!r} is not a number")
        return default
    if value < minimum:
        problems.append(f"{name}: must be >= {minimum:g}, got {raw[:32]}")
        return default
    return value


def _flag(env: Mapping[str, str], name: str, default: bool, problems: list[str]) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    problems.append(f"{name}: expected true or false, got {raw[:16]!r}")
    return default


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the settings; raise :class:`ConfigError` listing every problem."""
    env = os.environ if env is None else env
    problems: list[str] = []

    tower_url = env.get("NATS_TOWER_URL", "").strip().rstrip("/")
    if not tower_url:
        problems.append("NATS_TOWER_URL: required (e.g. https://tower.example.com)")
    else:
        parts = urlsplit(tower_url)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            problems.append(
                f"NATS_TOWER_URL: {tower_url[:80]!r} must be an http:// or https:// URL with a host"
            )

    token: TokenSource | None = None
    token_value = env.get("NATS_TOWER_API_TOKEN", "").strip()
    token_path = env.get("NATS_TOWER_API_TOKEN_PATH", "").strip()
    if token_path:
        try:
            token = TokenSource(path=token_path)
        except FileNotFoundError:
            problems.append(f"NATS_TOWER_API_TOKEN_PATH: file {token_path} does not exist")
        except OSError as exc:
            problems.append(f"NATS_TOWER_API_TOKEN_PATH: cannot read {token_path}: {exc.strerror}")
        except ValueError:
            problems.append(f"NATS_TOWER_API_TOKEN_PATH: file {token_path} is empty")
    elif token_value:
        token = TokenSource(value=token_value)
    else:
        problems.append("NATS_TOWER_API_TOKEN or NATS_TOWER_API_TOKEN_PATH: one is required")

    cluster_id = env.get("NATS_TOWER_CLUSTER_ID", "").strip()
    if not cluster_id:
        problems.append("NATS_TOWER_CLUSTER_ID: required (e.g. backend-prod-k8s-cluster)")
    elif (
        len(cluster_id) > 128
        or "/" in cluster_id
        or "\\" in cluster_id  # not expressible in every Tower filter
        or any(c.isspace() for c in cluster_id)
    ):
        problems.append(
            "NATS_TOWER_CLUSTER_ID: at most 128 characters, no '/', no '\\' and no spaces"
        )

    namespace = env.get("NATS_TOWER_NAMESPACE", "").strip() or None
    if namespace is not None and (len(namespace) > 63 or not _DNS_LABEL.match(namespace)):
        problems.append(f"NATS_TOWER_NAMESPACE: {namespace[:70]!r} is not a valid namespace name")

    explicit_file = env.get("NATS_TOWER_INSTALLATIONS_FILE_PATH", "").strip()
    installations_file = explicit_file or DEFAULT_INSTALLATIONS_FILE
    allowed = _read_installations(installations_file, problems, explicit=bool(explicit_file))

    default = env.get("NATS_TOWER_DEFAULT_INSTALLATION", "").strip() or None
    if default is not None and not INSTALLATION_KEY_RE.match(default):
        problems.append(
            "NATS_TOWER_DEFAULT_INSTALLATION: not an installation public key "
            "(56 characters starting with 'O')"
        )
    elif allowed is None and default is not None:
        # No installations file at the default path: the default installation alone is allowed.
        allowed = frozenset({default})
    elif allowed is not None and default is not None and default not in allowed:
        problems.append(
            f"NATS_TOWER_DEFAULT_INSTALLATION: {default} is not listed in {installations_file}"
        )
    if (
        allowed is None
        and not explicit_file
        and not any("installations file" in p for p in problems)
    ):
        problems.append(
            f"no installations allowed: create {installations_file} (a YAML map of "
            "installation public keys) or set NATS_TOWER_DEFAULT_INSTALLATION"
        )

    resync_minutes = _number(env, "NATS_TOWER_RESYNC_INTERVAL", 10.0, problems)
    workers = int(_number(env, "NATS_TOWER_WORKERS", 8, problems, minimum=1, cast=int))
    kube_qps = _number(env, "NATS_TOWER_KUBE_QPS", 500.0, problems)
    kube_burst = int(_number(env, "NATS_TOWER_KUBE_BURST", 1000, problems, minimum=1, cast=int))
    tower_timeout = _number(env, "NATS_TOWER_TIMEOUT", 10.0, problems, minimum=0.1)
    cache_ttl = _number(env, "NATS_TOWER_CACHE_TTL", 30.0, problems)
    access_retry = _number(env, "NATS_TOWER_ACCESS_RETRY_INTERVAL", 30.0, problems, minimum=0.1)
    grace = _number(env, "NATS_TOWER_REVOKE_GRACE_PERIOD", 600.0, problems)
    renew = _number(env, "NATS_TOWER_RENEW_FRACTION", 2.0 / 3.0, problems, minimum=0.1)
    if renew >= 1.0:
        problems.append("NATS_TOWER_RENEW_FRACTION: must be below 1 (renew before expiry)")

    health = env.get("NATS_TOWER_HEALTH_ADDR", "0.0.0.0:8080").strip()
    health_host, _, health_port_raw = health.rpartition(":")
    try:
        health_port = int(health_port_raw)
        if not 0 <= health_port <= 65535:
            raise ValueError
    except ValueError:
        problems.append(f"NATS_TOWER_HEALTH_ADDR: {health[:40]!r} is not HOST:PORT")
        health_port = 8080

    log_format = env.get("NATS_TOWER_LOG_FORMAT", "text").strip().lower() or "text"
    if log_format not in {"text", "json"}:
        problems.append(f"NATS_TOWER_LOG_FORMAT: expected text or json, got {log_format[:16]!r}")
        log_format = "text"
    log_level = env.get("NATS_TOWER_LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        problems.append(
            f"NATS_TOWER_LOG_LEVEL: expected DEBUG, INFO, WARNING or ERROR, got {log_level[:16]!r}"
        )
        log_level = "INFO"

    tower_caching = _flag(env, "NATS_TOWER_CACHING", True, problems)
    selector = _flag(env, "NATS_TOWER_SERVER_SIDE_SELECTOR", True, problems)
    watch_nack = _flag(env, "NATS_TOWER_WATCH_NACK_ACCOUNTS", True, problems)

    leader_election = _flag(env, "NATS_TOWER_LEADER_ELECTION", False, problems)
    lease_namespace = env.get("NATS_TOWER_LEADER_ELECTION_NAMESPACE", "").strip() or None
    if lease_namespace is not None and (
        len(lease_namespace) > 63 or not _DNS_LABEL.match(lease_namespace)
    ):
        problems.append(
            f"NATS_TOWER_LEADER_ELECTION_NAMESPACE: {lease_namespace[:70]!r} is not a valid "
            "namespace name"
        )
    lease_name = env.get("NATS_TOWER_LEADER_ELECTION_ID", "").strip() or "nats-tower-operator"
    if len(lease_name) > 63 or not _DNS_LABEL.match(lease_name):
        problems.append(
            f"NATS_TOWER_LEADER_ELECTION_ID: {lease_name[:70]!r} is not a valid Lease name"
        )
    lease_duration = _number(
        env, "NATS_TOWER_LEADER_ELECTION_LEASE_DURATION", 15.0, problems, minimum=1.0
    )
    renew_deadline = _number(
        env, "NATS_TOWER_LEADER_ELECTION_RENEW_DEADLINE", 10.0, problems, minimum=0.1
    )
    retry_period = _number(
        env, "NATS_TOWER_LEADER_ELECTION_RETRY_PERIOD", 2.0, problems, minimum=0.1
    )
    if not retry_period * 1.2 < renew_deadline < lease_duration:
        problems.append(
            "NATS_TOWER_LEADER_ELECTION_*: need RETRY_PERIOD * 1.2 < RENEW_DEADLINE < "
            f"LEASE_DURATION, got {retry_period:g}, {renew_deadline:g}, {lease_duration:g}"
        )

    if problems:
        raise ConfigError(problems)
    assert token is not None and allowed is not None
    return Settings(
        tower_url=tower_url,
        token=token,
        cluster_id=cluster_id,
        namespace=namespace,
        default_installation=default,
        allowed_installations=allowed,
        installations_file=installations_file,
        resync_interval=resync_minutes * 60.0,
        workers=workers,
        kube_qps=kube_qps,
        kube_burst=kube_burst,
        tower_timeout=tower_timeout,
        tower_cache_ttl=cache_ttl,
        tower_caching=tower_caching,
        access_retry_interval=access_retry,
        revoke_grace_period=grace,
        renew_fraction=renew,
        health_host=health_host or "0.0.0.0",
        health_port=health_port,
        log_format=log_format,  # type: ignore[arg-type]
        log_level=log_level,
        server_side_selector=selector,
        watch_nack_accounts=watch_nack,
        leader_election=leader_election,
        leader_election_namespace=lease_namespace,
        leader_election_id=lease_name,
        lease_duration=lease_duration,
        renew_deadline=renew_deadline,
        retry_period=retry_period,
    )
