"""Health probes and Prometheus metrics of a running operator, over HTTP."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from nats_tower_operator.kube import PODS, KubeClient
from nats_tower_operator.sandbox import Environment, seed_examples

from .harness import OperatorHandle, create_pod, labelled_pod, wait_event, wait_secret, wait_until


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(
    metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return sum(v for (n, ls), v in metrics.items() if n == name and set(labels.items()) <= set(ls))


async def test_probes_and_metrics(
    env: Environment, kube: KubeClient, operator: OperatorHandle
) -> None:
    op = await operator.start(NATS_TOWER_REVOKE_GRACE_PERIOD="0.5")
    base = f"http://127.0.0.1:{op.health.bound_port}"
    async with httpx.AsyncClient(base_url=base) as http:
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/readyz")).status_code == 200

        for resource, manifest in seed_examples(str(env.installation["public_key"])):
            await kube.create(resource, manifest, namespace="default")
        await create_pod(kube, labelled_pod("bad", secret="Bad_Name"))
        await wait_secret(kube, "default", "mycreds")
        await wait_secret(kube, "default", "nack")
        await wait_event(kube, "default", "bad", "InvalidSecretLabel")
        await operator.idle()

        async def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
            response = await http.get("/metrics")
            assert response.status_code == 200
            return samples(response.text)

        metrics = await scrape()
        prefix = "nats_tower_operator"
        assert value(metrics, f"{prefix}_managed_secrets", namespace="default") == 2
        assert value(metrics, f"{prefix}_reconcile_total", result="success") >= 2
        assert value(metrics, f"{prefix}_events_total", type="Normal", reason="Created") == 2
        assert value(metrics, f"{prefix}_events_total", reason="InvalidSecretLabel") >= 1
        assert value(metrics, f"{prefix}_tower_requests_total") >= 2
        assert value(metrics, f"{prefix}_workqueue_depth") == 0

        await kube.delete(PODS, "test", namespace="default")

        async def one_left() -> bool:
            scraped = await scrape()
            return value(scraped, f"{prefix}_managed_secrets", namespace="default") == 1

        await wait_until(one_left, what="managed Secrets gauge down to 1 after revocation")
