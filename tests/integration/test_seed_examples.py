"""The two examples of the NATS Tower docs, end to end."""

from __future__ import annotations

from nats_tower_operator.kube import KubeClient
from nats_tower_operator.sandbox import Environment, seed_examples

from .harness import OperatorHandle, assert_creds_work, decode, tower_users, wait_event, wait_secret


async def test_seed_pod_and_nack_account_get_working_credentials(
    env: Environment, kube: KubeClient, operator: OperatorHandle
) -> None:
    await operator.start()
    for resource, manifest in seed_examples(str(env.installation["public_key"])):
        await kube.create(resource, manifest, namespace="default")

    pod_secret = await wait_secret(kube, "default", "mycreds")
    nack_secret = await wait_secret(kube, "default", "nack")
    for secret in (pod_secret, nack_secret):
        values = decode(secret)
        assert values["ACCOUNT_NAME"] == "operator"
        assert values["URLS"] == env.nats.client_url
        assert secret["type"] == "Opaque"
        assert secret["metadata"]["labels"]["nats-tower.com/nats-tower-secret"] == "true"
        assert secret["metadata"]["labels"]["nats-tower.com/nats-tower-credential-type"] == "user"
        await assert_creds_work(secret)
    await wait_event(kube, "default", "test", "Created")
    names = sorted(u["name"] for u in await tower_users(env))
    assert names == ["sandbox-cluster/default/mycreds", "sandbox-cluster/default/nack"]
