"""An in-process Kubernetes API server subset, faithful enough to test an operator.

No real kube-apiserver (nor etcd) can be installed on the machines this project is built
and tested on, so the operator, the sandbox and the benchmarks talk to this emulator
instead, over real HTTP on loopback, with real clients (``kubectl``, kubernetes_asyncio, our
own client). We considered extending ``kmock`` 0.8 (an aiohttp mock server with a small
in-memory Kubernetes emulator) and rejected it: it ignores ``labelSelector``, serves a
placeholder list resourceVersion (so no watch resume and no ``410 Gone``), never rejects a
stale update with ``409 Conflict`` and has no ownerReference garbage collection. Those are
exactly the semantics an operator's correctness depends on, and bolting them onto kmock
would have meant replacing most of it, so we built our own on aiohttp (already a dependency):
a store with a single cluster-wide resourceVersion, a bounded per-resource event log for
watch resume and 410, Kubernetes' selector, patch, finalizer, garbage collection and
Status-error semantics, discovery documents good enough for kubectl, and fault injection.

Modules, one job each: :mod:`.store` (objects and write semantics), :mod:`.watch` (event
log, watchers), :mod:`.selectors`, :mod:`.patch` and :mod:`.schema` (pure functions),
:mod:`.resources` and :mod:`.crd` (served types and their rules), :mod:`.gc` (garbage
collector and namespace lifecycle), :mod:`.representation` (Accept negotiation, Table,
PartialObjectMetadata), :mod:`.protobuf` (the protobuf request bodies kubectl's typed
clients send), :mod:`.discovery`, :mod:`.app` (HTTP), :mod:`.faults`, :mod:`.audit`,
:mod:`.auth`, :mod:`.tls`, :mod:`.server` (the :class:`Emulator` object) and :mod:`.cli`
(``nats-tower-operator dev-cluster``).

Known simplifications: server-side apply is approximated as create-or-merge without
managedFields; no admission plugins beyond namespace lifecycle (e.g. no service account
check) and no kubelet or workload controllers (pods stay ``Pending`` and are deleted at
once; Deployments, Services and RBAC objects are only stored); ``fieldValidation`` is not
enforced for built-in types; protobuf request bodies are understood for Namespace, Secret,
ConfigMap, ServiceAccount and SelfSubjectAccessReview only (responses are always JSON);
the controllers (GC, namespace, CRD cleanup) act synchronously within the request that
triggers them; TLS (optional) uses a throwaway self-signed certificate.
"""

from nats_tower_operator.emulator.audit import AuditLog, AuditRecord
from nats_tower_operator.emulator.crd import load_crd_file, load_nack_accounts_crd
from nats_tower_operator.emulator.errors import ApiError
from nats_tower_operator.emulator.faults import Faults
from nats_tower_operator.emulator.server import Emulator
from nats_tower_operator.emulator.store import Store

__all__ = [
    "ApiError",
    "AuditLog",
    "AuditRecord",
    "Emulator",
    "Faults",
    "Store",
    "load_crd_file",
    "load_nack_accounts_crd",
]
