"""Async client for NATS Tower: records API, typed errors, caching and credential issuance.

Use :class:`TowerClient` for single requests and :class:`CredentialIssuer` for the
reconcilers' use cases (issue, revoke, access checks) with caching and batching.
"""

from .cache import BatchLoader, TTLCache
from .client import FIND_USERS_CHUNK, RequestObserver, TokenSource, TowerClient
from .credentials import CredentialIssuer, CredentialSpec, IssuedCredential, RoleSpec
from .errors import (
    AccessNotAllowed,
    AccountNotFound,
    InstallationNotFound,
    InvalidRecordId,
    RoleNotFound,
    TowerBadRequest,
    TowerBadResponse,
    TowerError,
    TowerNotFound,
    TowerUnauthorized,
    TowerUnavailable,
)
from .filter import FilterTooLong, FilterValueError, and_, eq, like, or_, quote, unquote
from .models import Account, Installation, K8sAccess, Role, User, UserSummary, is_record_id

__all__ = [
    "FIND_USERS_CHUNK",
    "AccessNotAllowed",
    "Account",
    "AccountNotFound",
    "BatchLoader",
    "CredentialIssuer",
    "CredentialSpec",
    "FilterTooLong",
    "FilterValueError",
    "Installation",
    "InstallationNotFound",
    "InvalidRecordId",
    "IssuedCredential",
    "K8sAccess",
    "RequestObserver",
    "Role",
    "RoleNotFound",
    "RoleSpec",
    "TTLCache",
    "TokenSource",
    "TowerBadRequest",
    "TowerBadResponse",
    "TowerClient",
    "TowerError",
    "TowerNotFound",
    "TowerUnauthorized",
    "TowerUnavailable",
    "User",
    "UserSummary",
    "and_",
    "eq",
    "is_record_id",
    "like",
    "or_",
    "quote",
    "unquote",
]
