"""Pure rules: from a labelled object's labels and annotations to the credential it wants.

Nothing here does I/O. Each labelled object (a *consumer*) is validated on its own and
yields either a :class:`Desired` credential or an :class:`Invalid` verdict with the Event
reason and a message written for the person who wrote the labels. Consumers that share a
Secret are then combined by :func:`combine`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from nats_tower_operator.reconcilers.labels import (
    ACCOUNT_LABEL,
    CREDENTIAL_TYPE_LABEL,
    INSTALLATION_LABEL,
    PUBLISH_ANNOTATION,
    ROLE_LABEL,
    SECRET_LABEL,
    SUBSCRIBE_ANNOTATION,
    Reason,
)

__all__ = [
    "MAX_VALUE",
    "TOO_LARGE",
    "Conflict",
    "Consumer",
    "Desired",
    "Invalid",
    "RoleWish",
    "combine",
    "desired_for",
    "is_secret_name",
    "parse_subjects",
    "subject_problem",
]

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_INSTALLATION = re.compile(r"^O[A-Z2-7]{55}$")
_NAME_TEXT = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$")
MAX_SUBJECTS = 256
MAX_SUBJECT_LENGTH = 1024
#: The longest value of a nats-tower.com/ label or annotation the operator keeps (bytes of
#: text): bigger ones are replaced by TOO_LARGE in the cache and refused with an Event.
MAX_VALUE = 4096
TOO_LARGE = "\x00too-large"


@dataclass(frozen=True, slots=True)
class Consumer:
    """A pod or NACK Account that asks for a credential through its labels."""

    kind: str
    api_version: str
    namespace: str
    name: str
    uid: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    resource_version: str = ""
    creation_timestamp: str = ""
    deleting: bool = False

    @property
    def secret_name(self) -> str:
        """The Secret this object asks for (its secret label)."""
        return self.labels.get(SECRET_LABEL, "")

    def reference(self) -> dict[str, str]:
        """The object reference Events point at."""
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "uid": self.uid,
            "resourceVersion": self.resource_version,
        }


@dataclass(frozen=True, slots=True)
class RoleWish:
    """A role (scoped signing key) the credential must be issued under."""

    name: str
    publish: tuple[str, ...] = ()
    subscribe: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Desired:
    """The credential a valid consumer wants."""

    installation: str
    installation_defaulted: bool
    account: str
    credential_type: str
    role: RoleWish | None

    @property
    def identity(self) -> tuple[str, str, str, str | None]:
        """What consumers of one Secret must agree on."""
        return (
            self.installation,
            self.account,
            self.credential_type,
            self.role.name if self.role else None,
        )


@dataclass(frozen=True, slots=True)
class Invalid:
    """A consumer whose labels cannot be honoured: an Event reason and a message."""

    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Conflict:
    """Consumers of one Secret that want different credentials."""

    message: str


def is_secret_name(name: str) -> bool:
    """True when ``name`` is a valid Secret name (a DNS-1123 subdomain)."""
    return 0 < len(name) <= 253 and bool(_DNS_SUBDOMAIN.fullmatch(name))


def subject_problem(subject: str) -> str | None:  # noqa: PLR0911 - one return per rule of a NATS subject
    """Why ``subject`` is not a valid NATS subject (for permissions), or None when it is."""
    if not subject:
        return "empty subject"
    if len(subject) > MAX_SUBJECT_LENGTH:
        return f"longer than {MAX_SUBJECT_LENGTH} characters"
    if any(c.isspace() for c in subject):
        return "contains white space"
    tokens = subject.split(".")
    for index, token in enumerate(tokens):
        if not token:
            return "has an empty token (leading, trailing or double '.')"
        if token == ">" and index != len(tokens) - 1:
            return "'>' is only allowed as the last token"
        if ("*" in token or ">" in token) and token not in {"*", ">"}:
            return "wildcards '*' and '>' must be whole tokens"
    return None


def parse_subjects(raw: str) -> tuple[tuple[str, ...], list[str]]:
    """Split an annotation value into subjects (comma or newline separated).

    Returns the subjects (deduplicated, in order) and a list of problems, one per bad
    subject, each naming the subject.
    """
    subjects: list[str] = []
    problems: list[str] = []
    for part in re.split(r"[,\n]", raw):
        subject = part.strip()
        if not subject:
            continue
        problem = subject_problem(subject)
        if problem:
            problems.append(f"{subject[:80]!r}: {problem}")
        elif subject not in subjects:
            subjects.append(subject)
    if len(subjects) > MAX_SUBJECTS:
        problems.append(f"more than {MAX_SUBJECTS} subjects")
    return tuple(subjects), problems


def _role(consumer: Consumer) -> RoleWish | Invalid | None:
    role = consumer.labels.get(ROLE_LABEL, "").strip()
    publish_raw = consumer.annotations.get(PUBLISH_ANNOTATION, "")
    subscribe_raw = consumer.annotations.get(SUBSCRIBE_ANNOTATION, "")
    if not role:
        if publish_raw.strip() or subscribe_raw.strip():
            return Invalid(
                Reason.MISSING_ROLE_LABEL,
                f"annotations {PUBLISH_ANNOTATION}/{SUBSCRIBE_ANNOTATION} need the label "
                f"{ROLE_LABEL} naming the role they define",
            )
        return None
    if not _NAME_TEXT.fullmatch(role):
        return Invalid(Reason.INVALID_ROLE_LABEL, f"role {role[:64]!r} is not a valid role name")
    publish, pub_problems = parse_subjects(publish_raw)
    subscribe, sub_problems = parse_subjects(subscribe_raw)
    problems = [f"publish {p}" for p in pub_problems] + [f"subscribe {p}" for p in sub_problems]
    if problems:
        return Invalid(Reason.INVALID_SUBJECTS, "invalid subjects: " + "; ".join(problems[:5]))
    return RoleWish(name=role, publish=publish, subscribe=subscribe)


def _too_large(consumer: Consumer) -> Invalid | None:
    for key, value in consumer.annotations.items():
        if value == TOO_LARGE:
            return Invalid(
                Reason.ANNOTATION_TOO_LARGE,
                f"annotation {key} is longer than {MAX_VALUE} characters; it is ignored",
            )
    return None


def _installation(
    consumer: Consumer, default: str | None, allowed: frozenset[str]
) -> tuple[str, bool] | Invalid:
    """The installation the consumer wants, and whether it is the default."""
    labelled = consumer.labels.get(INSTALLATION_LABEL, "").strip()
    if labelled:
        if not _INSTALLATION.fullmatch(labelled) or labelled not in allowed:
            return Invalid(
                Reason.INVALID_INSTALLATION_LABEL,
                f"installation {labelled[:64]!r} is not one of the installations this "
                "operator is allowed to use (see its installations.yaml)",
            )
        return labelled, False
    if default:
        return default, True
    return Invalid(
        Reason.MISSING_INSTALLATION_LABEL,
        f"label {INSTALLATION_LABEL} is missing and the operator has no "
        "NATS_TOWER_DEFAULT_INSTALLATION",
    )


def _account(consumer: Consumer) -> str | Invalid:
    """The account: a NACK Account's own name, a pod's account label."""
    if consumer.kind == "Account":
        return consumer.name
    account = consumer.labels.get(ACCOUNT_LABEL, "").strip()
    if not account:
        return Invalid(
            Reason.MISSING_ACCOUNT_LABEL,
            f"label {ACCOUNT_LABEL} is missing: it names the NATS Tower account to use",
        )
    if not _NAME_TEXT.fullmatch(account):
        return Invalid(
            Reason.INVALID_ACCOUNT_LABEL, f"account {account[:64]!r} is not a valid name"
        )
    return account


def desired_for(  # noqa: PLR0911 - one return per rule, in the order users fix them
    consumer: Consumer,
    *,
    default_installation: str | None,
    allowed_installations: frozenset[str],
) -> Desired | Invalid:
    """Validate one consumer's labels and say which credential it wants.

    The rules run in the order a user fixes them: annotation size, Secret name,
    installation, account, credential type, role.
    """
    too_large = _too_large(consumer)
    if too_large is not None:
        return too_large
    secret = consumer.secret_name
    if not is_secret_name(secret):
        return Invalid(
            Reason.INVALID_SECRET_LABEL,
            f"{SECRET_LABEL}={secret[:64]!r} is not a valid Secret name "
            "(lowercase letters, digits, '-' and '.', starting and ending alphanumeric)",
        )
    installation = _installation(consumer, default_installation, allowed_installations)
    if isinstance(installation, Invalid):
        return installation
    account = _account(consumer)
    if isinstance(account, Invalid):
        return account
    credential_type = consumer.labels.get(CREDENTIAL_TYPE_LABEL, "").strip() or "user"
    if credential_type != "user":
        return Invalid(
            Reason.INVALID_CREDENTIAL_TYPE,
            f"credential type {credential_type[:32]!r} is not supported (only 'user')",
        )
    role = _role(consumer)
    if isinstance(role, Invalid):
        return role
    return Desired(
        installation=installation[0],
        installation_defaulted=installation[1],
        account=account,
        credential_type=credential_type,
        role=role,
    )


def combine(wishes: Iterable[tuple[Consumer, Desired]]) -> Desired | Conflict | None:
    """Merge the wishes of the valid consumers of one Secret.

    Consumers that are being deleted only count when no other consumer is left, so a
    rollout that changes the labels converges to the new pods' wish. Consumers that
    disagree on installation, account, type or role are a conflict: the Secret is left as
    it is rather than silently switched to another account.
    """
    pairs = list(wishes)
    if not pairs:
        return None
    live = [p for p in pairs if not p[0].deleting] or pairs
    identities = {desired.identity for _, desired in live}
    if len(identities) > 1:
        described = sorted(
            {
                f"{c.kind.lower()}/{c.name} wants account {d.account!r}"
                + (f" role {d.role.name!r}" if d.role else "")
                for c, d in live
            }
        )
        return Conflict(
            "objects sharing this Secret ask for different credentials: "
            + "; ".join(described[:4])
            + ("; ..." if len(described) > 4 else "")
        )
    # Prefer a wish that carries role permissions (the annotations define a new role).
    live.sort(key=lambda p: p[1].role is None or not (p[1].role.publish or p[1].role.subscribe))
    return live[0][1]
