"""Descriptions of the Kubernetes resources the operator talks to, and their URL paths."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

__all__ = [
    "CRDS",
    "EVENTS",
    "LEASES",
    "NACK_ACCOUNTS",
    "NAMESPACES",
    "PODS",
    "SECRETS",
    "SELF_SUBJECT_ACCESS_REVIEWS",
    "Resource",
]


def _segment(value: str, what: str) -> str:
    """Quote one path segment; reject values that could escape it."""
    if not value or value in (".", ".."):
        raise ValueError(f"invalid {what}: {value!r}")
    return quote(value, safe="")


@dataclass(frozen=True, slots=True)
class Resource:
    """One Kubernetes resource type: API group/version, plural name, kind and scope."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        """The ``apiVersion`` of objects of this resource (``v1`` or ``group/version``)."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version_path(self) -> str:
        """The discovery path of the resource's group version (``/api/v1`` or ``/apis/g/v``)."""
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    def path(
        self, namespace: str | None, name: str | None = None, subresource: str | None = None
    ) -> str:
        """The URL path of the collection, or of one object when ``name`` is given.

        For a namespaced resource ``namespace=None`` addresses all namespaces (list/watch).
        A namespace for a cluster-scoped resource, or a subresource without a name, is an error.
        """
        parts = [self.group_version_path]
        if namespace is not None:
            if not self.namespaced:
                raise ValueError(f"{self.plural} is cluster-scoped; no namespace allowed")
            parts.append(f"namespaces/{_segment(namespace, 'namespace')}")
        parts.append(self.plural)
        if name is not None:
            parts.append(_segment(name, "name"))
        if subresource is not None:
            if name is None:
                raise ValueError("a subresource needs an object name")
            parts.append(_segment(subresource, "subresource"))
        return "/".join(parts)


PODS = Resource("", "v1", "pods", "Pod", True)
SECRETS = Resource("", "v1", "secrets", "Secret", True)
EVENTS = Resource("", "v1", "events", "Event", True)
NAMESPACES = Resource("", "v1", "namespaces", "Namespace", False)
LEASES = Resource("coordination.k8s.io", "v1", "leases", "Lease", True)
CRDS = Resource(
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False
)
NACK_ACCOUNTS = Resource("jetstream.nats.io", "v1beta2", "accounts", "Account", True)
SELF_SUBJECT_ACCESS_REVIEWS = Resource(
    "authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", False
)
