"""Who the controller is when it acts on its own: the one user name in audit rows, evidence and specs.

Every automatic action (a step a worker ran, a Remediation the drift loop opened, an accepted spec)
is recorded under `SYSTEM_USER`; a person's name never starts with `system:`.
"""

from __future__ import annotations

#: The controller's own identity, for the controller and its workers alike.
SYSTEM_USER = "system:ringpilot"
