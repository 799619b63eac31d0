"""Drift detection and remediation: the seed's AutonomousRemediator (P7.3).

`sweeping` checks Assignments against their execution plane on a timer, batched per namespace;
`detecting` and `classifying` say what drift is; `deciding`, `windows` and `backoff` are the
policy; `remediating` is the Remediation state machine and `acting` the worker's fix step.
"""
