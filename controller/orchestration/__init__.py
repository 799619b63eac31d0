"""Deployment orchestration: the DeploymentTask state machine and what it decides with.

Pure parts (risk model, CAB evaluation, gates, windows, evidence packs, `next_step`) take values and
return values; the I/O parts (evidence store, rollout history, the worker-side step execution, the
Assignment writer) are small adapters around them. The reconcilers in controller/reconcile/ and the
actors in controller/worker/actors.py are the only callers.
"""
