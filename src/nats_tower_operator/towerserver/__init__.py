"""A NATS Tower-compatible server: PocketBase records API, real NATS JWTs, SQLite, nats-server sync.

Public entry points:

* :class:`~nats_tower_operator.towerserver.server.TowerServer` - the whole server in-process
  (``async with TowerServer.running(db_path=..., token=...) as srv``) with admin helpers and
  ``start_nats()`` to run a real nats-server for an installation.
* :class:`~nats_tower_operator.towerserver.service.TowerService` - the use cases.
* :class:`~nats_tower_operator.towerserver.natsserver.NatsServer` - a nats-server process.
* :mod:`~nats_tower_operator.towerserver.cli` - ``nats-tower-operator tower ...``.
"""

from nats_tower_operator.towerserver.natsserver import NatsServer
from nats_tower_operator.towerserver.server import TowerServer
from nats_tower_operator.towerserver.service import ListQuery, TowerService

__all__ = ["ListQuery", "NatsServer", "TowerServer", "TowerService"]
