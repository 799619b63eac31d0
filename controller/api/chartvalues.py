"""The Helm chart's values as pydantic models: the one source of `values.schema.json` and `values.yaml`.

`ChartValues` describes every key of `charts/ringpilot/values.yaml` (camelCase, unknown keys refused at
each level), with the defaults the chart ships; `ringpilot crds` writes the schema Helm checks at render
time and the defaults from it, and a test fails when the committed files differ. It lives in `api`
because it is a boundary model like the CRs, and it embeds the policy model (`policy.config`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from controller.api.policy import Policy

DnsLabel = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
#: A Kopf namespace glob: a name with `*`/`?`, optionally negated with a leading `!`.
NamespaceGlob = Annotated[str, StringConstraints(pattern=r"^!?[a-z0-9*?]([-a-z0-9*?]{0,61}[a-z0-9*?])?$")]
#: The name of an existing Secret: required, so it has no usable default.
_SECRET_NAME = r"^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$"
SecretName = Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=_SECRET_NAME)]
Port = Annotated[int, Field(ge=1, le=65535)]
Free = dict[str, Any]  # a Kubernetes object passed through as is (resources, affinity, ...)


class Values(BaseModel):
    """Base of every section: camelCase keys, unknown keys refused."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


def _resources(cpu: str, memory: str, cpu_limit: str | None = None) -> Free:
    limits: Free = {"memory": memory}
    if cpu_limit:
        limits["cpu"] = cpu_limit
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": limits}


class Image(Values):
    """The one image every component runs (the Dockerfile in the repository)."""

    repository: str = Field("ghcr.io/ringpilot/ringpilot", min_length=1, description="Image repository")
    tag: str = Field("", description="Image tag; empty uses the chart's appVersion")
    pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field("IfNotPresent", description="imagePullPolicy")


class Crds(Values):
    """The CRDs are templates, so upgrades change them; `keep` leaves them (and every object) on uninstall."""

    install: bool = Field(True, description="Render the CRDs (off when they are managed elsewhere)")
    keep: bool = Field(True, description="Annotate them helm.sh/resource-policy: keep")


class Rbac(Values):
    """Roles of the components and the user-facing ClusterRoles (controller/api/rbacrules.py)."""

    namespaced: bool = Field(
        False, description="Roles in `rbac.namespaces` instead of ClusterRoles (cluster-scoped reads stay)"
    )
    namespaces: list[DnsLabel] = Field(
        default_factory=list, description="Namespaces the components may act in when `rbac.namespaced`"
    )
    user_roles: bool = Field(True, description="Install ringpilot-viewer, -operator, -publisher, -approver, -admin")
    bind_policy_subjects: bool = Field(
        True, description="Bind the policy's users and groups (policy.config.roles) to their role"
    )


class SecretRef(Values):
    """A credential kept in a Secret the installer creates; the chart never holds its value."""

    existing_secret: SecretName = Field("", description="Name of the Secret (required)")
    key: str = Field(..., min_length=1, description="Key in the Secret")


class Database(SecretRef):
    """PostgreSQL: a DSN in an existing Secret."""

    key: str = Field("database-url", min_length=1, description="Key holding postgresql://user:pass@host/db")


class Redis(SecretRef):
    """Redis: a URL in an existing Secret."""

    key: str = Field("redis-url", min_length=1, description="Key holding redis://:pass@host:6379/0")


class Llm(Values):
    """The language model the worker's chat agent uses; no Secret means the offline router answers."""

    provider: Literal["", "anthropic", "openai", "offline"] = Field("", description="Empty: chosen by the keys")
    model: str = Field("", description="Model id; empty uses the provider's default")
    existing_secret: str = Field("", description="Secret with the API keys (optional)")
    anthropic_api_key_key: str = Field("anthropic-api-key", min_length=1, description="Key of the Anthropic key")
    openai_api_key_key: str = Field("", description="Key of the OpenAI-compatible bearer token (optional)")
    openai_base_url: str = Field("", description="Base URL of an OpenAI-compatible API")
    anthropic_base_url: str = Field("", description="Anthropic API base URL (proxies)")


class PolicyValues(Values):
    """The policy ConfigMap; the chart sets `identity` to its own ServiceAccounts."""

    existing_config_map: str = Field("", description="Use this ConfigMap (key policy.yaml) instead of `config`")
    config: Policy = Field(default_factory=lambda: chart_policy(), description="The policy file's content")


