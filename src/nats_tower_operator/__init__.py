"""nats-tower-operator: NATS credentials from NATS Tower, managed as Kubernetes Secrets."""

__version__ = "0.1.0"
