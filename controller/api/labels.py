"""Every label, annotation and finalizer Ringpilot reads or writes, each defined once.

A name says what the key labels: `RING_NAMESPACE_LABEL` marks a namespace with its ring,
`APP_NAME_LABEL` marks a workload with its app, `OBJECT_APP_LABEL` marks our own objects with the app
they concern. Two keys may share a string (`ringpilot.dev/ring`) yet label different things.
"""

from __future__ import annotations

from controller.api.group import GROUP

#: On every Ringpilot object: the correlation ID that threads turns, tasks, messages and audit rows.
CORRELATION_LABEL = f"{GROUP}/correlation-id"
#: On a namespace: the ring (`0`..`4`) its workloads belong to.
RING_NAMESPACE_LABEL = f"{GROUP}/ring"
#: On a workload (Deployment): the app it runs (the Kubernetes recommended label).
APP_NAME_LABEL = "app.kubernetes.io/name"
#: On DeploymentTasks and Assignments: the app they deploy or hold the desired state of.
OBJECT_APP_LABEL = f"{GROUP}/app"
#: On Assignments: the ring of the target they describe.
ASSIGNMENT_RING_LABEL = f"{GROUP}/ring"
#: On ChangeRequests: the DeploymentTask they are the CAB record of.
CHANGE_TASK_LABEL = f"{GROUP}/task"
#: The finalizer the operator puts on the objects it must see deleted.
FINALIZER = f"{GROUP}/finalizer"
#: Prefix of Kopf's own progress and diff-base annotations on our objects.
KOPF_ANNOTATION_PREFIX = GROUP

#: Prefix of the failure injections the simulated kubelet (dev and tests only) reads off a workload.
KUBELET_ANNOTATION_PREFIX = f"kubelet.{GROUP}"
#: `CrashLoop` or `NeverReady`: fail the workload while set.
KUBELET_FAIL_ANNOTATION = f"{KUBELET_ANNOTATION_PREFIX}/fail"
#: Fail only while the workload's image has this tag.
KUBELET_FAIL_VERSION_ANNOTATION = f"{KUBELET_ANNOTATION_PREFIX}/fail-version"
#: Fail until the workload is restarted (Deployments only).
KUBELET_FAIL_UNTIL_RESTART_ANNOTATION = f"{KUBELET_ANNOTATION_PREFIX}/fail-until-restart"

#: On every Ringpilot object created through the API: who created it, as the admission webhook saw them
#: (`kubernetes:<user>`, or `<principal>:<user>` when a trusted principal vouched for the user).
CREATED_BY_ANNOTATION = f"{GROUP}/created-by"

#: On a DeploymentTask: its risk inputs as JSON, declared by a principal such as the CI (docs/domain.md §3.2).
RISK_INPUTS_ANNOTATION = f"{GROUP}/risk-inputs"
#: On a DeploymentTask: who wrote the risk-inputs annotation, as the admission webhook saw them.
RISK_DECLARED_BY_ANNOTATION = f"{GROUP}/risk-declared-by"
