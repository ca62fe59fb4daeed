"""Who is calling and what they may do: bearer tokens to user names, optional deny rules.

Every request is accepted by default; a token found in the token map is recorded under its
user name (others as ``default_user``). Deny rules make requests answer ``403 Forbidden``
with the real server's message and make SelfSubjectAccessReviews answer ``allowed: false``,
so tests can exercise an operator's handling of missing permissions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from nats_tower_operator.emulator import errors
from nats_tower_operator.emulator.errors import ApiError

__all__ = ["AccessControl", "Attributes", "DenyRule"]


@dataclass(frozen=True, slots=True)
class Attributes:
    """What a request does, in RBAC terms."""

    user: str
    verb: str
    group: str
    resource: str
    subresource: str = ""
    namespace: str = ""
    name: str = ""


@dataclass(frozen=True, slots=True)
class DenyRule:
    """Deny matching requests; ``None`` fields match anything."""

    verb: str | None = None
    group: str | None = None
    resource: str | None = None
    namespace: str | None = None
    user: str | None = None

    def matches(self, attrs: Attributes) -> bool:
        """Return whether the rule applies to ``attrs``."""
        resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
        return (
            (self.verb is None or self.verb == attrs.verb)
            and (self.group is None or self.group == attrs.group)
            and (self.resource is None or self.resource in (resource, attrs.resource))
            and (self.namespace is None or self.namespace == attrs.namespace)
            and (self.user is None or self.user == attrs.user)
        )


class AccessControl:
    """Token-to-user mapping and deny rules."""

    def __init__(
        self, *, tokens: Mapping[str, str] | None = None, default_user: str = "emulator-admin"
    ) -> None:
        self.tokens: dict[str, str] = dict(tokens or {})
        self.default_user = default_user
        self.rules: list[DenyRule] = []

    def user_for(self, authorization: str | None) -> str:
        """Return the user name for an ``Authorization`` header value."""
        if authorization and authorization.lower().startswith("bearer "):
            token = authorization[7:].strip()
            return self.tokens.get(token, self.default_user)
        return self.default_user if authorization else "system:anonymous"

    def deny(
        self,
        *,
        verb: str | None = None,
        group: str | None = None,
        resource: str | None = None,
        namespace: str | None = None,
        user: str | None = None,
    ) -> DenyRule:
        """Add a deny rule and return it (remove it with :meth:`allow`)."""
        rule = DenyRule(verb, group, resource, namespace, user)
        self.rules.append(rule)
        return rule

    def allow(self, rule: DenyRule | None = None) -> None:
        """Remove one deny rule, or all of them."""
        if rule is None:
            self.rules.clear()
        elif rule in self.rules:
            self.rules.remove(rule)

    def allowed(self, attrs: Attributes) -> bool:
        """Return whether no deny rule matches."""
        return not any(rule.matches(attrs) for rule in self.rules)

    def check(self, attrs: Attributes) -> None:
        """Raise the real server's 403 when ``attrs`` is denied."""
        if self.allowed(attrs):
            return
        resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
        scope = (
            f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
        )
        why = (
            f'User "{attrs.user}" cannot {attrs.verb} resource "{resource}" in API group '
            f'"{attrs.group}" {scope}'
        )
        raise forbidden_error(attrs, why)


def forbidden_error(attrs: Attributes, why: str) -> ApiError:
    """The 403 Status for a denied request."""
    return errors.forbidden(attrs.group, attrs.resource, attrs.name, why)