class CertManager(Values):
    """Webhook certificates from cert-manager instead of Helm's genCA."""

    enabled: bool = Field(False, description="Issue the webhook certificate with cert-manager")
    issuer_ref: Free = Field(
        default_factory=dict, description="Issuer to use; empty creates a self-signed Issuer for the webhooks"
    )


class Webhook(Values):
    """The admission webhooks the controller serves (stamping users, guarding CAB decisions)."""

    port: Port = Field(9443, description="Container port of the webhook server")
    timeout_seconds: int = Field(5, ge=1, le=30, description="API server's timeout per call")
    cert_validity_days: int = Field(3650, ge=1, description="Validity of the Helm-generated certificate")
    cert_manager: CertManager = Field(default_factory=CertManager)


class Shard(Values):
    """A controller Deployment that watches only the namespaces its globs match."""

    name: DnsLabel = Field(..., description="Suffix of the Deployment and of its peering")
    namespaces: list[NamespaceGlob] = Field(..., min_length=1, description="Namespace names or globs")


class Scheduling(Values):
    """Where and how big the pods of a component are."""

    resources: Free = Field(default_factory=lambda: _resources("100m", "256Mi"), description="Container resources")
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Free] = Field(default_factory=list)
    affinity: Free = Field(default_factory=dict)
    pod_annotations: dict[str, str] = Field(default_factory=dict)


class Controller(Scheduling):
    """The Kopf operator (reconciles, admission webhooks, drift sweep)."""

    standby: bool = Field(False, description="Two replicas with Kopf peering: one works, one waits")
    shards: list[Shard] = Field(default_factory=list, description="One Deployment per shard; empty: one for all")
    namespaces: list[NamespaceGlob] = Field(
        default_factory=list, description="Namespaces the (unsharded) controller watches; empty: all"
    )
    resync_interval_seconds: float = Field(60.0, gt=0, description="RINGPILOT_RESYNC_INTERVAL_SECONDS")
    liveness_port: Port = Field(8081, description="Port of /healthz")
    metrics_port: Port = Field(9090, description="Port of /metrics")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO")


class Keda(Values):
    """A KEDA ScaledObject on the queue's Redis list."""

    enabled: bool = Field(False)
    min_replicas: int = Field(1, ge=0, description="Keep ≥ 1 for turns: no cold start in a chat")
    max_replicas: int = Field(10, ge=1)
    list_length: int = Field(5, ge=1, description="Messages waiting per replica before it scales out")


class Queue(Scheduling):
    """A worker Deployment that consumes one dramatiq queue."""

    enabled: bool = Field(True)
    replicas: int = Field(1, ge=0)
    processes: int = Field(1, ge=1)
    threads: int = Field(8, ge=1)
    prefetch: int = Field(0, ge=0, description="Messages taken ahead per process; 0: dramatiq's threads x 2")
    keda: Keda = Field(default_factory=Keda)


class Worker(Values):
    """The dramatiq workers: one Deployment per queue."""

    turns: Queue = Field(default_factory=lambda: Queue(threads=4, prefetch=1), description="Chat turns")
    steps: Queue = Field(default_factory=Queue, description="DeploymentTask and Remediation steps")
    metrics_port: Port = Field(9191)
    keda_redis_address: str = Field("", description="host:port of Redis for KEDA (needed when a keda is on)")
    keda_redis_database: int = Field(0, ge=0)
    keda_redis_password_secret: str = Field("", description="Secret with Redis's password for KEDA (optional)")
    keda_redis_password_key: str = Field("redis-password", min_length=1, description="Key of that password")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO")


class TokenAuth(Values):
    """Gateway tokens: a Secret with a `tokens.yaml` of {sha256, user, groups}."""

    existing_secret: str = Field("", description="Required when gateway.auth.mode is tokens")
    key: str = Field("tokens.yaml", min_length=1)


class Oidc(Values):
    """OIDC: JWTs verified against the issuer's keys."""

    issuer: str = Field("")
    audience: str = Field("")
    jwks_url: str = Field("")
    username_claim: str = Field("sub", min_length=1)
    groups_claim: str = Field("groups", min_length=1)


class GatewayAuth(Values):
    """How the gateway authenticates its callers."""

    mode: Literal["kubernetes", "tokens", "oidc"] = Field("kubernetes", description="kubernetes: TokenReview")
    tokens: TokenAuth = Field(default_factory=TokenAuth)
    oidc: Oidc = Field(default_factory=Oidc)


