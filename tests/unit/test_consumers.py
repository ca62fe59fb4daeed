"""The consumer index and the slim form of pods/Accounts the informers keep."""

from __future__ import annotations

from typing import Any

from nats_tower_operator.reconcile import Request
from nats_tower_operator.reconcilers.consumers import ConsumerIndex, slim_consumer


def pod(name: str, secret: str | None, namespace: str = "ns", **extra: Any) -> dict[str, Any]:
    labels = {"app": "web", **({"nats-tower.com/nats-tower-secret": secret} if secret else {})}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{name}",
            "resourceVersion": "7",
            "labels": labels,
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "x" * 5000,
                "nats-tower.com/nats-tower-publish": "a.>",
            },
            "ownerReferences": [{"kind": "ReplicaSet", "name": "rs"}],
            **extra,
        },
    }


def test_slim_keeps_identity_and_our_keys_only() -> None:
    slim = slim_consumer(pod("a", "s", deletionTimestamp="2024-01-01T00:00:00Z"))
    meta = slim["metadata"]
    assert meta["labels"] == {"nats-tower.com/nats-tower-secret": "s"}
    assert meta["annotations"] == {"nats-tower.com/nats-tower-publish": "a.>"}
    assert (meta["name"], meta["namespace"], meta["uid"], meta["resourceVersion"]) == (
        "a",
        "ns",
        "uid-a",
        "7",
    )
    assert meta["deletionTimestamp"] and "ownerReferences" not in meta
    assert slim["kind"] == "Pod"
    assert len(repr(slim)) < 500


def test_index_groups_by_secret_and_follows_relabels_and_deletes() -> None:
    index = ConsumerIndex()
    assert index.observe("Pod", "v1", "ADDED", slim_consumer(pod("a", "s1"))) == [
        Request("ns", "s1")
    ]
    index.observe("Pod", "v1", "ADDED", slim_consumer(pod("b", "s1")))
    assert [c.name for c in index.for_secret("ns", "s1")] == ["a", "b"]
    assert index.for_secret("ns", "s1")[0].annotations["nats-tower.com/nats-tower-publish"]

    touched = index.observe("Pod", "v1", "MODIFIED", slim_consumer(pod("a", "s2")))
    assert touched == [Request("ns", "s1"), Request("ns", "s2")]
    assert [c.name for c in index.for_secret("ns", "s1")] == ["b"]

    assert index.observe("Pod", "v1", "MODIFIED", slim_consumer(pod("b", None))) == [
        Request("ns", "s1")
    ]
    assert index.for_secret("ns", "s1") == []
    assert index.observe("Pod", "v1", "DELETED", slim_consumer(pod("a", "s2"))) == [
        Request("ns", "s2")
    ]
    assert len(index) == 0 and list(index.secret_keys()) == []


def test_same_name_in_two_namespaces_and_kinds_are_distinct() -> None:
    index = ConsumerIndex()
    index.observe("Pod", "v1", "ADDED", slim_consumer(pod("x", "s", namespace="a")))
    index.observe("Pod", "v1", "ADDED", slim_consumer(pod("x", "s", namespace="b")))
    account = pod("x", "s", namespace="a") | {"kind": "Account"}
    index.observe("Account", "jetstream.nats.io/v1beta2", "ADDED", slim_consumer(account))
    assert {c.kind for c in index.for_secret("a", "s")} == {"Pod", "Account"}
    assert len(index.for_secret("b", "s")) == 1
