"""Which installation a pod gets: the default, an explicit label, or none at all."""

from __future__ import annotations

from nats_tower_operator.kube import KubeClient
from nats_tower_operator.reconcilers.labels import INSTALLATION_LABEL, Reason
from nats_tower_operator.sandbox import Environment

from .harness import (
    OperatorHandle,
    assert_creds_work,
    create_pod,
    decode,
    events_for,
    get_secret,
    labelled_pod,
    tower_users,
    wait_event,
    wait_secret,
)


async def _reasons(kube: KubeClient, namespace: str, name: str) -> list[str]:
    return [str(e.get("reason")) for e in await events_for(kube, namespace, name)]


async def test_default_installation_and_explicit_label_both_get_creds(
    env: Environment, kube: KubeClient, operator: OperatorHandle
) -> None:
    key = str(env.installation["public_key"])
    await operator.start()
    await create_pod(kube, labelled_pod("implicit", secret="implicit-creds"))
    await create_pod(
        kube, labelled_pod("explicit", secret="explicit-creds", labels={INSTALLATION_LABEL: key})
    )

    implicit = await wait_secret(kube, "default", "implicit-creds")
    explicit = await wait_secret(kube, "default", "explicit-creds")
    # The default installation is said inside the one Created Event (no extra Event write).
    event = await wait_event(kube, "default", "implicit", Reason.CREATED)
    assert event["type"] == "Normal"
    assert key in event["message"] and "default" in event["message"]
    explicit_event = await wait_event(kube, "default", "explicit", Reason.CREATED)
    assert key not in explicit_event["message"]
    await operator.idle()
    assert set(await _reasons(kube, "default", "implicit")) == {Reason.CREATED}
    for secret in (implicit, explicit):
        assert decode(secret)["ACCOUNT_NAME"] == "operator"
        await assert_creds_work(secret)
    names = sorted(u["name"] for u in await tower_users(env))
    assert names == [
        "sandbox-cluster/default/explicit-creds",
        "sandbox-cluster/default/implicit-creds",
    ]


async def test_without_default_a_pod_needs_the_label(
    env: Environment, kube: KubeClient, operator: OperatorHandle
) -> None:
    key = str(env.installation["public_key"])
    await operator.start(NATS_TOWER_DEFAULT_INSTALLATION="")
    await create_pod(kube, labelled_pod("unlabelled", secret="nolabel-creds"))
    await create_pod(
        kube, labelled_pod("labelled", secret="label-creds", labels={INSTALLATION_LABEL: key})
    )

    # The installations file still lists the key, so the explicit label works.
    secret = await wait_secret(kube, "default", "label-creds")
    await assert_creds_work(secret)
    event = await wait_event(kube, "default", "unlabelled", Reason.MISSING_INSTALLATION_LABEL)
    assert event["type"] == "Warning"
    await operator.idle()

    assert await get_secret(kube, "default", "nolabel-creds") is None
    assert Reason.DEFAULT_INSTALLATION not in await _reasons(kube, "default", "unlabelled")
    assert Reason.DEFAULT_INSTALLATION not in await _reasons(kube, "default", "labelled")
    names = [u["name"] for u in await tower_users(env)]
    assert names == ["sandbox-cluster/default/label-creds"]
