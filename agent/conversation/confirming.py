"""Reading a user's answer to a proposal: a yes, a no, or anything else (which goes to the model)."""

from __future__ import annotations

import re

_YES = re.compile(
    r"^\W*(yes|y|yep|yeah|yup|sure|ok|okay|confirm(?:ed)?|go ahead|do it|proceed|make it so)"
    r"(?:[\s,.!]+(?:please|go ahead|do it|thanks|thank you|confirm(?:ed)?|proceed))*\W*$"
)
_NO = re.compile(r"^\W*(no|n|nope|nah|no thanks?|no,? cancel(?: it)?|no,? don'?t|don'?t|do not)\W*$")
_NO_IF_PENDING = re.compile(r"^\W*(cancel|cancel it|abort|stop|never ?mind|forget it|decline)\W*$")


def confirmation_of(text: str, has_pending: bool) -> bool | None:
    """True for a yes, False for a no, None for anything else (which goes to the model)."""
    lowered = text.strip().lower()
    if _YES.match(lowered):
        return True
    if _NO.match(lowered) or (has_pending and _NO_IF_PENDING.match(lowered)):
        return False
    return None
