"""The NATS Tower stand-in: the real PocketBase serving NATS Tower's collections and rules.

Public entry points:

* :class:`~nats_tower_operator.towerserver.standin.TowerStandIn` - PocketBase + Tower's
  collections + the hooks' signing service, started together
  (``async with TowerStandIn.running(data_dir=..., token=...) as tower``), with
  ``tower.admin`` and ``start_nats()`` to run a real nats-server for an installation.
* :class:`~nats_tower_operator.towerserver.admin.TowerAdmin` - administration of any Tower
  over its records API (installations by public key, accounts by name).
* :class:`~nats_tower_operator.towerserver.natsserver.NatsServer` - a nats-server process.
* :mod:`~nats_tower_operator.towerserver.cli` - ``nats-tower-operator tower ...``.
"""

from nats_tower_operator.towerserver.admin import AdminError, TowerAdmin
from nats_tower_operator.towerserver.natsserver import NatsServer
from nats_tower_operator.towerserver.standin import TowerStandIn

__all__ = ["AdminError", "NatsServer", "TowerAdmin", "TowerStandIn"]
