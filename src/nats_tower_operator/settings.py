"""Frozen operator settings read from the environment and validated once at start.

Every variable is one row of :data:`VARIABLES`: its name, the :class:`Settings` field it
fills, its default, how it is parsed and checked, and the line the README's configuration
table shows (:func:`markdown_table` renders it; a test keeps the README in step). A few rules
span variables (the token comes from a value or a file, the default installation must be
allowed, leader election timings must be ordered); they follow the table.

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
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml

__all__ = [
    "DEFAULT_INSTALLATIONS_FILE",
    "INSTALLATION_KEY_RE",
    "VARIABLES",
    "ConfigError",
    "Settings",
    "TokenSource",
    "Variable",
    "load_settings",
    "markdown_table",
    "unknown_variables",
]

DEFAULT_INSTALLATIONS_FILE = "config/installations.yaml"
INSTALLATION_KEY_RE = re.compile(r"^O[A-Z2-7]{55}$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
PREFIX = "NATS_TOWER_"

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
    access_retry_interval: float = 30.0
    revoke_grace_period: float = 600.0
    renew_fraction: float = 2.0 / 3.0
    max_credentials_per_namespace: int = 500
    user_changes_per_minute: float = 60.0
    user_changes_burst: int = 200
    health_host: str = "0.0.0.0"
    health_port: int = 8080
    log_format: LogFormat = "text"
    log_level: str = "INFO"
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

    def describe(self) -> dict[str, object]:
        """The effective configuration for a start-up log line (never the token itself)."""
        out: dict[str, object] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if name == "token":
                value = f"file {value.path}" if value.path else "(set)"
            elif isinstance(value, frozenset):
                value = sorted(value)
            out[name] = value
        return out


# ---------------------------------------------------------------------- parsers
# Each takes the stripped, non-empty value and returns the setting, or raises ValueError
# with the problem (the variable's name is added in front).


def _number(minimum: float = 0.0, *, below: float | None = None) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"{raw[:32]!r} is not a number") from None
        if value < minimum:
            raise ValueError(f"must be >= {minimum:g}, got {raw[:32]}")
        if below is not None and value >= below:
            raise ValueError(f"must be below {below:g}, got {raw[:32]}")
        return value

    return parse


def _integer(minimum: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"{raw[:32]!r} is not a number") from None
        if value < minimum:
            raise ValueError(f"must be >= {minimum}, got {raw[:32]}")
        return value

    return parse


def _flag(raw: str) -> bool:
    value = raw.lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"expected true or false, got {raw[:16]!r}")


def _choice(*choices: str, upper: bool = False) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.upper() if upper else raw.lower()
        if value not in choices:
            raise ValueError(f"expected {', '.join(choices)}, got {raw[:16]!r}")
        return value

    return parse


def _url(raw: str) -> str:
    url = raw.rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError(f"{url[:80]!r} must be an http:// or https:// URL with a host")
    return url


def _cluster_id(raw: str) -> str:
    # No '/' (user names are <cluster>/<namespace>/<secret>); no '\' (no Tower filter can
    # express a value ending in one).
    if len(raw) > 128 or "/" in raw or "\\" in raw or any(c.isspace() for c in raw):
        raise ValueError("at most 128 characters, no '/', no '\\' and no spaces")
    return raw


def _dns_label(what: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if len(raw) > 63 or not _DNS_LABEL.fullmatch(raw):
            raise ValueError(f"{raw[:70]!r} is not a valid {what} name")
        return raw

    return parse


def _installation(raw: str) -> str:
    if not INSTALLATION_KEY_RE.fullmatch(raw):
        raise ValueError("not an installation public key (56 characters starting with 'O')")
    return raw


def _health_addr(raw: str) -> tuple[str, int]:
    host, _, port = raw.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise ValueError(f"{raw[:40]!r} is not HOST:PORT")
    return host or "0.0.0.0", number


def _text(raw: str) -> str:
    return raw


# ---------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Variable:
    """One environment variable: where it goes, its default, its parser, its doc line."""

    name: str
    attr: str | None
    default: Any
    parse: Callable[[str], Any]
    doc: str
    shown_default: str = ""
    #: Required variables name an example value in their "required" problem.
    example: str = ""


VARIABLES: tuple[Variable, ...] = (
    Variable(
        "NATS_TOWER_URL", "tower_url", None, _url,
        "Tower base URL, `http://` or `https://`", "(required)",
        example="https://tower.example.com",
    ),
    Variable(
        "NATS_TOWER_API_TOKEN", None, None, _text,
        "the Tower `API_TOKEN` (shared secret), sent as `X-Token`",
    ),
    Variable(
        "NATS_TOWER_API_TOKEN_PATH", None, None, _text,
        "file holding the token instead (re-read when it changes); one of the two is required",
    ),
    Variable(
        "NATS_TOWER_CLUSTER_ID", "cluster_id", None, _cluster_id,
        "this cluster's ID, as linked to accounts in Tower (at most 128 characters, no `/`, "
        "`\\` or spaces)", "(required)", example="backend-prod-k8s-cluster",
    ),
    Variable(
        "NATS_TOWER_NAMESPACE", "namespace", None, _dns_label("namespace"),
        "namespaced install: list, watch and write only this namespace",
    ),
    Variable(
        "NATS_TOWER_DEFAULT_INSTALLATION", "default_installation", None, _installation,
        "installation public key used when a label does not name one",
    ),
    Variable(
        "NATS_TOWER_INSTALLATIONS_FILE_PATH", "installations_file", DEFAULT_INSTALLATIONS_FILE,
        _text,
        "YAML map whose keys are the allowed installation public keys; if the default path "
        "does not exist, only the default installation is allowed",
        f"`{DEFAULT_INSTALLATIONS_FILE}`",
    ),
    Variable(
        "NATS_TOWER_RESYNC_INTERVAL", "resync_interval", 600.0,
        lambda raw: _number()(raw) * 60.0,
        "minutes between checks of every Secret against Tower (user still there, access "
        "still linked, URLs unchanged); `0` = off. `SIGHUP` triggers one now", "`10`",
    ),
    Variable(
        "NATS_TOWER_REVOKE_GRACE_PERIOD", "revoke_grace_period", 600.0, _number(),
        "seconds a managed Secret may have no pod/Account using it before its Tower user is "
        "revoked and the Secret deleted", "`600`",
    ),
    Variable(
        "NATS_TOWER_RENEW_FRACTION", "renew_fraction", 2.0 / 3.0, _number(0.1, below=1.0),
        "renew an expiring credential after this fraction of its lifetime (below 1)",
        "`0.667`",
    ),
    Variable(
        "NATS_TOWER_ACCESS_RETRY_INTERVAL", "access_retry_interval", 30.0, _number(0.1),
        "seconds between retries when Tower says \"not linked\", \"no such account\", etc.",
        "`30`",
    ),
    Variable(
        "NATS_TOWER_MAX_CREDENTIALS_PER_NAMESPACE", "max_credentials_per_namespace", 500,
        _integer(1),
        "managed Secrets (so Tower users) one namespace may have; more get "
        "`CredentialQuotaExceeded`", "`500`",
    ),
    Variable(
        "NATS_TOWER_USER_CHANGES_PER_MINUTE", "user_changes_per_minute", 60.0, _number(0.1),
        "Tower users one namespace may create or revoke per minute (each revocation stays in "
        "the account JWT); more wait their turn (`UserChangesRateLimited`)", "`60`",
    ),
    Variable(
        "NATS_TOWER_USER_CHANGES_BURST", "user_changes_burst", 200, _integer(1),
        "user creations/revocations one namespace may make at once before the rate applies",
        "`200`",
    ),
    Variable(
        "NATS_TOWER_WORKERS", "workers", 8, _integer(1),
        "concurrent reconciles (on 2 cores, 8 was as fast as 16 with 20% less CPU; raise it "
        "when Tower is far away)", "`8`",
    ),
    Variable(
        "NATS_TOWER_KUBE_QPS", "kube_qps", 500.0, _number(),
        "client-side rate limit towards the API server, requests per second (`0` = off)",
        "`500`",
    ),
    Variable(
        "NATS_TOWER_KUBE_BURST", "kube_burst", 1000, _integer(1),
        "burst allowed above `NATS_TOWER_KUBE_QPS`", "`1000`",
    ),
    Variable(
        "NATS_TOWER_TIMEOUT", "tower_timeout", 10.0, _number(0.1),
        "seconds per Tower request", "`10`",
    ),
    Variable(
        "NATS_TOWER_CACHE_TTL", "tower_cache_ttl", 30.0, _number(),
        "seconds Tower lookups (installation, account, access, role) are cached", "`30`",
    ),
    Variable(
        "NATS_TOWER_WATCH_NACK_ACCOUNTS", "watch_nack_accounts", True, _flag,
        "watch `jetstream.nats.io/v1beta2` Accounts (picked up when the CRD appears)",
        "`true`",
    ),
    Variable(
        "NATS_TOWER_LEADER_ELECTION", "leader_election", False, _flag,
        "elect one active replica through a `coordination.k8s.io` Lease; set `true` when "
        "running more than one replica", "`false`",
    ),
    Variable(
        "NATS_TOWER_LEADER_ELECTION_NAMESPACE", "leader_election_namespace", None,
        _dns_label("namespace"),
        "where the Lease lives (else the kubeconfig/in-cluster namespace, then "
        "`NATS_TOWER_NAMESPACE`, then `default`)", "the operator's namespace",
    ),
    Variable(
        "NATS_TOWER_LEADER_ELECTION_ID", "leader_election_id", "nats-tower-operator",
        _dns_label("Lease"), "the Lease's name", "`nats-tower-operator`",
    ),
    Variable(
        "NATS_TOWER_LEADER_ELECTION_LEASE_DURATION", "lease_duration", 15.0, _number(1.0),
        "seconds (client-go's default): a follower takes over after the lease duration",
        "`15`",
    ),
    Variable(
        "NATS_TOWER_LEADER_ELECTION_RENEW_DEADLINE", "renew_deadline", 10.0, _number(0.1),
        "seconds: a leader that cannot renew within the deadline stops at once and exits",
        "`10`",
    ),
    Variable(
        "NATS_TOWER_LEADER_ELECTION_RETRY_PERIOD", "retry_period", 2.0, _number(0.1),
        "seconds between Lease attempts; a leader stopping on SIGTERM releases the Lease",
        "`2`",
    ),
    Variable(
        "NATS_TOWER_HEALTH_ADDR", None, ("0.0.0.0", 8080), _health_addr,
        "`/healthz`, `/readyz`, `/metrics`", "`0.0.0.0:8080`",
    ),
    Variable(
        "NATS_TOWER_LOG_FORMAT", "log_format", "text", _choice("text", "json"),
        "`text` or `json`", "`text`",
    ),
    Variable(
        "NATS_TOWER_LOG_LEVEL", "log_level", "INFO",
        _choice("DEBUG", "INFO", "WARNING", "ERROR", upper=True),
        "`DEBUG`, `INFO`, `WARNING`, `ERROR`", "`INFO`",
    ),
)  # fmt: skip

#: Variables of the Go operator this one does not read: a warning names them at start.
UNSUPPORTED = {
    "NATS_TOWER_CONFIG_KIND": "the Go operator's config source; only env vars are read here",
    "NATS_TOWER_SELECTOR": "the Go operator's label selector; this operator selects on "
    "nats-tower.com/nats-tower-secret",
}


def markdown_table() -> str:
    """The README's configuration table, from :data:`VARIABLES`."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows += [f"| `{v.name}` | {v.shown_default} | {v.doc} |" for v in VARIABLES]
    return "\n".join(rows)