class Exposure(Values):
    """An Ingress or an HTTPRoute in front of the gateway's Service."""

    enabled: bool = Field(False)
    class_name: str = Field("", description="Ingress: ingressClassName")
    hosts: list[str] = Field(default_factory=list)
    tls_secret: str = Field("", description="Ingress: Secret with the TLS certificate")
    parent_refs: list[Free] = Field(default_factory=list, description="HTTPRoute: the Gateways to attach to")
    annotations: dict[str, str] = Field(default_factory=dict)


class Gateway(Scheduling):
    """The chat gateway: stateless, N replicas behind one Service."""

    enabled: bool = Field(True)
    replicas: int = Field(2, ge=0)
    port: Port = Field(8080)
    namespace: DnsLabel = Field("default", description="Namespace of new Conversations")
    auth: GatewayAuth = Field(default_factory=GatewayAuth)
    service_port: Port = Field(80)
    ingress: Exposure = Field(default_factory=Exposure)
    http_route: Exposure = Field(default_factory=Exposure)


class Disruption(Values):
    """PodDisruptionBudgets of the components that run more than one pod."""

    enabled: bool = Field(True)
    min_available: int = Field(1, ge=0)


class Monitoring(Values):
    """Prometheus Operator objects and the Grafana dashboard, each off by default."""

    service_monitor: bool = Field(False, description="ServiceMonitors (controller, gateway), PodMonitor (workers)")
    interval: str = Field("30s", pattern=r"^[0-9]+(ms|s|m|h)$")
    prometheus_rule: bool = Field(False, description="The alerts of charts/ringpilot/alerts")
    dashboard: bool = Field(False, description="The Grafana dashboard as a ConfigMap (label grafana_dashboard)")
    labels: dict[str, str] = Field(default_factory=dict, description="Extra labels for the Prometheus selectors")


class NetworkPolicyValues(Values):
    """NetworkPolicies (off by default: a wrong one drops traffic)."""

    enabled: bool = Field(False)
    gateway_from: list[Free] = Field(default_factory=list, description="Peers allowed to reach the gateway")
    metrics_from: list[Free] = Field(default_factory=list, description="Peers allowed to scrape metrics")


class ChartValues(Values):
    """Every value of the ringpilot chart."""

    image: Image = Field(default_factory=Image)
    image_pull_secrets: list[Free] = Field(default_factory=list)
    crds: Crds = Field(default_factory=Crds)
    rbac: Rbac = Field(default_factory=Rbac)
    database: Database = Field(default_factory=lambda: Database.model_construct(existing_secret=""))
    redis: Redis = Field(default_factory=lambda: Redis.model_construct(existing_secret=""))
    llm: Llm = Field(default_factory=Llm)
    policy: PolicyValues = Field(default_factory=PolicyValues)
    webhook: Webhook = Field(default_factory=Webhook)
    controller: Controller = Field(default_factory=Controller)
    worker: Worker = Field(default_factory=Worker)
    gateway: Gateway = Field(default_factory=Gateway)
    migrate: bool = Field(True, description="Run `ringpilot migrate` as a pre-install/pre-upgrade hook")
    pdb: Disruption = Field(default_factory=Disruption)
    monitoring: Monitoring = Field(default_factory=Monitoring)
    network_policy: NetworkPolicyValues = Field(default_factory=NetworkPolicyValues)


#: Production soak times per ring (docs/domain.md §2.2); the shipped dev policy shortens them for demos.
PRODUCTION_SOAK_SECONDS = (86_400, 172_800, 259_200, 604_800, 604_800)


def chart_policy() -> Policy:
    """The chart's default policy: the shipped one with production soaks and remediation timings, no dev users.

    The remediation timings are the model's defaults (docs/domain.md §6): the shipped dev policy checks a
    critical Assignment every minute and backs off for one, which at 10,000 targets is ~75 drift checks a second.
    No identity: the chart sets its own.
    """
    from controller.api.policy import load_policy

    shipped = load_policy(None)
    rings = [
        ring.model_copy(update={"min_soak_seconds": soak})
        for ring, soak in zip(shipped.rings, PRODUCTION_SOAK_SECONDS, strict=True)
    ]
    roles = shipped.roles.model_copy(update={"users": {}})
    identity = type(shipped.identity)()
    remediation = type(shipped.remediation)()
    update = {"version": "chart-1", "rings": rings, "roles": roles, "identity": identity, "remediation": remediation}
    return shipped.model_copy(update=update)
