"""Fixtures of the integration tests (see harness.py)."""

from .harness import env, kube, operator

__all__ = ["env", "kube", "operator"]
