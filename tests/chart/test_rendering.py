"""The chart lints and renders with Helm's own library, refuses bad values by name, and renders valid objects."""

from __future__ import annotations

import base64
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from controller.api.policy import Policy
from tests.chart.chartrender import CHART, NAMESPACE, REQUIRED, VALUE_SETS, merged, named, of_kind, render

#: Kinds from other projects' CRDs: kubernetes-validate has no schema for them (checked by their own tests below).
FOREIGN_KINDS = {
    "TriggerAuthentication",
    "Certificate",
    "Issuer",
    "ClusterKopfPeering",
    "ScaledObject",
    "HTTPRoute",
    "ServiceMonitor",
    "PodMonitor",
    "PrometheusRule",
}
RENDERS = {name: render(values) for name, values in VALUE_SETS.items()}


def _containers(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    out = []
    for doc in of_kind(docs, "Deployment") + of_kind(docs, "Job"):
        pod = doc["spec"]["template"]["spec"]
        out.extend((doc["metadata"]["name"], pod, container) for container in pod["containers"])
    return out


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_the_chart_lints_clean(name: str) -> None:
    report = helm.lint(CHART, VALUE_SETS[name], strict=True, namespace=NAMESPACE)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [] and problems == []


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_every_built_in_object_is_valid_kubernetes(name: str) -> None:
    version = kubernetes_validate.latest_version()
    for doc in RENDERS[name]:
        if doc["kind"] in FOREIGN_KINDS:
            continue
        kubernetes_validate.validate(doc, version, strict=True)  # raises, naming the field


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({}, "existingSecret"),
        (merged(REQUIRED, {"controller": {"standby": "yes"}}), "/controller/standby"),
        (merged(REQUIRED, {"worker": {"steps": {"replicas": -1}}}), "/worker/steps/replicas"),
        (merged(REQUIRED, {"gateway": {"replica": 2}}), "replica"),
        (merged(REQUIRED, {"database": {"password": "hunter2"}}), "password"),
        (merged(REQUIRED, {"controller": {"shards": [{"name": "Bad_Name", "namespaces": ["a"]}]}}), "/name"),
        (merged(REQUIRED, {"policy": {"config": {"risk": {"autoApproveMaxScore": 101}}}}), "/policy/config/risk"),
    ],
)
def test_a_wrong_value_is_refused_at_render_time_naming_the_key(values: dict[str, Any], key: str) -> None:
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmError) as refused:
        chart.render(values, name="ringpilot", namespace=NAMESPACE)
    assert key in str(refused.value)


@pytest.mark.parametrize(
    ("values", "key"),
    [
        (merged(REQUIRED, {"rbac": {"namespaced": True}}), "rbac.namespaces"),
        (merged(REQUIRED, {"rbac": {"namespaced": True, "namespaces": ["ring-0-lab"]}}), "gateway.namespace"),
        (merged(REQUIRED, {"gateway": {"auth": {"mode": "tokens"}}}), "gateway.auth.tokens.existingSecret"),
        (merged(REQUIRED, {"gateway": {"auth": {"mode": "oidc"}}}), "gateway.auth.oidc"),
        (merged(REQUIRED, {"worker": {"turns": {"keda": {"enabled": True}}}}), "worker.kedaRedisAddress"),
        (
            merged(REQUIRED, {"controller": {"shards": [{"name": "a", "namespaces": ["x"]}] * 2}}),
            "controller.shards",
        ),
    ],
)
def test_a_rule_across_keys_is_refused_naming_the_key(values: dict[str, Any], key: str) -> None:
    with pytest.raises(helm.HelmError, match=key.replace(".", r"\.")):
        render(values)


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_no_secret_carries_a_credential_from_the_values(name: str) -> None:
    for secret in of_kind(RENDERS[name], "Secret"):
        assert secret["metadata"]["name"] == "ringpilot-webhook-tls"  # the only one: generated, not from values
        assert set(secret["data"]) == {"tls.crt", "tls.key", "ca.crt"}
    for deployment, _, container in _containers(RENDERS[name]):
        for env in container.get("env", []):
            if env["name"].endswith(("_URL", "_KEY")) and "BASE_URL" not in env["name"]:
                assert "valueFrom" in env, f"{deployment}: {env['name']} is not read from a Secret"


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_every_pod_is_restricted(name: str) -> None:
    for deployment, pod, container in _containers(RENDERS[name]):
        assert pod["securityContext"]["runAsNonRoot"] is True, deployment
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["readOnlyRootFilesystem"] is True
        assert security["capabilities"] == {"drop": ["ALL"]}
        writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
        assert "/tmp" in writable, deployment
        assert "resources" in container and container["resources"]["requests"], deployment


