"""Every Prometheus metric of Ringpilot, defined once (names and labels as in gateway-chart.md §4.4).

Base units (seconds), `_total` counters, low-cardinality labels only: never an object's name. The
controller and the gateway are one process each and serve the default registry; the worker's processes
write to `PROMETHEUS_MULTIPROC_DIR` (see `multiproc.py`), so every gauge here names a multiprocess mode.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from prometheus_client import Counter, Gauge, Histogram

#: Buckets of work that usually takes milliseconds but may take a minute (reconciles, steps, model calls).
WORK_BUCKETS_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: Buckets of waits measured in minutes to days (approvals, rollouts, time to repair).
WAIT_BUCKETS_SECONDS = (1.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 4 * 3600.0, 12 * 3600.0, 86400.0)

BUILD_INFO = Gauge(
    "ringpilot_build_info", "Always 1; the version of Ringpilot running", ["version"], multiprocess_mode="max"
)

# ---- controller: reconciles and admission ---------------------------------------------------------
RECONCILES = Counter("ringpilot_reconcile_total", "Reconciles by kind and result", ["kind", "result"])
RECONCILE_SECONDS = Histogram(
    "ringpilot_reconcile_duration_seconds", "Time of one reconcile", ["kind"], buckets=WORK_BUCKETS_SECONDS
)
ADMISSIONS = Counter(
    "ringpilot_admission_requests_total", "Specs admitted or refused at first visit", ["webhook", "allowed"]
)
ADMISSION_SECONDS = Histogram(
    "ringpilot_admission_duration_seconds", "Time of one admission decision", ["webhook"], buckets=WORK_BUCKETS_SECONDS
)

# ---- steps and queues -----------------------------------------------------------------------------
STEPS_ENQUEUED = Counter("ringpilot_step_enqueued_total", "Messages enqueued by queue and step", ["queue", "step"])
QUEUE_DEPTH = Gauge("ringpilot_queue_depth", "Messages waiting in a queue", ["queue"], multiprocess_mode="max")
STEP_SECONDS = Histogram(
    "ringpilot_step_duration_seconds", "Time of one step in a worker", ["step", "result"], buckets=WORK_BUCKETS_SECONDS
)

# ---- DeploymentTasks and ChangeRequests ---------------------------------------------------------
DEPLOYMENTTASKS = Gauge("ringpilot_deploymenttasks", "DeploymentTasks by phase", ["phase"], multiprocess_mode="max")
DEPLOYMENTTASK_SECONDS = Histogram(
    "ringpilot_deploymenttask_duration_seconds",
    "Creation to final phase of a DeploymentTask",
    ["result"],
    buckets=WAIT_BUCKETS_SECONDS,
)
MONITORING_OVERDUE_SECONDS = Gauge(
    "ringpilot_deploymenttask_monitoring_overdue_seconds",
    "How long the most overdue task has monitored a ring past its soak (0 when none is)",
    multiprocess_mode="max",
)
APPROVAL_WAIT_SECONDS = Histogram(
    "ringpilot_approval_wait_seconds", "ChangeRequest submitted to decided", ["result"], buckets=WAIT_BUCKETS_SECONDS
)
CHANGEREQUESTS_PENDING = Gauge(
    "ringpilot_changerequests_pending",
    "Pending ChangeRequests by blast radius (the highest ring the plan reaches)",
    ["blast_radius"],
    multiprocess_mode="max",
)
RING_GATES = Counter("ringpilot_ring_gate_total", "Ring gate verdicts", ["ring", "result"])
ROLLBACKS = Counter("ringpilot_rollbacks_total", "Rings rolled back", ["ring", "reason"])

# ---- drift and remediation ------------------------------------------------------------------------
ASSIGNMENTS = Gauge(
    "ringpilot_assignments",
    "Assignments by sync state and criticality",
    ["sync", "criticality"],
    multiprocess_mode="max",
)
DRIFT_SWEEP_SECONDS = Histogram(
    "ringpilot_drift_sweep_duration_seconds", "Time of one drift sweep", buckets=WORK_BUCKETS_SECONDS
)
REMEDIATIONS = Counter(
    "ringpilot_remediations_total", "Remediations by drift type and final outcome", ["drift_type", "outcome"]
)
REMEDIATION_SECONDS = Histogram(
    "ringpilot_remediation_seconds", "Remediation opened to verified (time to repair)", buckets=WAIT_BUCKETS_SECONDS
)

# ---- the agent ------------------------------------------------------------------------------------
CHAT_TURNS = Counter(
    "ringpilot_chat_turns_total", "Conversation turns by provider and outcome", ["provider", "outcome"]
)
CHAT_TURN_SECONDS = Histogram(
    "ringpilot_chat_turn_duration_seconds", "Time of one turn", ["provider", "outcome"], buckets=WORK_BUCKETS_SECONDS
)
LLM_REQUESTS = Counter(
    "ringpilot_llm_requests_total",
    "Model requests by provider, model and outcome (ok, unavailable, failed)",
    ["provider", "model", "outcome"],
)
LLM_REQUEST_SECONDS = Histogram(
    "ringpilot_llm_request_duration_seconds",
    "Time of one model request (gen_ai.client.operation.duration)",
    ["provider", "model"],
    buckets=WORK_BUCKETS_SECONDS,
)
LLM_TOKENS = Counter("ringpilot_llm_tokens_total", "Tokens used by model calls", ["provider", "model", "type"])
TOOL_CALLS = Counter("ringpilot_tool_calls_total", "Tool calls by tool and outcome", ["tool", "outcome"])
CIRCUIT_BREAKER_OPEN = Gauge(
    "ringpilot_circuit_breaker_open", "1 while a circuit breaker is open", ["breaker"], multiprocess_mode="max"
)

# ---- the gateway (built later) --------------------------------------------------------------------
GATEWAY_STREAMS = Gauge("ringpilot_gateway_streams", "Open gateway streams", multiprocess_mode="livesum")
GATEWAY_AUTH_FAILURES = Counter("ringpilot_gateway_auth_failures_total", "Refused gateway logins", ["method"])


def ringpilot_version() -> str:
    try:
        return version("ringpilot")
    except PackageNotFoundError:  # pragma: no cover - running from a tree without metadata
        return "unknown"


def mark_build() -> None:
    """Set `ringpilot_build_info` (each process calls it once at start)."""
    BUILD_INFO.labels(version=ringpilot_version()).set(1)
