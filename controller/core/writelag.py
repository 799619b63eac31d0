"""How long a status write may still be on its way: Kopf's second request after a handler returns.

Kopf applies a handler's annotations and its status patch in two requests after the handler returns,
so a timer, a retry or a queued event may run the next pass on a body that carries neither yet, or
only the annotations. For `STATUS_WRITE_LAG_SECONDS` after a write, a body whose status is still the
one that write started from is taken for the write on its way, not for a write that was lost: the
status memo shows the written status instead (`controller/reconcile/statusmemo.py`), and a
Remediation waits before repairing a status older than its ledger (`controller/remediation/progression.py`).
Past it, the body is trusted, so a lost write is seen as lost and repaired.
"""

from __future__ import annotations

STATUS_WRITE_LAG_SECONDS = 10.0
