"""An Event is posted once per transition, even when a restarted controller repeats the reconcile.

After a `kill -9` of the controller, the reconcile whose Event went out but whose status patch did not
land runs again with the same body and posts the same Event again. The controller names its Events
from the object's uid, generation and content, so the repeat is a 409 the API server refuses.
"""

from __future__ import annotations

from typing import Any

import kopf
from kubernetes import client

from controller.api.kinds import DEPLOYMENT_TASK
from controller.api.labels import CORRELATION_LABEL
from controller.api.policy import load_policy
from controller.core.outcome import EventNote, Outcome
from controller.kube.coreapps import CoreApps
from controller.operator.handlers import apply_outcome
from controller.reconcile.deps import Deps
from controller.settings import ControllerSettings

GROUP, VERSION = "ringpilot.dev", "v1alpha1"


def create_task(cluster: Any, name: str) -> kopf.Body:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "DeploymentTask",
        "metadata": {"name": name, "namespace": "default", "labels": {CORRELATION_LABEL: f"c-{name}"}},
        "spec": {"app": "web", "version": "1.0.0", "maxRing": 2},
    }
    created = client.CustomObjectsApi(cluster).create_namespaced_custom_object(
        GROUP, VERSION, "default", "deploymenttasks", body
    )
    return kopf.Body(created)


async def reconcile_once(cluster: Any, body: kopf.Body, outcome: Outcome) -> None:
    """What one controller process does for `outcome` on `body`: a fresh patch and its own clients."""
    deps = Deps(settings=ControllerSettings(), policy=load_policy())
    await apply_outcome(DEPLOYMENT_TASK, body, kopf.Patch(), deps, outcome, CoreApps(cluster))


def events_of(cluster: Any, name: str) -> list[Any]:
    listing = client.CoreV1Api(cluster).list_namespaced_event("default")
    return [e for e in listing.items if e.involved_object.name == name]


async def test_a_reconcile_repeated_after_a_restart_posts_its_event_once(cluster: Any) -> None:
    body = create_task(cluster, "resilient")
    deployed = Outcome(status={"currentRing": 1}, events=(EventNote("RingDeployed", "Ring 0 deployed"),))
    await reconcile_once(cluster, body, deployed)
    await reconcile_once(cluster, body, deployed)  # the restarted controller, same body: its patch never landed
    [event] = events_of(cluster, "resilient")
    assert event.reason == "RingDeployed"
    assert event.message == "Ring 0 deployed [correlation c-resilient]"
    assert event.involved_object.uid == body.metadata.uid
    assert event.source.component == "ringpilot-controller"


async def test_each_transition_still_gets_its_own_event(cluster: Any) -> None:
    body = create_task(cluster, "rollout")
    for ring in range(3):
        outcome = Outcome(
            status={"currentRing": ring + 1}, events=(EventNote("RingDeployed", f"Ring {ring} deployed"),)
        )
        await reconcile_once(cluster, body, outcome)
        await reconcile_once(cluster, body, outcome)
    messages = sorted(e.message for e in events_of(cluster, "rollout") if e.reason == "RingDeployed")
    assert messages == [f"Ring {ring} deployed [correlation c-rollout]" for ring in range(3)]


async def test_the_same_event_on_another_object_of_the_same_name_is_its_own(cluster: Any) -> None:
    first = create_task(cluster, "recreated")
    outcome = Outcome(status={}, events=(EventNote("Accepted", "DeploymentTask accepted"),))
    await reconcile_once(cluster, first, outcome)
    client.CustomObjectsApi(cluster).delete_namespaced_custom_object(
        GROUP, VERSION, "default", "deploymenttasks", "recreated"
    )
    second = create_task(cluster, "recreated")
    await reconcile_once(cluster, second, outcome)
    assert {e.involved_object.uid for e in events_of(cluster, "recreated")} == {first.metadata.uid, second.metadata.uid}


async def test_the_same_news_from_a_later_version_of_the_object_counts_up_on_the_one_event(cluster: Any) -> None:
    body = create_task(cluster, "retrying")
    outcome = Outcome(status={}, events=(EventNote("FixApplied", "Update applied; verifying for 1s"),))
    await reconcile_once(cluster, body, outcome)
    await reconcile_once(cluster, body, outcome)  # a repeat of the same reconcile: no change
    [event] = events_of(cluster, "retrying")
    assert event.count == 1
    later = client.CustomObjectsApi(cluster).patch_namespaced_custom_object(
        GROUP, VERSION, "default", "deploymenttasks", "retrying", {"metadata": {"labels": {"touched": "yes"}}}
    )
    await reconcile_once(cluster, kopf.Body(later), outcome)  # the same news again, from a later version
    [event] = events_of(cluster, "retrying")
    assert event.count == 2
    assert event.involved_object.resource_version == later["metadata"]["resourceVersion"]
