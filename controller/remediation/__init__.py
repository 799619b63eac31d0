"""Drift detection and remediation: the seed's AutonomousRemediator (P7.3).

`sweeping` checks Assignments against their execution plane on a timer, batched per namespace;
`detecting` and `classifying` say what drift is; `deciding` and `backoff` are the policy; the
Remediation engine is `effects.gather` -> `progression.next_step` (pure) -> `effects.carry_out`, and
`acting` is the worker's fix step.
"""
