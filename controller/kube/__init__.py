"""The Kubernetes access layer: the only package of ours (besides the dev kit) that imports `kubernetes`.

`client` holds credentials and the async client for our kinds, `coreapps` the few core/apps objects
we read and write, `workloads` the rule that says which Deployments are workloads, `errors` the one
translation of failed API calls.
"""
