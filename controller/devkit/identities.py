"""Real identities for `ringpilot dev` and the e2e stack: certificates, tokens, kubeconfigs, RBAC, webhooks.

`prepare_identities(directory, policy)` writes (or reuses) a CA, the emulator's and the webhook server's
certificates and a static token file with one token per dev user plus a `system:masters` user.
`install_identities` applies Ringpilot's RBAC (controller/api/rbacrules.py), the components'
ServiceAccounts and the webhook configurations, and returns each component's TokenRequest token.
`write_kubeconfig` writes one context per user, the cluster-admin one current. `write_gateway_tokens`
gives the chat gateway the same dev users' tokens: hashed in its token file, in clear one file per user.
"""

from __future__ import annotations

import base64
import csv
import datetime
import hashlib
import ipaddress
import json
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from controller.api.group import GROUP
from controller.api.policy import Policy
from controller.api.rbacrules import CONTROLLER_ACCOUNT, GATEWAY_ACCOUNT, WORKER_ACCOUNT, all_rbac
from controller.devkit.processes import Child, ProcessGroup, wait_for_file

Json = dict[str, Any]
SYSTEM_NAMESPACE = "ringpilot-system"
WEBHOOK_SERVICE = "ringpilot-webhooks"
CLUSTER_ADMIN = "cluster-admin"
CLUSTER_ADMIN_USER = "ringpilot-cluster-admin"
TOKEN_SECONDS = 7 * 24 * 3600
#: The admission webhooks the controller serves: (handler id, mutating?, plurals).
WEBHOOKS: tuple[tuple[str, bool, tuple[str, ...]], ...] = (
    ("stamp-conversation", True, ("conversations",)),
    ("stamp-requests", True, ("deploymenttasks", "remediations")),
    ("stamp-decisions", True, ("changerequests",)),
    ("guard-conversation", False, ("conversations",)),
    ("guard-requests", False, ("deploymenttasks", "remediations")),
    ("guard-decisions", False, ("changerequests",)),
)


