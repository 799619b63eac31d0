"""What the Remediation engine talks to, and the one message it sends a worker.

`RemediationPorts` bundles the API server (`Cluster`), the execution planes, the ledger, the policy,
the step-claim reader and the dispatcher; only `effects.gather` and `effects.carry_out` use them.
`ActRequest` is the `remediation_act` message, keyed by `act_key` so a redelivery never acts twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from controller.api.policy import Policy
from controller.planes.catalog import PlaneSource
from controller.remediation.cluster import Cluster
from controller.remediation.ledger import Ledger
from controller.remediation.provenance import ProvenanceSource
from controller.storage.claims import StepClaim

#: Dramatiq actor that performs a fix (declared in controller/worker/actors.py).
ACT_ACTOR = "remediation_act"


def act_key(remediation_uid: str, attempt: int) -> str:
    """The step-claim key of one fix attempt (the worker claims it; the controller reads its outcome)."""
    return f"remediation/{remediation_uid}/act/{attempt}"


@dataclass(frozen=True)
class ActRequest:
    """The ids an act message carries."""

    namespace: str
    name: str
    uid: str
    attempt: int
    correlation_id: str
    assignment: str = ""

    def kwargs(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "name": self.name,
            "uid": self.uid,
            "attempt": self.attempt,
            "assignment": self.assignment,
        }


class ClaimReader(Protocol):
    async def __call__(self, key: str) -> StepClaim | None: ...


@dataclass
class RemediationPorts:
    """What the Remediation engine reads and writes; `enqueue` is None without a broker."""

    cluster: Cluster
    planes: PlaneSource
    ledger: Ledger
    policy: Policy
    claim: ClaimReader
    enqueue: Callable[[ActRequest], None] | None
    expedite: Callable[[str], None] | None = None
    #: Where the target's ring and known versions come from (None: not checked, e.g. in unit tests).
    provenance: ProvenanceSource | None = None
