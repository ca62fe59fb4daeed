"""The kube package's public surface: everything in ``__all__`` exists and is documented."""

from __future__ import annotations

import inspect

import nats_tower_operator.kube as kube


def test_all_names_importable_and_documented() -> None:
    assert len(kube.__all__) == len(set(kube.__all__))
    for name in kube.__all__:
        value = getattr(kube, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), name


def test_contract_names_present() -> None:
    for name in (
        "Resource", "PODS", "SECRETS", "EVENTS", "NAMESPACES", "LEASES", "CRDS",
        "NACK_ACCOUNTS", "SELF_SUBJECT_ACCESS_REVIEWS", "KubeError", "NotFound",
        "AlreadyExists", "Conflict", "Gone", "Invalid", "Unauthorized", "Forbidden",
        "TooManyRequests", "ServerError", "KubeConnectionError", "error_from_response",
        "KubeConfig", "KubeConfigError", "KubeClient", "ObjectList", "WatchEvent", "Informer",
        "EventRecorder",
    ):  # fmt: skip
        assert name in kube.__all__, name