def unknown_variables(env: Mapping[str, str]) -> list[str]:
    """A warning for each ``NATS_TOWER_*`` variable that is set but means nothing here."""
    known = {v.name for v in VARIABLES}
    warnings = []
    for name in sorted(env):
        if not name.startswith(PREFIX) or name in known:
            continue
        why = UNSUPPORTED.get(name) or next(
            (w for n, w in UNSUPPORTED.items() if name.endswith(n.removeprefix(PREFIX))), None
        )
        warnings.append(f"{name} is not a setting of this operator" + (f" ({why})" if why else ""))
    return warnings


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
        if not isinstance(key, str) or not INSTALLATION_KEY_RE.fullmatch(key):
            problems.append(
                f"installations file {path}: {str(key)[:64]!r} is not an installation public "
                "key (56 characters starting with 'O')"
            )
        else:
            keys.add(key)
    return frozenset(keys)


def _token(values: Mapping[str, Any], problems: list[str]) -> TokenSource | None:
    path, value = values["NATS_TOWER_API_TOKEN_PATH"], values["NATS_TOWER_API_TOKEN"]
    if path:
        try:
            return TokenSource(path=path)
        except FileNotFoundError:
            problems.append(f"NATS_TOWER_API_TOKEN_PATH: file {path} does not exist")
        except OSError as exc:
            problems.append(f"NATS_TOWER_API_TOKEN_PATH: cannot read {path}: {exc.strerror}")
        except ValueError:
            problems.append(f"NATS_TOWER_API_TOKEN_PATH: file {path} is empty")
        return None
    if value:
        return TokenSource(value=value)
    problems.append("NATS_TOWER_API_TOKEN or NATS_TOWER_API_TOKEN_PATH: one is required")
    return None


