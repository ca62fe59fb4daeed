"""Every rendered object is valid against the Kubernetes OpenAPI schemas (strict: no unknown
fields), for the oldest Kubernetes we support and the newest the validator knows."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from .manifests import KUSTOMIZE_DIR, Doc, kustomize, render_seed_install

kubernetes_validate = pytest.importorskip("kubernetes_validate")

VERSIONS = ("1.29", kubernetes_validate.latest_version())


def _validate(doc: Doc, version: str) -> None:
    kubernetes_validate.validate(doc, version, strict=True)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> list[Doc]:
    tmp: Path = tmp_path_factory.mktemp("schema")
    docs = render_seed_install(tmp, "namespaced") + render_seed_install(tmp, "cluster")
    return docs + kustomize(KUSTOMIZE_DIR)


@pytest.mark.parametrize("version", VERSIONS)
def test_every_rendered_object_matches_the_kubernetes_schema(
    rendered: list[Doc], version: str
) -> None:
    kinds = set()
    for doc in rendered:
        _validate(doc, version)
        kinds.add(doc["kind"])
    assert kinds == {
        "ServiceAccount",
        "ConfigMap",
        "Secret",
        "Deployment",
        "Role",
        "RoleBinding",
        "ClusterRole",
        "ClusterRoleBinding",
    }


def test_the_validator_rejects_a_broken_deployment(rendered: list[Doc]) -> None:
    """Control: the strict schema catches a misspelt field and a wrongly typed value."""
    deployment = next(d for d in rendered if d["kind"] == "Deployment")
    misspelt = copy.deepcopy(deployment)
    misspelt["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(misspelt, VERSIONS[-1])
    mistyped = copy.deepcopy(deployment)
    mistyped["spec"]["replicas"] = "one"
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(mistyped, VERSIONS[-1])