def test_crds_are_kept_on_uninstall_unless_told_otherwise() -> None:
    crds = of_kind(RENDERS["defaults"], "CustomResourceDefinition")
    assert len(crds) == 5
    assert all(crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"} for crd in crds)
    loose = of_kind(render(merged(REQUIRED, {"crds": {"keep": False}})), "CustomResourceDefinition")
    assert loose and all("annotations" not in crd["metadata"] for crd in loose)
    assert of_kind(render(merged(REQUIRED, {"crds": {"install": False}})), "CustomResourceDefinition") == []


def test_the_policy_config_map_names_this_releases_service_accounts() -> None:
    text = named(RENDERS["defaults"], "ConfigMap", "ringpilot-policy")["data"]["policy.yaml"]
    policy = Policy.model_validate(yaml.safe_load(text))
    assert policy.identity.controller == f"system:serviceaccount:{NAMESPACE}:ringpilot-controller"
    assert policy.identity.worker == f"system:serviceaccount:{NAMESPACE}:ringpilot-worker"
    assert policy.identity.trusted_principals == [f"system:serviceaccount:{NAMESPACE}:ringpilot-gateway"]


def test_the_webhooks_trust_the_generated_certificate_of_their_service() -> None:
    from cryptography import x509

    docs = RENDERS["defaults"]
    secret = named(docs, "Secret", "ringpilot-webhook-tls")
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert f"ringpilot-webhooks.{NAMESPACE}.svc" in names
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        for hook in of_kind(docs, kind)[0]["webhooks"]:
            assert hook["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]
            assert hook["clientConfig"]["service"]["name"] == "ringpilot-webhooks"
            assert hook["failurePolicy"] == "Fail"


def test_cert_manager_issues_the_certificate_and_injects_the_ca() -> None:
    docs = RENDERS["cert-manager"]
    assert of_kind(docs, "Secret") == []
    certificate = named(docs, "Certificate", "ringpilot-webhooks")
    assert certificate["spec"]["secretName"] == "ringpilot-webhook-tls"
    assert certificate["spec"]["issuerRef"] == {"name": "ringpilot-webhooks", "kind": "Issuer"}
    guards = named(docs, "ValidatingWebhookConfiguration", "ringpilot-guards")
    assert guards["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == f"{NAMESPACE}/ringpilot-webhooks"
    assert all("caBundle" not in hook["clientConfig"] for hook in guards["webhooks"])


def _env(deployment: dict[str, Any]) -> dict[str, Any]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_standby_and_shards_run_a_peered_pair_per_namespace_glob() -> None:
    docs = RENDERS["standby-shards"]
    early = named(docs, "Deployment", "ringpilot-controller-early")
    late = named(docs, "Deployment", "ringpilot-controller-late")
    assert early["spec"]["replicas"] == late["spec"]["replicas"] == 2
    assert _env(early)["RINGPILOT_NAMESPACE"] == "ring-0-*,ring-1-*"
    assert _env(late)["RINGPILOT_PEERING"] == "ringpilot-late"
    assert {p["metadata"]["name"] for p in of_kind(docs, "ClusterKopfPeering")} == {"ringpilot-early", "ringpilot-late"}
    assert "clusterkopfpeerings.kopf.dev" in {c["metadata"]["name"] for c in of_kind(docs, "CustomResourceDefinition")}
    rules = named(docs, "ClusterRole", "ringpilot-controller")["rules"]
    assert {
        "apiGroups": ["kopf.dev"],
        "resources": ["clusterkopfpeerings"],
        "verbs": ["get", "list", "watch", "patch"],
    } in rules
    budgets = {p["metadata"]["name"] for p in of_kind(docs, "PodDisruptionBudget")}
    assert {"ringpilot-controller-early", "ringpilot-controller-late", "ringpilot-worker-turns"} <= budgets
    turns = named(docs, "ScaledObject", "ringpilot-worker-turns")
    assert turns["spec"]["triggers"][0]["metadata"]["listName"] == "ringpilot-dramatiq:turns"
    assert turns["spec"]["triggers"][0]["authenticationRef"] == {"name": "ringpilot-redis"}
    auth = named(docs, "TriggerAuthentication", "ringpilot-redis")
    assert auth["spec"]["secretTargetRef"][0]["name"] == "ringpilot-redis-password"
    assert "replicas" not in named(docs, "Deployment", "ringpilot-worker-turns")["spec"]  # KEDA owns it


def test_workers_run_per_queue_with_prefetch_one_for_turns() -> None:
    docs = RENDERS["defaults"]
    turns = named(docs, "Deployment", "ringpilot-worker-turns")
    steps = named(docs, "Deployment", "ringpilot-worker-steps")
    assert turns["spec"]["template"]["spec"]["containers"][0]["args"] == ["worker", "--queues", "turns"]
    assert _env(turns)["RINGPILOT_QUEUE_PREFETCH"] == "1"
    assert _env(steps)["RINGPILOT_QUEUE_PREFETCH"] == "0"
    assert named(docs, "Deployment", "ringpilot-controller")["spec"]["strategy"] == {"type": "Recreate"}
    assert named(docs, "Deployment", "ringpilot-gateway")["spec"]["replicas"] == 2


def test_namespaced_rbac_keeps_only_cluster_scoped_reads_cluster_wide() -> None:
    docs = RENDERS["namespaced-rbac"]
    namespaces = VALUE_SETS["namespaced-rbac"]["rbac"]["namespaces"]
    for account in ("ringpilot-controller", "ringpilot-worker", "ringpilot-gateway"):
        cluster = named(docs, "ClusterRole", account)["rules"]
        resources = {r for rule in cluster for r in rule["resources"]}
        assert resources <= {"namespaces", "customresourcedefinitions", "tokenreviews", "users"}, account
        roles = [r for r in of_kind(docs, "Role") if r["metadata"]["name"] == account]
        assert sorted(r["metadata"]["namespace"] for r in roles) == sorted(namespaces)
    controller = named(docs, "Deployment", "ringpilot-controller")
    assert _env(controller)["RINGPILOT_NAMESPACE"] == ",".join(namespaces)
    bindings = [b for b in of_kind(docs, "RoleBinding") if b["metadata"]["name"] == "ringpilot-approver"]
    assert {b["metadata"]["namespace"] for b in bindings} == set(namespaces)


def test_user_roles_are_aggregated_and_policy_groups_bound() -> None:
    docs = RENDERS["defaults"]
    admin = named(docs, "ClusterRole", "ringpilot-admin")
    assert admin["aggregationRule"]["clusterRoleSelectors"] == [
        {"matchLabels": {"ringpilot.dev/aggregate-to-admin": "true"}}
    ]
    for name in ("ringpilot-viewer", "ringpilot-operator", "ringpilot-publisher", "ringpilot-approver"):
        named(docs, "ClusterRole", name)
    approvers = named(docs, "ClusterRoleBinding", "ringpilot-approver")
    assert approvers["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "ringpilot-cab"}
    ]


def test_optional_objects_appear_only_when_switched_on() -> None:
    off = {doc["kind"] for doc in RENDERS["defaults"]}
    on = {doc["kind"] for doc in RENDERS["everything-on"]}
    optional = {"NetworkPolicy", "ServiceMonitor", "PodMonitor", "PrometheusRule", "Ingress", "HTTPRoute"}
    assert off.isdisjoint(optional)
    assert optional <= on
    rule = named(RENDERS["everything-on"], "PrometheusRule", "ringpilot")
    assert rule["spec"]["groups"] == yaml.safe_load((CHART / "alerts" / "ringpilot-rules.yaml").read_text())["groups"]
    dashboard = named(RENDERS["everything-on"], "ConfigMap", "ringpilot-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"


def test_notes_say_how_to_reach_the_gateway_and_chat() -> None:
    with helm.Chart.load(CHART) as chart:
        notes = next(
            v
            for k, v in chart.render(REQUIRED, name="ringpilot", namespace=NAMESPACE).items()
            if k.endswith("NOTES.txt")
        )
    assert "port-forward svc/ringpilot-gateway" in notes
    assert "/api/v1/conversations" in notes