def _allowed(
    values: Mapping[str, Any], explicit_file: bool, problems: list[str]
) -> frozenset[str] | None:
    path = values["NATS_TOWER_INSTALLATIONS_FILE_PATH"]
    allowed = _read_installations(path, problems, explicit=explicit_file)
    default = values["NATS_TOWER_DEFAULT_INSTALLATION"]
    if default is not None:
        if allowed is None and not explicit_file:
            # No installations file at the default path: the default alone is allowed.
            return frozenset({default})
        if allowed is not None and default not in allowed:
            problems.append(f"NATS_TOWER_DEFAULT_INSTALLATION: {default} is not listed in {path}")
    if (
        allowed is None
        and not explicit_file
        and not any("installations file" in p for p in problems)
    ):
        problems.append(
            f"no installations allowed: create {path} (a YAML map of installation public keys) "
            "or set NATS_TOWER_DEFAULT_INSTALLATION"
        )
    return allowed


def _parse_all(env: Mapping[str, str], problems: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for var in VARIABLES:
        raw = env.get(var.name, "").strip()
        values[var.name] = var.default
        if not raw:
            if var.example:
                problems.append(f"{var.name}: required (e.g. {var.example})")
            continue
        try:
            values[var.name] = var.parse(raw)
        except ValueError as exc:
            problems.append(f"{var.name}: {exc}")
    return values


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the settings; raise :class:`ConfigError` listing every problem."""
    env = os.environ if env is None else env
    problems: list[str] = []
    values = _parse_all(env, problems)
    token = _token(values, problems)
    explicit_file = bool(env.get("NATS_TOWER_INSTALLATIONS_FILE_PATH", "").strip())
    allowed = _allowed(values, explicit_file, problems)
    lease = [
        values[f"NATS_TOWER_LEADER_ELECTION_{n}"]
        for n in ("LEASE_DURATION", "RENEW_DEADLINE", "RETRY_PERIOD")
    ]
    if not lease[2] * 1.2 < lease[1] < lease[0]:
        problems.append(
            "NATS_TOWER_LEADER_ELECTION_*: need RETRY_PERIOD * 1.2 < RENEW_DEADLINE < "
            f"LEASE_DURATION, got {lease[2]:g}, {lease[1]:g}, {lease[0]:g}"
        )
    if problems:
        raise ConfigError(problems)
    assert token is not None and allowed is not None
    fields = {var.attr: values[var.name] for var in VARIABLES if var.attr is not None}
    health_host, health_port = values["NATS_TOWER_HEALTH_ADDR"]
    return Settings(
        token=token,
        allowed_installations=allowed,
        health_host=health_host,
        health_port=health_port,
        **fields,
    )
