"""Issuing and revoking Tower user credentials for the reconcilers (the use case layer).

:class:`CredentialIssuer` turns a :class:`CredentialSpec` into an
:class:`IssuedCredential` with as few Tower requests as possible:

1. installation by public key, account by name, access link for (cluster, namespace,
   account): TTL-cached and single-flight, so a burst for one account costs one of each;
   "not found" and "not allowed" answers are cached for the shorter ``negative_ttl``;
2. the user by name through a :class:`~.cache.BatchLoader` over ``find_users``: a
   burst's concurrent lookups for one account share a few list requests;
3. when the user is missing: the role (found or created once, single-flight), then the
   user is created. A create answered ``validation_not_unique`` (another creator won the
   race, or a retried create that had already succeeded) falls back to one find.

With ``caching=False`` every step goes to Tower (the Go operator's behaviour, for
benchmarks). Users and their creds are never cached.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import TypeVar

from .cache import BatchLoader, TTLCache
from .client import FIND_USERS_CHUNK, TowerClient
from .errors import (
    AccessNotAllowed,
    AccountNotFound,
    InstallationNotFound,
    RoleNotFound,
    TowerBadRequest,
)
from .models import Account, Installation, Role, User, UserSummary

__all__ = ["CredentialIssuer", "CredentialSpec", "IssuedCredential", "RoleSpec"]

log = logging.getLogger(__name__)

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class RoleSpec:
    """A role requested for a user; the subjects are used only to create a missing role."""

    name: str
    publish: tuple[str, ...] = ()
    subscribe: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CredentialSpec:
    """What one credential should be: where it lives in Tower and who may use it."""

    installation: str  #: the installation's (Tower operator's) public key
    account: str
    namespace: str
    user_name: str
    description: str = ""
    role: RoleSpec | None = None


@dataclass(frozen=True, slots=True)
class IssuedCredential:
    """The creds of a Tower user and what a Secret needs besides them."""

    user_id: str
    user_public_key: str
    creds: str = field(repr=False)
    urls: tuple[str, ...]
    account_name: str
    account_id: str
    installation: str
    #: True when this call created the user, False when it already existed.
    created: bool
    #: True when an existing user is signed by another role than the one requested.
    role_mismatch: bool = False
    #: The role that already existed when the request also named subjects that differ
    #: (they only define a role that does not exist yet; Tower's role wins).
    role_differs: Role | None = None


class CredentialIssuer:
    """Issues, looks up and revokes Tower users for one Kubernetes cluster."""

    def __init__(
        self,
        client: TowerClient,
        *,
        cluster_id: str,
        lookup_ttl: float = 30.0,
        negative_ttl: float = 5.0,
        caching: bool = True,
        batch_window: float = 0.005,
    ) -> None:
        if not cluster_id:
            raise ValueError("cluster_id must not be empty")
        self._client = client
        self._cluster = cluster_id
        self._caching = caching
        self._negative_ttl = negative_ttl
        self._lookup_ttl = lookup_ttl
        self._installations: TTLCache[str, Installation] = TTLCache(
            ttl=lookup_ttl, negative_ttl=negative_ttl, negative=(InstallationNotFound,)
        )
        self._accounts: TTLCache[tuple[str, str], Account] = TTLCache(
            ttl=lookup_ttl, negative_ttl=negative_ttl, negative=(AccountNotFound,)
        )
        self._access: TTLCache[tuple[str, str], bool] = TTLCache(ttl=lookup_ttl)
        self._roles: TTLCache[tuple[str, str], Role | None] = TTLCache(ttl=lookup_ttl)
        # single-flight only (ttl 0): concurrent creators of one missing role share a create
        self._role_creates: TTLCache[tuple[str, str], Role] = TTLCache(ttl=0)
        self._users: BatchLoader[str, str, User] = BatchLoader(
            client.find_users, window=batch_window, max_batch=FIND_USERS_CHUNK
        )
        # Names -> ids of our users per (account, "cluster/namespace/") prefix: one light
        # listing serves every lookup of a burst in that namespace. Names under the prefix
        # are only ever created by this issuer, which adds them as it creates them.
        self._user_names: TTLCache[tuple[str, str], dict[str, str]] = TTLCache(ttl=lookup_ttl)

    @property
    def cluster_id(self) -> str:
        """The cluster ID access links are checked for."""
        return self._cluster

    def invalidate(self) -> None:
        """Drop every cached lookup (installations, accounts, access links, roles)."""
        for cache in (self._installations, self._accounts, self._access, self._roles):
            cache.invalidate()
        self._role_creates.invalidate()
        self._user_names.invalidate()

    # ------------------------------------------------------------------ public use cases

    async def issue(self, spec: CredentialSpec) -> IssuedCredential:
        """Find or create the user described by ``spec`` and return its creds.

        Raises InstallationNotFound, AccountNotFound, AccessNotAllowed, RoleNotFound, or
        a transport/HTTP :class:`~.errors.TowerError`.
        """
        installation = await self._installation(spec.installation)
        account = await self._account(installation, spec.account)
        if not await self._access_allowed(account, spec.namespace):
            raise AccessNotAllowed(self._cluster, spec.namespace, account.name)

        user = await self._find_user(account.id, spec.user_name)
        created = False
        role = await self._ensure_role(account, spec.role) if spec.role else None
        if user is None:
            user, created = await self._create_user(account, spec, role)
        role_mismatch = user.signing_key_id != (role.id if role else None)
        return IssuedCredential(
            user_id=user.id,
            user_public_key=user.public_key,
            creds=user.creds,
            urls=installation.urls,
            account_name=account.name,
            account_id=account.id,
            installation=installation.public_key,
            created=created,
            role_mismatch=role_mismatch,
            role_differs=role if role and spec.role and _subjects_differ(role, spec.role) else None,
        )

    async def revoke(self, user_id: str) -> bool:
        """Delete the Tower user (Tower revokes it); False when it was already gone.

        "Already gone" is proven (the token works); a wrong token raises TowerUnauthorized.
        """
        deleted = await self._client.delete_user(user_id)
        log.debug("Tower user %s %s", user_id, "deleted" if deleted else "was already gone")
        return deleted

    async def users_named(self, installation: str, account: str, prefix: str) -> list[UserSummary]:
        """Every user of the account whose name starts with ``prefix`` (never cached)."""
        inst = await self._installation(installation)
        acct = await self._account(inst, account)
        return await self._client.list_users(acct.id, name_prefix=prefix)

    async def confirm_unlinked(self, installation: str, account: str, namespace: str) -> bool:
        """Whether Tower says, right now, that ``namespace`` may not use ``account``.

        Nothing cached is used: the installation and the account are read again (positive
        answers with the current token), then the access link, whose absence the client
        proves. True is therefore safe ground for revoking and deleting; a wrong token
        raises TowerUnauthorized, a deleted installation or account their NotFound errors.
        """
        inst = await self._client.get_installation(installation)
        acct = await self._client.get_account(inst.id, account)
        allowed = await self._client.has_access(acct.id, self._cluster, namespace)
        if allowed:
            self._access.put((acct.id, namespace), True)
        return not allowed

    async def lookup_user(self, user_id: str) -> User | None:
        """The Tower user with this id, or None (never cached)."""
        return await self._client.get_user(user_id)

    async def access_allowed(self, installation: str, account: str, namespace: str) -> bool:
        """Whether ``namespace`` of this cluster may use ``account`` (cached).

        Raises InstallationNotFound / AccountNotFound when those do not exist.
        """
        inst = await self._installation(installation)
        acct = await self._account(inst, account)
        return await self._access_allowed(acct, namespace)

    async def account(self, installation: str, account: str) -> Account:
        """The account ``account`` of the installation with this public key (cached)."""
        return await self._account(await self._installation(installation), account)

    async def installation_urls(self, installation: str) -> tuple[str, ...]:
        """The client URLs of the installation with this public key (cached)."""
        return (await self._installation(installation)).urls

    # ------------------------------------------------------------------ steps

    async def _cached(
        self,
        cache: TTLCache[K, T],
        key: K,
        loader: Callable[[], Awaitable[T]],
        ttl_for: Callable[[T], float] | None = None,
    ) -> T:
        if not self._caching:
            return await loader()
        return await cache.get_or_load(key, loader, ttl_for=ttl_for)

    async def _installation(self, public_key: str) -> Installation:
        return await self._cached(
            self._installations,
            public_key,
            lambda: self._client.get_installation(public_key),
        )

    async def _account(self, installation: Installation, name: str) -> Account:
        async def load() -> Account:
            try:
                return await self._client.get_account(installation.id, name)
            except AccountNotFound as exc:
                # name the installation by its public key, which is what users know
                raise AccountNotFound(installation.public_key, name) from exc

        return await self._cached(self._accounts, (installation.id, name), load)

    async def _access_allowed(self, account: Account, namespace: str) -> bool:
        return await self._cached(
            self._access,
            (account.id, namespace),
            lambda: self._client.has_access(account.id, self._cluster, namespace),
            ttl_for=lambda allowed: self._lookup_ttl if allowed else self._negative_ttl,
        )

    async def _find_role(self, account: Account, name: str) -> Role | None:
        return await self._cached(
            self._roles,
            (account.id, name),
            lambda: self._client.find_role(account.id, name),
            ttl_for=lambda role: self._lookup_ttl if role else self._negative_ttl,
        )

    async def _ensure_role(self, account: Account, spec: RoleSpec) -> Role:
        """The role named in ``spec``, created from its subjects when missing."""
        role = await self._find_role(account, spec.name)
        if role is not None:
            return role
        if not spec.publish and not spec.subscribe:
            raise RoleNotFound(account.name, spec.name)

        async def create() -> Role:
            try:
                created = await self._client.create_role(
                    account.id,
                    role=spec.name,
                    publish=spec.publish,
                    subscribe=spec.subscribe,
                    retry_safe=True,
                )
                log.info("created Tower role %s in account %s", spec.name, account.name)
            except TowerBadRequest as exc:
                if not exc.not_unique:
                    raise
                found = await self._client.find_role(account.id, spec.name)
                if found is None:
                    raise
                created = found
            if self._caching:
                self._roles.put((account.id, spec.name), created)
            return created

        if not self._caching:
            return await create()
        return await self._role_creates.get_or_load((account.id, spec.name), create)

    async def _find_user(self, account_id: str, name: str) -> User | None:
        if not self._caching:
            return (await self._client.find_users(account_id, [name])).get(name)
        prefix = name[: name.rfind("/") + 1]
        if not prefix:
            return await self._users.load(account_id, name)
        names = await self._user_names.get_or_load(
            (account_id, prefix),
            lambda: self._client.list_user_names(account_id, name_prefix=prefix),
        )
        user_id = names.get(name)
        if user_id is None:
            return None
        user = await self._client.get_user(user_id)
        if user is None or user.name != name:
            names.pop(name, None)  # deleted (or renamed) since the listing
            return None
        return user

    def _remember_user(self, account_id: str, user: User) -> None:
        prefix = user.name[: user.name.rfind("/") + 1]
        names = self._user_names.peek((account_id, prefix)) if prefix else None
        if names is not None:
            names[user.name] = user.id

    async def _create_user(
        self, account: Account, spec: CredentialSpec, role: Role | None
    ) -> tuple[User, bool]:
        """Create the user; on a lost race (not unique) return the winner's user instead."""
        try:
            user = await self._client.create_user(
                account.id,
                name=spec.user_name,
                description=spec.description,
                signing_key_id=role.id if role else None,
                retry_safe=True,
            )
        except TowerBadRequest as exc:
            if not exc.not_unique:
                raise
            found = (await self._client.find_users(account.id, [spec.user_name])).get(
                spec.user_name
            )
            if found is None:
                raise
            return found, False
        log.debug("created Tower user %s (%s) in account %s", user.id, spec.user_name, account.name)
        if self._caching:
            self._remember_user(account.id, user)
        return user, True


def _subjects_differ(role: Role, spec: RoleSpec) -> bool:
    """Whether ``spec`` names subjects and they are not the existing role's."""
    if not spec.publish and not spec.subscribe:
        return False
    return (set(role.publish), set(role.subscribe)) != (set(spec.publish), set(spec.subscribe))
