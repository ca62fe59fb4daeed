"""The real kubectl against the emulator: create, get -l, label, annotate, delete, -w, apply."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import yaml

from nats_tower_operator.emulator import Emulator

from .conftest import FIXTURES, Kubectl

CRD_FILE = (
    Path(__file__).resolve().parents[2] / "src/nats_tower_operator/emulator/crds/nack-accounts.yaml"
)

POD_YAML = """
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels:
    app: {app}
spec:
  containers:
    - name: main
      image: busybox:1.36
"""


async def test_create_get_label_annotate_delete(
    kubectl: Kubectl, emu: Emulator, tmp_path: Path
) -> None:
    manifest = tmp_path / "pods.yaml"
    manifest.write_text(
        POD_YAML.format(name="one", app="web") + "---" + POD_YAML.format(name="two", app="db")
    )
    created = await kubectl.run("create", "-f", str(manifest))
    assert created.stdout.split("\n")[:2] == ["pod/one created", "pod/two created"]
    table = await kubectl.run("get", "pods", "-l", "app=web")
    lines = table.stdout.strip().splitlines()
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert [line.split()[0] for line in lines[1:]] == ["one"]
    names = await kubectl.run("get", "pods", "-l", "app in (web,db)", "-o", "name")
    assert names.stdout.split() == ["pod/one", "pod/two"]
    assert (
        await kubectl.run("label", "pod", "one", "tier=front")
    ).stdout.strip() == "pod/one labeled"
    assert (
        await kubectl.run("annotate", "pod", "one", "note=hello")
    ).stdout.strip() == "pod/one annotated"
    stored = emu.store.read("pods", "one", "default")
    assert stored is not None
    assert stored["metadata"]["labels"] == {"app": "web", "tier": "front"}
    assert stored["metadata"]["annotations"] == {"note": "hello"}
    relabel = await kubectl.run("label", "pod", "one", "tier=back", check=False)
    assert relabel.code != 0 and "already has a value" in relabel.stderr
    await kubectl.run("label", "pod", "one", "tier-")
    assert "tier" not in (emu.store.read("pods", "one", "default") or {})["metadata"]["labels"]
    missing = await kubectl.run("get", "pod", "nope", check=False)
    assert missing.code == 1
    assert 'Error from server (NotFound): pods "nope" not found' in missing.stderr
    dup = await kubectl.run("create", "-f", str(manifest), check=False)
    assert "Error from server (AlreadyExists)" in dup.stderr
    deleted = await kubectl.run("delete", "pod", "one")
    assert deleted.stdout.startswith('pod "one" deleted')
    assert emu.store.read("pods", "one", "default") is None
    as_json = json.loads((await kubectl.run("get", "pod", "two", "-o", "json")).stdout)
    assert as_json["metadata"]["labels"] == {"app": "db"}


async def test_get_watch_streams_changes(kubectl: Kubectl, emu: Emulator) -> None:
    emu.store.write(yaml.safe_load(POD_YAML.format(name="watched", app="w")))
    proc = await kubectl.start("get", "pods", "-w", "--output-watch-events")
    assert proc.stdout is not None
    try:
        first = await asyncio.wait_for(proc.stdout.readline(), 10)
        assert first.decode().split() == ["EVENT", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
        initial = await asyncio.wait_for(proc.stdout.readline(), 10)
        assert initial.split()[:2] == [b"ADDED", b"watched"]
        emu.store.write(yaml.safe_load(POD_YAML.format(name="late", app="w")))
        line = await asyncio.wait_for(proc.stdout.readline(), 10)
        assert line.split()[:2] == [b"ADDED", b"late"]
        emu.store.remove("pods", "late", "default")
        line = await asyncio.wait_for(proc.stdout.readline(), 10)
        assert line.split()[:2] == [b"DELETED", b"late"]
    finally:
        proc.terminate()
        await proc.wait()


async def test_apply_seed_pod_and_nack_account(kubectl: Kubectl, emu: Emulator) -> None:
    pod_file = str(FIXTURES / "seed-pod.yaml")
    account_file = str(FIXTURES / "seed-account.yaml")
    assert (await kubectl.run("apply", "-f", pod_file)).stdout.strip() == "pod/test created"
    assert (await kubectl.run("apply", "-f", pod_file)).stdout.strip() == "pod/test unchanged"
    no_crd = await kubectl.run("apply", "-f", account_file, check=False)
    assert no_crd.code != 0
    assert 'no matches for kind "Account"' in no_crd.stderr
    crd = await kubectl.run("apply", "-f", str(CRD_FILE))
    assert (
        crd.stdout.strip()
        == "customresourcedefinition.apiextensions.k8s.io/accounts.jetstream.nats.io created"
    )
    applied = await kubectl.run("apply", "-f", account_file)
    assert applied.stdout.strip() == "account.jetstream.nats.io/operator created"
    assert (
        await kubectl.run("apply", "-f", account_file)
    ).stdout.strip() == "account.jetstream.nats.io/operator unchanged"
    account = emu.store.read("accounts.jetstream.nats.io", "operator", "default")
    assert account is not None
    assert account["spec"]["creds"] == {"secret": {"name": "nack"}, "file": "nats.creds"}
    assert account["metadata"]["labels"]["nats-tower.com/nats-tower-secret"] == "nack"
    pod = emu.store.read("pods", "test", "default")
    assert pod is not None
    assert pod["metadata"]["labels"]["nats-tower.com/nats-tower-account"] == "operator"
    # a changed manifest is applied as a patch (strategic merge for the Pod's labels)
    changed = (
        (FIXTURES / "seed-pod.yaml").read_text().replace("secret: mycreds", "secret: othercreds")
    )
    patched = await kubectl.run("apply", "-f", "-", stdin=changed)
    assert patched.stdout.strip() == "pod/test configured"
    pod = emu.store.read("pods", "test", "default")
    assert (
        pod is not None
        and pod["metadata"]["labels"]["nats-tower.com/nats-tower-secret"] == "othercreds"
    )
    listed = await kubectl.run("get", "accounts", "-o", "name")
    assert listed.stdout.split() == ["account.jetstream.nats.io/operator"]
    strict = await kubectl.run("apply", "--validate=false", "-f", account_file)
    assert strict.code == 0


async def test_generators_that_send_protobuf(kubectl: Kubectl, emu: Emulator) -> None:
    assert (
        await kubectl.run("create", "namespace", "nats")
    ).stdout.strip() == "namespace/nats created"
    await kubectl.run(
        "-n", "nats", "create", "secret", "generic", "creds", "--from-literal=nats.creds=abc"
    )
    await kubectl.run(
        "-n", "nats", "create", "configmap", "cfg", "--from-literal=installations.yaml=x: 1"
    )
    await kubectl.run("-n", "nats", "create", "serviceaccount", "operator")
    creds = emu.store.read("secrets", "creds", "nats")
    assert (
        creds is not None and creds["data"] == {"nats.creds": "YWJj"} and creds["type"] == "Opaque"
    )
    cfg = emu.store.read("configmaps", "cfg", "nats")
    assert cfg is not None and cfg["data"] == {"installations.yaml": "x: 1"}
    assert emu.store.read("serviceaccounts", "operator", "nats") is not None
    assert (await kubectl.run("auth", "can-i", "list", "secrets")).stdout.strip() == "yes"
    emu.access.deny(verb="list", resource="secrets")
    denied = await kubectl.run("auth", "can-i", "list", "secrets", check=False)
    assert denied.stdout.strip() == "no"
    unsupported = await kubectl.run("create", "deployment", "web", "--image=nginx", check=False)
    assert unsupported.code != 0 and "protobuf encoding of apps/v1 Deployment" in unsupported.stderr
    gone = await kubectl.run("delete", "namespace", "nats")
    assert gone.stdout.startswith('namespace "nats" deleted')
    assert emu.store.read("secrets", "creds", "nats") is None


DEPLOY_MANIFEST = """
apiVersion: v1
kind: ServiceAccount
metadata: {name: nats-tower-operator, namespace: default}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: nats-tower-operator}
rules:
  - apiGroups: [""]
    resources: [pods]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: nats-tower-operator}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: nats-tower-operator}
