"""Opening a Remediation for drift the sweep found (drift mode Enforce).

The ledger notes the Remediation before it is created, so the controller can tell a Remediation
the drift loop opened (`requestedBy: system:ringpilot`) from one a person created claiming that name.
The Remediation is owned by its Assignment, so deleting the Assignment collects it.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from controller.api.assignment import Assignment
from controller.api.identity import SYSTEM_USER
from controller.api.labels import CORRELATION_LABEL
from controller.api.meta import ObjectMeta, new_correlation_id
from controller.api.remediation import Remediation, RemediationSpec, RemediationStatus
from controller.api.semantics import FIX_FOR_DRIFT
from controller.remediation.classifying import Finding
from controller.remediation.cluster import Cluster
from controller.remediation.ledger import Ledger, RecordInfo

logger = logging.getLogger(__name__)


def remediation_name(assignment: str, finding: Finding) -> str:
    """`<assignment>-<drift type>-<5 hex>`, a valid object name."""
    return f"{assignment[:200].rstrip('-.')}-{finding.type.value.lower()}-{uuid.uuid4().hex[:5]}"


async def open_remediation(cluster: Cluster, ledger: Ledger, asg: Assignment, finding: Finding, now: datetime) -> str:
    """Create the Remediation for `finding` (noted in the ledger first, so its origin is provable)."""
    namespace = asg.metadata.namespace or "default"
    name = remediation_name(asg.metadata.name, finding)
    correlation = new_correlation_id()
    await ledger.note_opened(
        RecordInfo(
            namespace=namespace,
            name=name,
            correlation_id=correlation,
            opened_at=now,
            assignment_uid=asg.metadata.uid,
            drift_type=finding.type.value,
            opened_by_loop=True,
        )
    )
    remediation = Remediation(
        metadata=ObjectMeta(name=name, namespace=namespace, labels={CORRELATION_LABEL: correlation}),
        spec=RemediationSpec(
            assignment=asg.metadata.name,
            drift_type=finding.type,
            action=FIX_FOR_DRIFT.get(finding.type),
            requested_by=SYSTEM_USER,
            reason=f"Drift detected: {finding.detail}"[:2048],
            correlation_id=correlation,
        ),
        status=RemediationStatus(),
    )
    body = remediation.to_wire()
    if asg.metadata.uid:
        body["metadata"]["ownerReferences"] = [
            {
                "apiVersion": asg.api_version,
                "kind": "Assignment",
                "name": asg.metadata.name,
                "uid": asg.metadata.uid,
            }
        ]
    await cluster.create_remediation(namespace, body)
    logger.info(
        "Opened Remediation %s/%s for %s on Assignment %s (correlation %s)",
        namespace,
        name,
        finding.type.value,
        asg.metadata.name,
        correlation,
    )
    return name
