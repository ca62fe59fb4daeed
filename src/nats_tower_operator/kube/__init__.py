"""Kubernetes client plumbing: config, async client, list+watch informers, event recorder.

Import direction inside the package: ``resources``/``errors``/``models`` (leaves) <-
``requests``/``watch``/``retry``/``throttle``/``store`` (pure core) <- ``config``/``auth``
<- ``client`` (I/O shell) <- ``informer``/``events``.
"""

from .auth import BearerTokenAuth
from .client import KubeClient
from .config import KubeConfig, KubeConfigError
from .errors import (
    AlreadyExists,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    KubeConnectionError,
    KubeError,
    MalformedWatchEvent,
    NotFound,
    ServerError,
    TooManyRequests,
    Unauthorized,
    error_from_response,
    error_from_status,
)
from .events import EventRecorder, EventType
from .informer import Handler, Informer, Transform
from .models import JSON, ObjectList, WatchEvent
from .requests import PatchType
from .resources import (
    CRDS,
    EVENTS,
    LEASES,
    NACK_ACCOUNTS,
    NAMESPACES,
    PODS,
    SECRETS,
    SELF_SUBJECT_ACCESS_REVIEWS,
    Resource,
)
from .retry import RetryPolicy
from .store import Key, Store
from .throttle import TokenBucket

__all__ = [
    "CRDS",
    "EVENTS",
    "JSON",
    "LEASES",
    "NACK_ACCOUNTS",
    "NAMESPACES",
    "PODS",
    "SECRETS",
    "SELF_SUBJECT_ACCESS_REVIEWS",
    "AlreadyExists",
    "BearerTokenAuth",
    "Conflict",
    "EventRecorder",
    "EventType",
    "Forbidden",
    "Gone",
    "Handler",
    "Informer",
    "Invalid",
    "Key",
    "KubeClient",
    "KubeConfig",
    "KubeConfigError",
    "KubeConnectionError",
    "KubeError",
    "MalformedWatchEvent",
    "NotFound",
    "ObjectList",
    "PatchType",
    "Resource",
    "RetryPolicy",
    "ServerError",
    "Store",
    "TokenBucket",
    "TooManyRequests",
    "Transform",
    "Unauthorized",
    "WatchEvent",
    "error_from_response",
    "error_from_status",
]
