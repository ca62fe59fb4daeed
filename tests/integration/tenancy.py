"""Tenants for isolation tests: RBAC-confined identities, and spies that see what they could.

* :class:`RbacAuthorizer`: the emulator stores Roles and RoleBindings but does not evaluate
  them (its access control is a list of deny rules). This deny rule evaluates the RBAC
  objects stored in the emulator for the users it governs, as the RBAC authorizer does
  (Role/ClusterRole via RoleBinding/ClusterRoleBinding; verbs, apiGroups, resources,
  subresources, resourceNames; ``*``), and denies whatever they do not grant. Other users
  (the test's admin, the operator) are not governed.
* :func:`make_tenant`: a ServiceAccount with a Role and RoleBinding in its own namespace only
  (pods, Secrets, Events, ConfigMaps, NACK Accounts), its own token and kubeconfig.
* :class:`CredsSpy`: lists and watches every Secret of a namespace and records the subject
  (user public key) of every NATS user JWT that ever appears in any data value.
* :class:`TowerUserLog`: PocketBase's realtime stream of ``nats_auth_users`` as Tower's
  superuser: every user created or deleted in Tower, with its name, as it happens.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from nats_tower_operator.emulator.auth import Attributes
from nats_tower_operator.emulator.store import Store
from nats_tower_operator.kube import (
    SECRETS,
    Gone,
    KubeClient,
    KubeConfig,
    KubeError,
    Resource,
)
from nats_tower_operator.sandbox import Environment

RBAC = "rbac.authorization.k8s.io"
ROLES = Resource(RBAC, "v1", "roles", "Role", True)
ROLE_BINDINGS = Resource(RBAC, "v1", "rolebindings", "RoleBinding", True)
SERVICE_ACCOUNTS = Resource("", "v1", "serviceaccounts", "ServiceAccount", True)

#: What a tenant may do in its own namespace (and nowhere else).
TENANT_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": [""],
        "resources": ["pods", "secrets", "events", "configmaps"],
        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
    },
    {
        "apiGroups": ["jetstream.nats.io"],
        "resources": ["accounts"],
        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
    },
]


def _listed(values: object, value: str) -> bool:
    return isinstance(values, list) and ("*" in values or value in values)


class RbacAuthorizer:
    """An emulator deny rule: governed users may do only what stored RBAC objects grant."""

    def __init__(self, store: Store, users: Iterable[str] = ()) -> None:
        self._store = store
        self.users: set[str] = set(users)

    # The emulator's AccessControl calls ``matches`` on each rule: True denies.
    def matches(self, attrs: Attributes) -> bool:
        return attrs.user in self.users and not self.allows(attrs)

    def _objects(self, plural: str, namespace: str | None) -> list[dict[str, Any]]:
        rt = self._store.type_for(RBAC, "v1", plural)
        return list(self._store.objects(rt, namespace))

    def allows(self, attrs: Attributes) -> bool:
        """Whether a RoleBinding in the request's namespace or a ClusterRoleBinding grants it."""
        bindings = self._objects("clusterrolebindings", None)
        if attrs.namespace:
            bindings += self._objects("rolebindings", attrs.namespace)
        for binding in bindings:
            scope = binding["metadata"].get("namespace", "")
            if not any(_subject_is(s, attrs.user, scope) for s in binding.get("subjects") or ()):
                continue
            ref = binding.get("roleRef") or {}
            if ref.get("kind") == "Role":
                roles = self._objects("roles", scope)
            else:
                roles = self._objects("clusterroles", None)
            for role in roles:
                if role["metadata"]["name"] == ref.get("name") and any(
                    _rule_allows(rule, attrs) for rule in role.get("rules") or ()
                ):
                    return True
        return False


def _subject_is(subject: Mapping[str, Any], user: str, binding_namespace: str) -> bool:
    if subject.get("kind") == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return user == f"system:serviceaccount:{namespace}:{subject.get('name')}"
    return subject.get("kind") == "User" and subject.get("name") == user


def _rule_allows(rule: Mapping[str, Any], attrs: Attributes) -> bool:
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    names = rule.get("resourceNames")
    return (
        _listed(rule.get("verbs"), attrs.verb)
        and _listed(rule.get("apiGroups"), attrs.group)
        and _listed(rule.get("resources"), resource)
        and (not names or attrs.name in names)
    )


@dataclass
class Tenant:
    """A tenant's identity: a ServiceAccount confined to ``namespace`` by RBAC."""

    namespace: str
    user: str
    client: KubeClient


async def make_tenant(
    env: Environment, admin: KubeClient, authorizer: RbacAuthorizer, namespace: str
) -> Tenant:
    """ServiceAccount ``tenant`` with a Role and RoleBinding in ``namespace`` and a client."""
    name = "tenant"
    user = f"system:serviceaccount:{namespace}:{name}"
    meta = {"name": name, "namespace": namespace}
    await admin.create(
        SERVICE_ACCOUNTS,
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        namespace=namespace,
    )
    await admin.create(
        ROLES,
        {"apiVersion": f"{RBAC}/v1", "kind": "Role", "metadata": meta, "rules": TENANT_RULES},
        namespace=namespace,
    )
    await admin.create(
        ROLE_BINDINGS,
        {
            "apiVersion": f"{RBAC}/v1",
            "kind": "RoleBinding",
            "metadata": meta,
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
            "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": name},
        },
        namespace=namespace,
    )
    token = f"{namespace}-tenant-token"
    env.emulator.access.tokens[token] = user
    authorizer.users.add(user)
    path = env.emulator.write_kubeconfig(
        env.workdir / f"{namespace}-tenant-kubeconfig", namespace=namespace, token=token
    )
    return Tenant(namespace, user, KubeClient(KubeConfig.from_kubeconfig(str(path))))


