"""The label, annotation and Event-reason vocabulary users and tools rely on."""

from __future__ import annotations

from typing import Final

PREFIX: Final = "nats-tower.com/"

# Labels users put on pods and NACK Accounts (same names as the Go operator).
SECRET_LABEL: Final = PREFIX + "nats-tower-secret"
ACCOUNT_LABEL: Final = PREFIX + "nats-tower-account"
INSTALLATION_LABEL: Final = PREFIX + "nats-tower-installation"
CREDENTIAL_TYPE_LABEL: Final = PREFIX + "nats-tower-credential-type"
ROLE_LABEL: Final = PREFIX + "nats-tower-role"

# Annotations users put on pods and NACK Accounts.
PUBLISH_ANNOTATION: Final = PREFIX + "nats-tower-publish"
SUBSCRIBE_ANNOTATION: Final = PREFIX + "nats-tower-subscribe"

# What the operator writes on the Secrets it manages. The secret label carries "true" on
# Secrets (as upstream), which is also what the Secret watch selects on.
MANAGED_SECRET_LABEL_VALUE: Final = "true"
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "nats-tower-operator"
USER_ID_ANNOTATION: Final = PREFIX + "user-id"
USER_PUBLIC_KEY_ANNOTATION: Final = PREFIX + "user-public-key"
USER_NAME_ANNOTATION: Final = PREFIX + "user-name"
INSTALLATION_ANNOTATION: Final = PREFIX + "installation"
ACCOUNT_ANNOTATION: Final = PREFIX + "account"
ROLE_ANNOTATION: Final = PREFIX + "role"
CLUSTER_ANNOTATION: Final = PREFIX + "cluster-id"
GENERATION_ANNOTATION: Final = PREFIX + "credential-generation"
ISSUED_AT_ANNOTATION: Final = PREFIX + "issued-at"
EXPIRES_AT_ANNOTATION: Final = PREFIX + "expires-at"
CONTENT_HASH_ANNOTATION: Final = PREFIX + "content-hash"
ORPHANED_SINCE_ANNOTATION: Final = PREFIX + "orphaned-since"
#: A user replaced by a re-issue, revoked once its successor is stored in the Secret.
PREVIOUS_USER_ANNOTATION: Final = PREFIX + "revoke-user-id"

#: The only keys the operator reads (and caches) from labelled objects and managed Secrets;
#: anything else under nats-tower.com/ is ignored, so it cannot inflate the caches.
CONSUMER_LABELS: Final = frozenset(
    {SECRET_LABEL, ACCOUNT_LABEL, INSTALLATION_LABEL, CREDENTIAL_TYPE_LABEL, ROLE_LABEL}
)
CONSUMER_ANNOTATIONS: Final = frozenset({PUBLISH_ANNOTATION, SUBSCRIBE_ANNOTATION})
SECRET_LABELS: Final = frozenset({SECRET_LABEL, CREDENTIAL_TYPE_LABEL, MANAGED_BY_LABEL})
SECRET_ANNOTATIONS: Final = frozenset(
    {
        USER_ID_ANNOTATION,
        USER_PUBLIC_KEY_ANNOTATION,
        USER_NAME_ANNOTATION,
        INSTALLATION_ANNOTATION,
        ACCOUNT_ANNOTATION,
        ROLE_ANNOTATION,
        CLUSTER_ANNOTATION,
        GENERATION_ANNOTATION,
        ISSUED_AT_ANNOTATION,
        EXPIRES_AT_ANNOTATION,
        CONTENT_HASH_ANNOTATION,
        ORPHANED_SINCE_ANNOTATION,
        PREVIOUS_USER_ANNOTATION,
    }
)

CREDS_KEY: Final = "nats.creds"
URLS_KEY: Final = "URLS"
ACCOUNT_NAME_KEY: Final = "ACCOUNT_NAME"


class Reason:
    """Event reasons. The first block is the Go operator's; users grep for them."""

    MISSING_INSTALLATION_LABEL: Final = "MissingInstallationLabel"
    INVALID_INSTALLATION_LABEL: Final = "InvalidInstallationLabel"
    # The Go operator's; this operator says the default inside the Created Event instead.
    DEFAULT_INSTALLATION: Final = "DefaultInstallation"
    MISSING_ACCOUNT_LABEL: Final = "MissingAccountLabel"
    MISSING_ROLE_LABEL: Final = "MissingRoleLabel"
    ACCESS_NOT_ALLOWED: Final = "ErrorK8sAccessNotAllowed"
    ERROR_CREATING_USER: Final = "ErrorCreatingUserAuth"
    ERROR_UPSERTING_SECRET: Final = "ErrorUpsertingSecret"
    CREATED: Final = "Created"
    UPDATED: Final = "Updated"

    # Ours: behaviour the Go operator does not have.
    INVALID_SECRET_LABEL: Final = "InvalidSecretLabel"
    INVALID_ACCOUNT_LABEL: Final = "InvalidAccountLabel"
    INVALID_CREDENTIAL_TYPE: Final = "InvalidCredentialType"
    INVALID_ROLE_LABEL: Final = "InvalidRoleLabel"
    INVALID_SUBJECTS: Final = "InvalidSubjects"
    INSTALLATION_NOT_FOUND: Final = "InstallationNotFound"
    ACCOUNT_NOT_FOUND: Final = "AccountNotFound"
    ROLE_NOT_FOUND: Final = "RoleNotFound"
    SECRET_NOT_OWNED: Final = "SecretNotOwned"
    CONFLICTING_CONSUMERS: Final = "ConflictingConsumers"
    RESTORED: Final = "Restored"
    RENEWED: Final = "Renewed"
    REVOKED: Final = "Revoked"
    REISSUED: Final = "Reissued"
    TOWER_TOKEN_REFUSED: Final = "TowerTokenRefused"
    OWNERSHIP_MISMATCH: Final = "OwnershipMismatch"
    ROLE_SUBJECTS_DIFFER: Final = "RoleSubjectsDiffer"
    ANNOTATION_TOO_LARGE: Final = "AnnotationTooLarge"
    CREDENTIAL_QUOTA_EXCEEDED: Final = "CredentialQuotaExceeded"
    RATE_LIMITED: Final = "UserChangesRateLimited"
