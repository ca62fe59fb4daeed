"""The reconcile contract shared by the runtime and the reconcilers.

A :class:`Request` names one object (namespace + name), never its content: a reconciler
reads the current state itself, converges it, and returns. This is controller-runtime's
level-triggered contract:

* returning ``Result()`` means done (the key is forgotten by the rate limiter);
* returning ``Result(requeue_after=s)`` means "look again after *s* seconds";
* raising any exception except :class:`TerminalError` means "retry with per-key backoff";
* raising :class:`TerminalError` means "do not retry until the object changes".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["Reconciler", "Request", "Result", "TerminalError"]


@dataclass(frozen=True, slots=True)
class Request:
    """The key of one reconcile: which object to look at."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


@dataclass(frozen=True, slots=True)
class Result:
    """What a successful reconcile asks of the work queue."""

    requeue_after: float | None = None


class TerminalError(Exception):
    """The object is wrong in a way retrying cannot fix; wait for it to change."""


class Reconciler(Protocol):
    """Something that converges one object; the runtime calls it from its workers."""

    async def reconcile(self, request: Request) -> Result:
        """Read the current state of ``request``'s object and converge it."""
        ...