@dataclass(frozen=True)
class Identities:
    """The files `prepare_identities` wrote, and the dev users' tokens (context name → token)."""

    directory: Path
    ca_file: Path
    apiserver_cert: Path
    apiserver_key: Path
    webhook_cert: Path
    webhook_key: Path
    token_file: Path
    tokens: dict[str, str]

    @property
    def ca_bundle(self) -> str:
        return base64.b64encode(self.ca_file.read_bytes()).decode()


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _alt(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_certs(directory: Path) -> None:
    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=365)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("ringpilot-dev-ca"))
        .issuer_name(_name("ringpilot-dev-ca"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for stem, names in (
        ("apiserver", ["127.0.0.1", "localhost"]),
        ("webhook", [f"{WEBHOOK_SERVICE}.{SYSTEM_NAMESPACE}.svc", "127.0.0.1", "localhost"]),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(names[0]))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([_alt(n) for n in names]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        (directory / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file = directory / f"{stem}.key"
        key_file.write_bytes(_pem_key(key))
        key_file.chmod(0o600)


def _read_tokens(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    with path.open(newline="") as f:
        return {row[1]: row[0] for row in csv.reader(f) if len(row) >= 3}


def prepare_identities(directory: Path, policy: Policy) -> Identities:
    """Certificates and a token per dev user under `directory`; existing ones are kept (tokens survive)."""
    directory.mkdir(parents=True, exist_ok=True)
    if not (directory / "webhook.key").exists():
        _write_certs(directory)
    token_file = directory / "tokens.csv"
    tokens = _read_tokens(token_file)
    users = [CLUSTER_ADMIN_USER, *sorted(policy.roles.users)]
    for user in users:
        tokens.setdefault(user, secrets.token_urlsafe(24))
    with token_file.open("w", newline="") as f:
        writer = csv.writer(f)
        for user in users:
            writer.writerow([tokens[user], user, f"uid-{user}", "system:masters" if user == CLUSTER_ADMIN_USER else ""])
    token_file.chmod(0o600)
    return Identities(
        directory,
        directory / "ca.crt",
        directory / "apiserver.crt",
        directory / "apiserver.key",
        directory / "webhook.crt",
        directory / "webhook.key",
        token_file,
        {user: tokens[user] for user in users},
    )


def write_kubeconfig(path: Path, server: str, ca_file: Path, tokens: dict[str, str], current: str) -> Path:
    """A kubeconfig with one context (and user) per entry of `tokens`, `current` selected."""
    cluster = {"server": server, "certificate-authority-data": base64.b64encode(ca_file.read_bytes()).decode()}
    name = "ringpilot-emulator"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "current-context": current,
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": user, "user": {"token": token}} for user, token in tokens.items()],
        "contexts": [
            {"name": user, "context": {"cluster": name, "user": user, "namespace": "default"}} for user in tokens
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.tmp")
    partial.write_text(yaml.safe_dump(config, sort_keys=False))
    partial.chmod(0o600)
    partial.replace(path)
    return path


def webhook_configurations(ca_bundle: str, port: int = 443) -> list[Json]:
    """The Mutating and Validating WebhookConfigurations for the controller's webhooks (failurePolicy Fail)."""
    configs: list[Json] = []
    for kind, mutating in (("MutatingWebhookConfiguration", True), ("ValidatingWebhookConfiguration", False)):
        hooks = [
            {
                "name": f"{hook_id}.{GROUP}",
                "clientConfig": {
                    "service": {
                        "namespace": SYSTEM_NAMESPACE,
                        "name": WEBHOOK_SERVICE,
                        "path": f"/{hook_id}",
                        "port": port,
                    },
                    "caBundle": ca_bundle,
                },
                "rules": [
                    {
                        "apiGroups": [GROUP],
                        "apiVersions": ["*"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": list(plurals),
                        "scope": "Namespaced",
                    }
                ],
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "timeoutSeconds": 5,
                "admissionReviewVersions": ["v1"],
            }
            for hook_id, is_mutating, plurals in WEBHOOKS
            if is_mutating is mutating
        ]
        name = "ringpilot-stamping" if mutating else "ringpilot-guards"
        configs.append(
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": kind,
                "metadata": {"name": name},
                "webhooks": hooks,
            }
        )
    return configs


def _apply(api_client: client.ApiClient, manifest: Json) -> None:
    """Create `manifest`, or patch it when it exists (so a restarted stack picks up new rules)."""
    kind, name = manifest["kind"], manifest["metadata"]["name"]
    namespace = manifest["metadata"].get("namespace")
    core: Any = client.CoreV1Api(api_client)
    rbac: Any = client.RbacAuthorizationV1Api(api_client)
    admission: Any = client.AdmissionregistrationV1Api(api_client)
    api, noun = {
        "Namespace": (core, "namespace"),
        "ServiceAccount": (core, "namespaced_service_account"),
        "ClusterRole": (rbac, "cluster_role"),
        "ClusterRoleBinding": (rbac, "cluster_role_binding"),
        "MutatingWebhookConfiguration": (admission, "mutating_webhook_configuration"),
        "ValidatingWebhookConfiguration": (admission, "validating_webhook_configuration"),
    }[kind]
    where = (namespace,) if namespace else ()
    try:
        getattr(api, f"create_{noun}")(*where, manifest)
    except ApiException as error:
        if error.status != 409:
            raise
        getattr(api, f"patch_{noun}")(name, *where, manifest)


def install_identities(api_client: client.ApiClient, policy: Policy, ca_bundle: str) -> dict[str, str]:
    """RBAC, the components' ServiceAccounts and the webhook configurations; returns account → token."""
    _apply(api_client, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SYSTEM_NAMESPACE}})
    for account in (CONTROLLER_ACCOUNT, WORKER_ACCOUNT, GATEWAY_ACCOUNT):
        meta = {"name": account, "namespace": SYSTEM_NAMESPACE}
        _apply(api_client, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta})
    for manifest in all_rbac(policy, SYSTEM_NAMESPACE):
        _apply(api_client, manifest)
    for manifest in webhook_configurations(ca_bundle):
        _apply(api_client, manifest)
    core: Any = client.CoreV1Api(api_client)
    tokens: dict[str, str] = {}
    for account in (CONTROLLER_ACCOUNT, WORKER_ACCOUNT, GATEWAY_ACCOUNT):
        request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest"}
        answer = core.create_namespaced_service_account_token(
            account, SYSTEM_NAMESPACE, {**request, "spec": {"expirationSeconds": TOKEN_SECONDS}}
        )
        tokens[account] = str(answer.status.token)
    return tokens


def emulator_args(identities: Identities, webhook_port: int) -> list[str]:
    """The emulator's flags for auth mode: tokens, HTTPS, cluster-admin in its kubeconfig, the webhook Service."""
    return [
        "--token-file",
        str(identities.token_file),
        "--tls-cert-file",
        str(identities.apiserver_cert),
        "--tls-key-file",
        str(identities.apiserver_key),
        "--tls-ca-file",
        str(identities.ca_file),
        "--user",
        CLUSTER_ADMIN_USER,
        "--token",
        identities.tokens[CLUSTER_ADMIN_USER],
        "--webhook-service",
        f"{SYSTEM_NAMESPACE}/{WEBHOOK_SERVICE}={webhook_port}",
    ]


def component_environments(
    api_client: client.ApiClient, policy: Policy, identities: Identities, server: str, webhook_port: int
) -> dict[str, dict[str, str]]:
    """Install the identities; the variables of `controller`, `worker` and `gateway`: own kubeconfig, webhooks."""
    accounts = install_identities(api_client, policy, identities.ca_bundle)
    envs: dict[str, dict[str, str]] = {}
    for name, account in (("controller", CONTROLLER_ACCOUNT), ("worker", WORKER_ACCOUNT), ("gateway", GATEWAY_ACCOUNT)):
        path = identities.directory / f"{name}.kubeconfig"
        write_kubeconfig(path, server, identities.ca_file, {account: accounts[account]}, account)
        envs[name] = {"KUBECONFIG": str(path), "RINGPILOT_ACCOUNT": account}
    envs["controller"].update(
        {
            "RINGPILOT_WEBHOOK_PORT": str(webhook_port),
            "RINGPILOT_WEBHOOK_ADDRESS": "127.0.0.1",
            "RINGPILOT_WEBHOOK_CERT_FILE": str(identities.webhook_cert),
            "RINGPILOT_WEBHOOK_KEY_FILE": str(identities.webhook_key),
        }
    )
    return envs


def write_gateway_tokens(identities: Identities, tokens_dir: Path) -> Path:
    """The gateway's token file (sha256 → user, as `RINGPILOT_GATEWAY_TOKEN_FILE` reads it) and one file per
    dev user under `tokens_dir` holding that user's token (mode 0600); returns the token file."""
    tokens_dir.mkdir(parents=True, exist_ok=True)
    tokens_dir.chmod(0o700)
    users = {user: token for user, token in identities.tokens.items() if user != CLUSTER_ADMIN_USER}
    for user, token in users.items():
        path = tokens_dir / user
        path.write_text(token + "\n")
        path.chmod(0o600)
    entries = [{"sha256": hashlib.sha256(t.encode()).hexdigest(), "user": u, "groups": []} for u, t in users.items()]
    token_file = identities.directory / "gateway-tokens.json"
    token_file.write_text(json.dumps(entries, indent=2))
    token_file.chmod(0o600)
    return token_file


def sample_author(body: Json) -> str:
    """Who creates a sample in real life: the user it names, else the controller (ChangeRequest, Assignment)."""
    spec = body.get("spec") or {}
    named = spec.get("user") if body.get("kind") == "Conversation" else spec.get("requestedBy")
    if body.get("kind") in ("Conversation", "DeploymentTask", "Remediation") and named and named != "system:ringpilot":
        return str(named)
    return CONTROLLER_ACCOUNT


def start_secured_emulator(
    group: ProcessGroup,
    kubeconfig: Path,
    identities: Identities,
    webhook_port: int,
    log: Path,
    *,
    port: int = 0,
    extra_args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> tuple[Child, str, client.ApiClient]:
    """Spawn the emulator in auth mode, wait for it, and write the kubeconfig with a context per dev user.

    Returns the child, the server URL and a cluster-admin `ApiClient`. `ringpilot dev` and the e2e stack
    both start it this way.
    """
    emulator = group.spawn(
        "emulator",
        [
            sys.executable,
            "-m",
            "controller.devkit.emulator",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--kubeconfig",
            str(kubeconfig),
            *extra_args,
            *emulator_args(identities, webhook_port),
        ],
        env if env is not None else dict(os.environ),
        log,
    )
    wait_for_file(kubeconfig, 30, emulator)
    server: str = config.new_client_from_config(config_file=str(kubeconfig)).configuration.host
    write_kubeconfig(kubeconfig, server, identities.ca_file, identities.tokens, CLUSTER_ADMIN_USER)
    return emulator, server, config.new_client_from_config(config_file=str(kubeconfig))
