# nats-tower-operator container image.
#   docker build -t ghcr.io/nats-tower/nats-tower-operator:<tag> .
# Two stages: the build stage installs the package into a virtualenv; the final stage copies
# only that virtualenv, runs as an unprivileged user and needs no writable filesystem
# (deployment/kustomize runs it with readOnlyRootFilesystem).

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/nats-tower-operator
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/nats-tower-operator/bin/pip install --no-cache-dir .

FROM python:3.11-slim
LABEL org.opencontainers.image.title="nats-tower-operator" \
      org.opencontainers.image.description="Kubernetes operator for NATS credentials issued by NATS Tower" \
      org.opencontainers.image.source="https://github.com/nats-tower/nats-tower-operator" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/nats-tower-operator/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /opt/nats-tower-operator /opt/nats-tower-operator
# 65532: the conventional "nonroot" uid/gid; the Deployment's securityContext uses the same.
USER 65532:65532
# /healthz, /readyz, /metrics (NATS_TOWER_HEALTH_ADDR, default 0.0.0.0:8080)
EXPOSE 8080
ENTRYPOINT ["nats-tower-operator", "run"]
