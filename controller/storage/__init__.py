"""PostgreSQL and Redis access for the controller and the workers.

`db` builds connection pools, `migrating` applies the versioned schema, `audit` and `claims` are the
repositories every step uses, and `cache` builds Redis clients. Nothing here knows about Kopf.
"""
