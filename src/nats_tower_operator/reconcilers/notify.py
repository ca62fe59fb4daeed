"""Telling people what the operator did or could not do: Events (and a log line for warnings).

Events go to the objects that asked for the credential (at most :data:`MAX_EVENT_TARGETS`
of them) or to the managed Secret itself; the Event recorder aggregates repeats.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from nats_tower_operator.kube import EventRecorder
from nats_tower_operator.reconcilers.desired import Consumer
from nats_tower_operator.reconcilers.secretdoc import SecretState

__all__ = ["MAX_EVENT_TARGETS", "Notifier"]

log = logging.getLogger(__name__)

#: The most consumers one outcome is told to (a Deployment of 500 replicas shares a Secret).
MAX_EVENT_TARGETS = 10

EventType = Literal["Normal", "Warning"]


def _involved(consumer: Consumer) -> dict[str, Any]:
    return {
        "apiVersion": consumer.api_version,
        "kind": consumer.kind,
        "metadata": {
            "name": consumer.name,
            "namespace": consumer.namespace,
            "uid": consumer.uid,
            "resourceVersion": consumer.resource_version,
        },
    }


class Notifier:
    """Records Events for the reconciler; ``on_event(type, reason)`` counts them."""

    def __init__(
        self, events: EventRecorder, *, on_event: Callable[[str, str], None] | None = None
    ) -> None:
        self._events = events
        self._on_event = on_event

    async def warn(self, targets: Sequence[Consumer], reason: str, message: str) -> None:
        """A Warning on the consumers, and a log line."""
        log.warning(
            "%s: %s",
            reason,
            message,
            extra={"objects": ",".join(f"{c.namespace}/{c.name}" for c in targets[:3])},
        )
        await self._record(targets, "Warning", reason, message)

    async def normal(self, targets: Sequence[Consumer], reason: str, message: str) -> None:
        """A Normal Event on the consumers."""
        await self._record(targets, "Normal", reason, message)

    async def on_secret(
        self, secret: SecretState | Mapping[str, str], reason: str, type_: EventType, message: str
    ) -> None:
        """An Event on the managed Secret itself (nothing else uses it any more).

        ``secret`` may be just ``{"namespace", "name"}`` for a Secret already deleted.
        """
        if type_ == "Warning":
            log.warning("%s: %s", reason, message)
        meta = dict(secret.metadata) if isinstance(secret, SecretState) else dict(secret)
        involved = {"apiVersion": "v1", "kind": "Secret", "metadata": meta}
        await self._events.record(involved, type_, reason, message)
        if self._on_event is not None:
            self._on_event(type_, reason)

    async def _record(
        self, targets: Sequence[Consumer], type_: EventType, reason: str, message: str
    ) -> None:
        for consumer in targets[:MAX_EVENT_TARGETS]:
            await self._events.record(_involved(consumer), type_, reason, message)
        if self._on_event is not None and targets:
            self._on_event(type_, reason)
