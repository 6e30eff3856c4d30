"""The rate-limit script's reply, checked: Redis's bytes are hostile like any other."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._config import RateLimit

__all__ = [
    "MAX_DELAY_WINDOWS",
    "MAX_FLEET",
    "MAX_REPLY_ITEM",
    "MAX_SEQ",
    "REPLY_ITEMS",
    "parse_reply",
]

#: A reply asking to wait longer than this many windows is not believed (a hostile reply
#: must not park callers for ever; a real wait this long needs 100 callers per slot).
MAX_DELAY_WINDOWS = 100
#: The script replies with this many short strings, each at most ``MAX_REPLY_ITEM`` long.
REPLY_ITEMS = 6
MAX_REPLY_ITEM = 64
#: Largest fleet size and sequence number believed from Redis (a hostile reply could claim
#: any number; a sequence number past 2**53 would no longer count exactly in Lua).
MAX_FLEET = 100_000
MAX_SEQ = 2**53


def parse_reply(raw: Any, limit: RateLimit) -> tuple[float, int, int, bool, int, int | None]:
    """The script's reply, checked: anything else is an error, never a crash."""
    if not isinstance(raw, list | tuple) or len(raw) != REPLY_ITEMS:
        raise ValueError("Redis gave an unexpected reply to the rate-limit script")
    if not all(isinstance(item, bytes | str) and len(item) <= MAX_REPLY_ITEM for item in raw):
        raise ValueError("Redis gave an unexpected reply to the rate-limit script")
    try:
        delay, fleet, seq = float(raw[0]), int(raw[1]), int(raw[2])
        capacity, learned = float(raw[4]), float(raw[5])
    except ValueError:
        raise ValueError("Redis gave a non-numeric reply to the rate-limit script") from None
    # A negative delay is a slot out of the caller's reach (nothing reserved).
    bound = MAX_DELAY_WINDOWS * limit.window
    if not (math.isfinite(delay) and -bound <= delay <= bound):
        raise ValueError("Redis asked for an implausible wait")
    if not (0 <= fleet <= MAX_FLEET and 0 <= seq <= MAX_SEQ):
        raise ValueError("Redis gave an implausible schedule")
    if not (1 <= capacity <= limit.requests and -1 <= learned <= limit.requests):
        raise ValueError("Redis gave an implausible rate")
    return (
        delay,
        max(1, fleet),
        seq,
        raw[3] in (b"1", "1"),
        int(capacity),
        int(learned) if learned >= 1 else None,
    )