# ---------------------------------------------------------------------- JWTs in Secrets

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def jwt_subjects(text: str) -> set[str]:
    """The ``sub`` of every JWT in ``text`` whose claims decode."""
    subjects = set()
    for token in _JWT.findall(text):
        payload = token.split(".")[1]
        try:
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (binascii.Error, ValueError):
            continue
        if isinstance(claims, dict) and isinstance(claims.get("sub"), str):
            subjects.add(claims["sub"])
    return subjects


def secret_jwt_subjects(secret: Mapping[str, Any]) -> set[str]:
    """JWT subjects found in any data value of a Secret."""
    subjects: set[str] = set()
    for value in (secret.get("data") or {}).values():
        try:
            text = base64.b64decode(str(value)).decode(errors="replace")
        except (binascii.Error, ValueError):
            continue
        subjects |= jwt_subjects(text)
    return subjects


@dataclass
class CredsSpy:
    """Every JWT subject that ever appears in a Secret of ``namespace`` (list, then watch)."""

    client: KubeClient
    namespace: str
    #: subject -> names of the Secrets it appeared in
    seen: dict[str, set[str]] = field(default_factory=dict)
    versions: int = 0
    _task: asyncio.Task[None] | None = None
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    def _record(self, secret: Mapping[str, Any]) -> None:
        self.versions += 1
        name = str((secret.get("metadata") or {}).get("name", ""))
        for subject in secret_jwt_subjects(secret):
            self.seen.setdefault(subject, set()).add(name)

    async def _run(self) -> None:
        while True:
            listing = await self.client.list(SECRETS, namespace=self.namespace)
            for item in listing.items:
                self._record(item)
            self._ready.set()
            rv = listing.resource_version
            with contextlib.suppress(Gone, KubeError):
                while True:
                    async with contextlib.aclosing(
                        self.client.watch(SECRETS, namespace=self.namespace, resource_version=rv)
                    ) as events:
                        async for event in events:
                            if event.resource_version:
                                rv = event.resource_version
                            if event.type in ("ADDED", "MODIFIED", "DELETED"):
                                self._record(event.object)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._ready.wait(), 10)

    async def stop(self) -> None:
        """Stop watching, after one last listing (nothing written before now is missed)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for item in (await self.client.list(SECRETS, namespace=self.namespace)).items:
            self._record(item)


# ---------------------------------------------------------------------- Tower's users


@dataclass(frozen=True)
class UserChange:
    """One user record created or deleted in Tower."""

    action: str
    id: str
    name: str
    account: str
    public_key: str
    at: float


class TowerUserLog:
    """Tower's user creations and deletions as they happen (PocketBase realtime, superuser)."""

    def __init__(self, env: Environment) -> None:
        self._env = env
        self.changes: list[UserChange] = []
        self._http = httpx.AsyncClient(base_url=env.tower.url, timeout=httpx.Timeout(10, read=None))
        self._task: asyncio.Task[None] | None = None
        self._client_id: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def _read(self) -> None:
        async with self._http.stream("GET", "/api/realtime") as response:
            event = ""
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data = json.loads(line[5:])
                    if event == "PB_CONNECT" and not self._client_id.done():
                        self._client_id.set_result(str(data["clientId"]))
                    elif event == "nats_auth_users":
                        record = data.get("record") or {}
                        self.changes.append(
                            UserChange(
                                str(data.get("action")),
                                str(record.get("id", "")),
                                str(record.get("name", "")),
                                str(record.get("account", "")),
                                str(record.get("public_key", "")),
                                time.monotonic(),
                            )
                        )

    async def start(self) -> None:
        superuser = self._env.tower.superuser
        auth = await self._http.post(
            "/api/collections/_superusers/auth-with-password",
            json={"identity": superuser.email, "password": superuser.password},
        )
        auth.raise_for_status()
        self._task = asyncio.create_task(self._read())
        client_id = await asyncio.wait_for(self._client_id, 10)
        subscribed = await self._http.post(
            "/api/realtime",
            json={"clientId": client_id, "subscriptions": ["nats_auth_users"]},
            headers={"Authorization": auth.json()["token"]},
        )
        subscribed.raise_for_status()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await self._task
        await self._http.aclose()

    def named(self, prefix: str, action: str | None = None) -> list[UserChange]:
        """Changes of users whose name starts with ``prefix`` (one action, or all)."""
        return [
            c
            for c in self.changes
            if c.name.startswith(prefix) and (action is None or c.action == action)
        ]

    def deleted_ids(self) -> set[str]:
        return {c.id for c in self.changes if c.action == "delete"}
