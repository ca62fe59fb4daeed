"""The docs' two install kustomizations render, land in one namespace and configure the operator."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from nats_tower_operator.settings import VARIABLES, ConfigError, load_settings

from .manifests import (
    CLUSTER_ID,
    CONFIGMAP,
    INSTALLATION,
    KUSTOMIZE_DIR,
    NAMESPACE,
    OPERATOR,
    TOKEN_GENERATOR,
    TOKEN_SECRET,
    TOWER_URL,
    MissingKey,
    container_environment,
    kustomize,
    one,
    operator_container,
    render_seed_install,
    render_site,
)

SCOPES = ("namespaced", "cluster")
RBAC_KINDS = {
    "namespaced": ("Role", "RoleBinding"),
    # the Lease for leader election is granted by a Role in the operator's namespace only
    "cluster": ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"),
}
CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding"}
# Settings the Deployment deliberately does not wire: the token comes from the Secret file.
NOT_WIRED = {"NATS_TOWER_API_TOKEN"}


def _env_refs(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        e["name"]: e["valueFrom"]["configMapKeyRef"]
        for e in container["env"]
        if "configMapKeyRef" in e.get("valueFrom", {})
    }


@pytest.mark.parametrize("scope", SCOPES)
def test_seed_install_lands_in_the_namespace_with_merged_config(tmp_path: Path, scope: str) -> None:
    docs = render_seed_install(tmp_path, scope)
    role_kind, binding_kind = RBAC_KINDS[scope][:2]
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted(
        ["ServiceAccount", "ConfigMap", "Secret", "Deployment", *RBAC_KINDS[scope]]
    )
    for doc in docs:
        meta = doc["metadata"]
        if doc["kind"] in CLUSTER_SCOPED:
            assert "namespace" not in meta, doc["kind"]
        else:
            assert meta.get("namespace") == NAMESPACE, doc["kind"]

    config = one(docs, "ConfigMap")
    config_name = config["metadata"]["name"]
    assert re.fullmatch(rf"{CONFIGMAP}-[a-z0-9]{{10}}", config_name), config_name  # hashed
    data = config["data"]
    assert data["NATS_TOWER_URL"] == TOWER_URL
    assert data["NATS_TOWER_CLUSTER_ID"] == CLUSTER_ID
    assert data["NATS_TOWER_DEFAULT_INSTALLATION"] == INSTALLATION
    assert data["NATS_TOWER_NAMESPACE"] == (NAMESPACE if scope == "namespaced" else "")
    assert data["installations.yaml"].strip() == f"{INSTALLATION}: {{}}"
    # Base values the seed does not set survive the merge.
    assert (
        data["NATS_TOWER_INSTALLATIONS_FILE_PATH"] == "/etc/nats-tower-operator/installations.yaml"
    )
    assert data["NATS_TOWER_API_TOKEN_PATH"] == "/var/run/secrets/nats-tower/token"
    assert data["NATS_TOWER_LOG_FORMAT"] == "json"

    container = operator_container(docs)
    refs = _env_refs(container)
    env_keys = {k for k in data if k.startswith("NATS_TOWER_")}
    assert env_keys <= set(refs), env_keys - set(refs)
    for name, ref in refs.items():
        assert ref["name"] == config_name and ref["key"] == name
    assert not container.get("envFrom"), "env comes from explicit configMapKeyRefs"

    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == one(docs, "ServiceAccount")["metadata"]["name"] == OPERATOR
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
    installations = mounts["/etc/nats-tower-operator"]["configMap"]
    assert installations["name"] == config_name
    assert installations["items"] == [{"key": "installations.yaml", "path": "installations.yaml"}]
    token = mounts["/var/run/secrets/nats-tower"]["secret"]
    assert token["secretName"] == one(docs, "Secret")["metadata"]["name"] == TOKEN_SECRET
    assert token["items"] == [{"key": "token", "path": "token"}]

    role, binding = one(docs, role_kind), one(docs, binding_kind)
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": role_kind,
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": OPERATOR, "namespace": NAMESPACE}
    ]


@pytest.mark.parametrize("scope", SCOPES)
def test_seed_install_with_token_gives_the_operator_a_valid_configuration(
    tmp_path: Path, scope: str
) -> None:
    docs = render_seed_install(tmp_path, scope, extra=TOKEN_GENERATOR.format(token="nt_abc123"))
    env = container_environment(docs, tmp_path / "pod")
    settings = load_settings(env)
    assert settings.tower_url == TOWER_URL
    assert settings.cluster_id == CLUSTER_ID
    assert settings.namespace == (NAMESPACE if scope == "namespaced" else None)
    assert settings.default_installation == INSTALLATION
    assert settings.allowed_installations == frozenset({INSTALLATION})
    assert settings.token() == "nt_abc123"
    assert settings.token.path == str(tmp_path / "pod/var/run/secrets/nats-tower/token")
    assert settings.log_format == "json"
    assert (settings.health_host, settings.health_port) == ("0.0.0.0", 8080)
    assert settings.resync_interval == 600.0


def test_a_configuration_change_rolls_the_deployment(tmp_path: Path) -> None:
    """The ConfigMap is generated: new values give it a new name, so the pod template changes."""
    before = render_seed_install(tmp_path / "a", "cluster")
    # Appended to the seed text: a second entry of its configMapGenerator list.
    changed = (
        "- name: nats-tower-operator-config\n  behavior: merge\n"
        "  literals:\n    - NATS_TOWER_LOG_LEVEL=DEBUG\n"
    )
    after = render_seed_install(tmp_path / "b", "cluster", extra=changed)
    names = [one(docs, "ConfigMap")["metadata"]["name"] for docs in (before, after)]
    assert names[0] != names[1]
    assert one(after, "ConfigMap")["data"]["NATS_TOWER_LOG_LEVEL"] == "DEBUG"
    refs = {r["name"] for r in _env_refs(operator_container(after)).values()}
    assert refs == {names[1]}
    templates = [one(docs, "Deployment")["spec"]["template"] for docs in (before, after)]
    assert templates[0] != templates[1]


def test_seed_install_without_a_token_refuses_to_start(tmp_path: Path) -> None:
    docs = render_seed_install(tmp_path, "cluster")
    env = container_environment(docs, tmp_path / "pod")
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    assert [p for p in caught.value.problems if "NATS_TOWER_API_TOKEN_PATH" in p], caught.value


def test_unconfigured_base_refuses_to_start_naming_each_missing_setting(tmp_path: Path) -> None:
    docs = kustomize(KUSTOMIZE_DIR)
    env = container_environment(docs, tmp_path / "pod")
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    text = "\n".join(caught.value.problems)
    for name in ("NATS_TOWER_URL", "NATS_TOWER_CLUSTER_ID", "NATS_TOWER_API_TOKEN_PATH"):
        assert name in text, text
    assert "installations file" in text, text


def test_a_replaced_configmap_without_required_keys_fails_at_pod_creation(tmp_path: Path) -> None:
    """Required keys are not optional refs: a pod would not start (CreateContainerConfigError)."""
    extra = (
        "\nconfigMapGenerator:\n- name: nats-tower-operator-config\n  behavior: replace\n"
        "  literals:\n    - NATS_TOWER_URL=https://tower.example.com\n"
    )
    docs = render_site(tmp_path, "resources:\n- {repo}/deployment/kustomize\n" + extra)
    with pytest.raises(MissingKey, match="NATS_TOWER_CLUSTER_ID"):
        container_environment(docs, tmp_path / "pod")


def test_every_operator_setting_can_be_set_through_the_configmap() -> None:
    read = {variable.name for variable in VARIABLES}
    assert {"NATS_TOWER_URL", "NATS_TOWER_WORKERS", "NATS_TOWER_LOG_LEVEL"} <= read
    container = operator_container(kustomize(KUSTOMIZE_DIR))
    wired = set(_env_refs(container)) | {e["name"] for e in container["env"] if "value" in e}
    assert wired == read - NOT_WIRED


@pytest.mark.parametrize("scope", SCOPES)
def test_overlays_hold_only_rbac_objects(scope: str) -> None:
    docs = kustomize(KUSTOMIZE_DIR / scope)
    assert sorted(d["kind"] for d in docs) == sorted(RBAC_KINDS[scope])


def test_namespaced_and_cluster_overlays_grant_the_same_rules() -> None:
    role = one(kustomize(KUSTOMIZE_DIR / "namespaced"), "Role")
    cluster = kustomize(KUSTOMIZE_DIR / "cluster")
    cluster_rules = one(cluster, "ClusterRole")["rules"] + one(cluster, "Role")["rules"]
    assert role["rules"] == cluster_rules
    # Leases only in the operator's namespace, never cluster-wide.
    assert all(
        "coordination.k8s.io" not in r["apiGroups"] for r in one(cluster, "ClusterRole")["rules"]
    )


def test_deployment_is_two_elected_replicas_hardened_and_probed() -> None:
    docs = kustomize(KUSTOMIZE_DIR)
    deployment = one(docs, "Deployment")
    # Two replicas, one active: leader election through a Lease.
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert one(docs, "ConfigMap")["data"]["NATS_TOWER_LEADER_ELECTION"] == "true"
    env_names = {e["name"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "NATS_TOWER_LEADER_ELECTION" in env_names
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = operator_container(docs)
    assert container["image"] == "ghcr.io/nats-tower/nats-tower-operator:latest"
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert container["resources"] == {
        "requests": {"cpu": "50m", "memory": "96Mi"},
        "limits": {"cpu": "500m", "memory": "256Mi"},
    }
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    health = {e["name"]: e.get("value") for e in container["env"]}["NATS_TOWER_HEALTH_ADDR"]
    assert health.endswith(":8080")


def test_image_can_be_pinned_with_kustomize_images(tmp_path: Path) -> None:
    docs = render_site(
        tmp_path,
        "resources:\n- {repo}/deployment/kustomize\nimages:\n"
        "- name: ghcr.io/nats-tower/nats-tower-operator\n  newTag: v1.2.3\n",
    )
    container = operator_container(docs)
    assert container["image"] == "ghcr.io/nats-tower/nats-tower-operator:v1.2.3"


def test_token_placeholder_can_be_left_to_an_external_secret_manager(tmp_path: Path) -> None:
    """The documented delete patch drops the placeholder; the pod still mounts the stable name."""
    delete_placeholder = """
patches:
- patch: |
    $patch: delete
    apiVersion: v1
    kind: Secret
    metadata:
      name: nats-tower-operator-token
"""
    docs = render_seed_install(tmp_path, "cluster", extra=delete_placeholder)
    assert [d for d in docs if d["kind"] == "Secret"] == []
    volumes = one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]
    token_volume = next(v["secret"] for v in volumes if "secret" in v)
    assert token_volume["secretName"] == TOKEN_SECRET
