"""``nats-tower-operator check``: is this installation able to work? One line per check.

Run with the same environment as the operator (in its pod: ``kubectl exec deploy/... --
nats-tower-operator check``). Each failed check says how to fix it. Nothing is written:
Tower is only read, and Kubernetes permissions are asked with SelfSubjectAccessReviews.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nats_tower_operator.bootstrap import build_clients
from nats_tower_operator.kube import (
    NACK_ACCOUNTS,
    SELF_SUBJECT_ACCESS_REVIEWS,
    KubeClient,
    KubeConfig,
    KubeError,
)
from nats_tower_operator.settings import Settings
from nats_tower_operator.tower import (
    CredentialIssuer,
    InstallationNotFound,
    TowerClient,
    TowerError,
    TowerUnauthorized,
)

__all__ = ["REQUIRED_PERMISSIONS", "CheckLine", "format_report", "run_checks"]

REQUIRED_PERMISSIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("", "pods", ("list", "watch")),
    ("jetstream.nats.io", "accounts", ("list", "watch")),
    ("", "secrets", ("get", "list", "watch", "create", "update", "patch", "delete")),
    ("", "events", ("create", "patch")),
)
"""(group, resource, verbs) the operator calls in the namespace(s) it serves."""
LEASE_PERMISSIONS = ("coordination.k8s.io", "leases", ("get", "create", "update"))


@dataclass(frozen=True)
class CheckLine:
    """One check: what, whether it passed, what was seen, and how to fix a failure."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


async def _tower_checks(settings: Settings, tower: TowerClient) -> list[CheckLine]:
    lines: list[CheckLine] = []
    try:
        # Real Tower answers a wrong token with empty lists, never 401: a token is
        # accepted only when it sees at least one installation.
        works = await tower.token_works()
    except TowerUnauthorized:
        works = False
    except TowerError as exc:
        return [
            CheckLine(
                "tower",
                False,
                f"{settings.tower_url}: {exc.message}",
                "check NATS_TOWER_URL and that Tower is reachable from here",
            )
        ]
    if not works:
        return [
            CheckLine(
                "tower",
                False,
                f"{settings.tower_url} refused the API token (no installation is visible with it)",
                "set NATS_TOWER_API_TOKEN(_PATH) to Tower's API_TOKEN",
            )
        ]
    lines.append(CheckLine("tower", True, f"{settings.tower_url} accepts the API token"))
    issuer = CredentialIssuer(tower, cluster_id=settings.cluster_id)
    for installation in sorted(settings.allowed_installations):
        default = " (default)" if installation == settings.default_installation else ""
        try:
            urls = await issuer.installation_urls(installation)
        except InstallationNotFound:
            lines.append(
                CheckLine(
                    f"installation {installation[:8]}…{default}",
                    False,
                    f"{installation} does not exist in Tower",
                    "fix installations.yaml / NATS_TOWER_DEFAULT_INSTALLATION",
                )
            )
            continue
        except TowerError as exc:
            lines.append(CheckLine(f"installation {installation[:8]}…", False, exc.message))
            continue
        lines.append(
            CheckLine(
                f"installation {installation[:8]}…{default}",
                bool(urls),
                f"NATS URLs: {', '.join(urls) or 'none'}",
                "" if urls else "set the installation's URL in Tower",
            )
        )
    try:
        links = await tower.list_access(settings.cluster_id, settings.namespace)
    except TowerError as exc:
        lines.append(CheckLine("access links", False, exc.message))
    else:
        scope = f" namespace {settings.namespace!r}" if settings.namespace else ""
        namespaces = sorted({link.namespace for link in links})
        lines.append(
            CheckLine(
                "access links",
                bool(links),
                f"{len(links)} link(s) for cluster {settings.cluster_id!r}{scope}"
                + (f": namespaces {', '.join(namespaces[:10])}" if namespaces else ""),
                ""
                if links
                else "in NATS Tower, allow this cluster ID (and namespace) on the "
                "accounts it should use",
            )
        )
    return lines


async def _allowed(kube: KubeClient, group: str, resource: str, verb: str, namespace: str) -> bool:
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {
            "resourceAttributes": {
                "group": group,
                "resource": resource,
                "verb": verb,
                "namespace": namespace,
            }
        },
    }
    answer = await kube.create(SELF_SUBJECT_ACCESS_REVIEWS, review)
    return bool((answer.get("status") or {}).get("allowed"))


async def _kube_checks(settings: Settings, config: KubeConfig, kube: KubeClient) -> list[CheckLine]:
    lines: list[CheckLine] = []
    namespace = settings.namespace or ""
    wanted = list(REQUIRED_PERMISSIONS)
    if settings.leader_election:
        wanted.append(LEASE_PERMISSIONS)
    try:
        missing: list[str] = []
        for group, resource, verbs in wanted:
            where = namespace
            if resource == "leases":
                where = settings.leader_election_namespace or config.namespace or namespace
            for verb in verbs:
                if not await _allowed(kube, group, resource, verb, where):
                    missing.append(f"{verb} {resource}{'.' + group if group else ''}")
    except KubeError as exc:
        return [
            CheckLine(
                "kubernetes",
                False,
                f"{config.server}: {exc.message}",
                "check KUBECONFIG / the service account",
            )
        ]
    scope = f"namespace {namespace!r}" if namespace else "all namespaces"
    lines.append(
        CheckLine(
            "rbac",
            not missing,
            f"allowed in {scope}" if not missing else f"denied: {', '.join(missing)}",
            "" if not missing else "apply the RBAC overlay of deployment/kustomize",
        )
    )
    served = await kube.resource_served(NACK_ACCOUNTS)
    lines.append(
        CheckLine(
            "nack accounts",
            True,
            "CRD installed" if served else "CRD not installed: Accounts are picked up once it is",
        )
    )
    return lines


async def run_checks(settings: Settings, config: KubeConfig) -> list[CheckLine]:
    """Run every check (the configuration itself was validated when it was loaded)."""
    lines = [
        CheckLine(
            "config",
            True,
            f"cluster {settings.cluster_id!r}, "
            f"{'namespaced: ' + settings.namespace if settings.namespace else 'all namespaces'}, "
            f"{len(settings.allowed_installations)} installation(s) allowed",
        )
    ]
    clients = build_clients(settings, config)
    try:
        lines += await _tower_checks(settings, clients.tower)
        lines += await _kube_checks(settings, config, clients.kube)
    finally:
        await clients.aclose()
    return lines


def format_report(lines: Sequence[CheckLine]) -> str:
    """The report: ``OK``/``FAIL``, the check, what was seen, and a fix for failures."""
    width = max(len(line.name) for line in lines)
    out = []
    for line in lines:
        out.append(f"{'OK  ' if line.ok else 'FAIL'}  {line.name.ljust(width)}  {line.detail}")
        if not line.ok and line.fix:
            out.append(f"      {' ' * width}  fix: {line.fix}")
    return "\n".join(out)