subjects: [{kind: ServiceAccount, name: nats-tower-operator, namespace: default}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: nats-tower-operator-config, namespace: default}
data: {installations.yaml: "OC7O: {}"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: nats-tower-operator, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: nats-tower-operator}}
  template:
    metadata: {labels: {app: nats-tower-operator}}
    spec:
      serviceAccountName: nats-tower-operator
      containers:
        - name: operator
          image: ghcr.io/nats-tower/nats-tower-operator:latest
          env: [{name: NATS_TOWER_CLUSTER_ID, value: dev}]
"""


async def test_apply_deployment_manifests(kubectl: Kubectl, emu: Emulator) -> None:
    out = await kubectl.run("apply", "-f", "-", stdin=DEPLOY_MANIFEST)
    assert out.stdout.split("\n")[:5] == [
        "serviceaccount/nats-tower-operator created",
        "clusterrole.rbac.authorization.k8s.io/nats-tower-operator created",
        "clusterrolebinding.rbac.authorization.k8s.io/nats-tower-operator created",
        "configmap/nats-tower-operator-config created",
        "deployment.apps/nats-tower-operator created",
    ]
    changed = DEPLOY_MANIFEST.replace("value: dev", "value: prod")
    again = await kubectl.run("apply", "-f", "-", stdin=changed)
    assert "deployment.apps/nats-tower-operator configured" in again.stdout
    deployment = emu.store.read("deployments", "nats-tower-operator", "default")
    assert deployment is not None
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["env"] == [{"name": "NATS_TOWER_CLUSTER_ID", "value": "prod"}]
    assert deployment["metadata"]["generation"] == 2
