"""What the parts of one credential reconcile share: the pass, its outcome, the memory and
the collaborators (:class:`Shared`), with the small steps several parts take."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nats_tower_operator.kube import SECRETS, KubeClient, NotFound
from nats_tower_operator.reconcile import Request, Result
from nats_tower_operator.reconcilers import desired as rules
from nats_tower_operator.reconcilers import plan as p
from nats_tower_operator.reconcilers.failures import explain
from nats_tower_operator.reconcilers.labels import Reason
from nats_tower_operator.reconcilers.notify import Notifier
from nats_tower_operator.reconcilers.quota import NamespaceQuota
from nats_tower_operator.reconcilers.secretdoc import SecretState, read_secret, summarize_secret
from nats_tower_operator.tower import CredentialIssuer, TowerError

__all__ = ["MEMO_SIZE", "Memo", "Memory", "Outcome", "Pass", "Shared"]

log = logging.getLogger(__name__)

#: How many verifications are remembered (deletions, revocations, foreign Secrets: 4096).
MEMO_SIZE = 65536


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one pass did: the work queue's :class:`Result` and whether creds changed."""

    result: Result
    action: str
    content_changed: bool = False


@dataclass(frozen=True, slots=True)
class Pass:
    """One reconcile pass: the request, what was read and who is told."""

    request: Request
    obs: p.Observation
    wish: rules.Desired | None
    targets: tuple[rules.Consumer, ...]
    defaulted: tuple[rules.Consumer, ...]


class Memo(OrderedDict[str, Any]):
    """A bounded LRU: memory stays bounded whatever the churn."""

    def __init__(self, limit: int = MEMO_SIZE) -> None:
        super().__init__()
        self._limit = limit

    def put(self, key: str, value: Any) -> None:
        """Remember ``value`` for ``key`` (the oldest entry goes past the limit)."""
        self[key] = value
        self.move_to_end(key)
        while len(self) > self._limit:
            self.popitem(last=False)


@dataclass
class Memory:
    """What the reconciler remembers between passes; none of it is needed for correctness.

    ``verified``: when Tower last confirmed a Secret; ``tombstones``: what a recently deleted
    Secret held, kept until it is restored or its user revoked; ``revoked``: users revoked
    (their tombstones are moot); ``not_ours``: Secrets found to be someone else's (read
    before a create).
    """

    verified: Memo = field(default_factory=Memo)
    tombstones: Memo = field(default_factory=lambda: Memo(4096))
    revoked: Memo = field(default_factory=lambda: Memo(4096))
    not_ours: Memo = field(default_factory=lambda: Memo(4096))


@dataclass
class Shared:
    """The collaborators of every part of the reconciler, and the steps they share."""

    kube: KubeClient
    issuer: CredentialIssuer
    tell: Notifier
    policy: p.Policy
    quota: NamespaceQuota
    clock: Callable[[], float]
    memory: Memory = field(default_factory=Memory)

    async def live(self, request: Request) -> SecretState | None:
        """The Secret as the API server has it now, summarised; None when it is gone."""
        try:
            secret = await self.kube.get(SECRETS, request.name, namespace=request.namespace)
        except NotFound:
            return None
        return read_secret(summarize_secret(secret))

    async def patch(self, step: Pass, annotations: Mapping[str, str | None]) -> None:
        """Set or remove our annotations, only on the version the pass decided on."""
        secret = step.obs.secret
        assert secret is not None
        body = {
            "metadata": {
                "annotations": dict(annotations),
                "resourceVersion": secret.metadata.get("resourceVersion"),
            }
        }
        await self.kube.patch(SECRETS, step.request.name, body, namespace=step.request.namespace)

    async def within_rate(self, step: Pass) -> Outcome | None:
        """None when the namespace may create or revoke a user now; else wait for a token."""
        delay = self.quota.take(step.request.namespace)
        if not delay:
            return None
        message = (
            f"namespace {step.request.namespace} creates or revokes NATS users faster than "
            f"{self.quota.per_minute:g} a minute (NATS_TOWER_USER_CHANGES_PER_MINUTE); this "
            "change waits its turn"
        )
        if step.targets:
            await self.tell.warn(step.targets, Reason.RATE_LIMITED, message)
        elif step.obs.secret is not None:
            await self.tell.on_secret(step.obs.secret, Reason.RATE_LIMITED, "Warning", message)
        return Outcome(Result(requeue_after=delay + p.LOOK_AGAIN_SLACK), "Wait")

    async def tell_not_owned(self, step: Pass) -> None:
        """The consumers are told the Secret of that name is someone else's."""
        await self.tell.warn(
            step.targets,
            Reason.SECRET_NOT_OWNED,
            f"Secret {step.request.name} exists and was not created by this operator; it is "
            "left unchanged. Rename the secret label or delete that Secret.",
        )

    async def tower_failed(self, step: Pass, exc: TowerError) -> Outcome:
        """Tell the consumers (see :mod:`.failures`), then wait or retry."""
        assert step.wish is not None
        failure = explain(
            exc, step.wish, cluster_id=self.policy.cluster_id, namespace=step.request.namespace
        )
        # The operator's log says what Tower said; the Event may say less (see failures.py).
        log.info("Tower: %s", exc.message, extra={"secret": str(step.request)})
        await self.tell.warn(step.targets, failure.reason, failure.message)
        if failure.retry == "retry":
            raise exc
        return Outcome(Result(requeue_after=self.policy.access_retry_interval), "Wait")
