"""Rate-limit headers: ``Retry-After``, ``X-RateLimit-*`` and the IETF ``RateLimit-*``.

HelpCrunch documents none of them; a server (or a proxy) that sends any sets the limiter's
pace directly (``RateLimiter.on_rate_limit_headers``). Everything here is total and bounded:
any value a server may send gives ``None`` for that field, never an exception.
"""

from __future__ import annotations

import email.utils
import itertools
import math
import re
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import attrs

from .._config import optional_count, optional_seconds

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import httpx

__all__ = [
    "RateLimitHeaders",
    "carries_rate_limit_headers",
    "parse_rate_limit_headers",
    "parse_retry_after",
]

#: Longest ``Retry-After`` value read: an HTTP date is 29 characters.
_MAX_RETRY_AFTER_LENGTH = 64
#: The names (prefixes, lower case) of every header ``parse_rate_limit_headers`` reads.
_PREFIXES = (b"ratelimit", b"x-ratelimit", b"retry-after")


def carries_rate_limit_headers(headers: httpx.Headers) -> bool:
    """Whether an answer has any header ``parse_rate_limit_headers`` reads: one cheap look.

    HelpCrunch documents no such header, so most answers have none.
    """
    return any(name.lower().startswith(_PREFIXES) for name, _ in headers.raw)


#: Longest header value read; anything past it is ignored (a hostile server's bytes).
HEADER_MAX_CHARS = 256
#: Largest request count believed from a header.
HEADER_MAX_REQUESTS = 10**9
#: Longest reset or window believed from a header, in seconds (a day).
HEADER_MAX_SECONDS = 86_400.0
#: A reset value above this is a Unix time, not a number of seconds (some servers send one).
EPOCH_THRESHOLD = 1e9


@attrs.frozen
class RateLimitHeaders:
    """What a server's rate-limit headers said (every field ``None`` when absent or garbled).

    Fields are checked when built: counts are ints >= 0, seconds finite numbers >= 0 (a
    ``TypeError``/``ValueError`` naming the field otherwise).

    Attributes:
        limit: Requests allowed per ``window``.
        remaining: Requests left in the current window.
        reset: Seconds until the window resets (or until ``remaining`` refills).
        window: The window of ``limit`` in seconds, when the server named it (``w=``).
        retry_after: Seconds to wait, from ``Retry-After``.
    """

    limit: int | None = attrs.field(default=None, validator=optional_count)
    remaining: int | None = attrs.field(default=None, validator=optional_count)
    reset: float | None = attrs.field(default=None, validator=optional_seconds)
    window: float | None = attrs.field(default=None, validator=optional_seconds)
    retry_after: float | None = attrs.field(default=None, validator=optional_seconds)


_INT = re.compile(r"\s*(\d{1,12})(?=\s*(?:$|;))")
_NUMBER = re.compile(r"\s*(\d{1,15}(?:\.\d{1,9})?)\s*$")
_PARAM = re.compile(r"\s*([A-Za-z][A-Za-z0-9_-]{0,31})\s*=\s*\"?([0-9.]{1,32})\"?\s*$")


def _count(text: str | None) -> int | None:
    match = _INT.match(text.split(",", 1)[0]) if text is not None else None
    if match is None:
        return None
    value = int(match.group(1))
    return value if value <= HEADER_MAX_REQUESTS else None


def _seconds(text: str | None, *, now: float, epoch: bool = False) -> float | None:
    match = _NUMBER.match(text.split(",", 1)[0]) if text is not None else None
    if match is None:
        return None
    value = float(match.group(1))
    if epoch and value > EPOCH_THRESHOLD:
        value = max(0.0, value - now)
    return value if value <= HEADER_MAX_SECONDS else None


def _params(text: str | None) -> dict[str, str]:
    """``key=value`` pairs of a structured header's first item (``"default";q=100;w=60``)."""
    if text is None:
        return {}
    found: dict[str, str] = {}
    for part in re.split(r"[;,]", text)[:16]:
        match = _PARAM.match(part)
        if match is not None:
            found.setdefault(match.group(1).lower(), match.group(2))
        elif _INT.fullmatch(part.strip()) and "limit" not in found:
            found["limit"] = part.strip()  # the older draft's bare "100;w=60"
    return found


def parse_rate_limit_headers(
    headers: Mapping[str, Any], *, now: float | None = None
) -> RateLimitHeaders | None:
    """Read rate-limit headers: ``Retry-After``, ``X-RateLimit-*``, IETF ``RateLimit-*``.

    Understands ``Retry-After`` (seconds or an HTTP date), ``X-RateLimit-Limit`` /
    ``-Remaining`` / ``-Reset`` (reset in seconds or as a Unix time), the IETF draft's
    ``RateLimit-Limit`` / ``-Remaining`` / ``-Reset``, ``RateLimit-Policy`` (``100;w=60`` or
    ``"default";q=100;w=60``) and ``RateLimit`` (``limit=100, remaining=5, reset=3`` or
    ``"default";r=5;t=3``). The IETF headers win over the ``X-`` ones.

    Total and bounded: any value a server may send (garbled, huge, negative, not text)
    gives ``None`` for that field, never an exception; only the first
    ``HEADER_MAX_CHARS`` characters of a value are read.

    Args:
        headers: Response headers (an ``httpx.Headers`` or any mapping; names in any case).
        now: The current Unix time (for HTTP dates and Unix-time resets); ``time.time()``.

    Returns:
        What the headers said, or ``None`` when there were none of these headers.

    Examples:
        >>> parse_rate_limit_headers({"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "0"})
        RateLimitHeaders(limit=60, remaining=0, reset=None, window=None, retry_after=None)
    """
    wanted = {
        "retry-after",
        "ratelimit",
        "ratelimit-policy",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    }
    found: dict[str, str] = {}
    try:
        items: Sequence[tuple[object, object]] = list(itertools.islice(headers.items(), 1000))
    except Exception:  # noqa: BLE001 - a hostile mapping is "no headers", never a crash
        return None
    for name, value in items:
        if isinstance(name, bytes):
            name = name.decode("latin-1")  # noqa: PLW2901
        if isinstance(value, bytes):
            value = value.decode("latin-1")  # noqa: PLW2901
        if isinstance(name, str) and isinstance(value, str) and name.lower() in wanted:
            found.setdefault(name.lower(), value[:HEADER_MAX_CHARS])
    if not found:
        return None
    current = time.time() if now is None else now
    structured = _params(found.get("ratelimit"))
    policy = _params(found.get("ratelimit-policy"))

    def first(*values: float | None) -> Any:
        return next((v for v in values if v is not None), None)

    limit = first(
        _count(found.get("ratelimit-limit")),
        _count(structured.get("limit")),
        _count(policy.get("q")),
        _count(policy.get("limit")),
        _count(found.get("x-ratelimit-limit")),
    )
    remaining = first(
        _count(found.get("ratelimit-remaining")),
        _count(structured.get("remaining")),
        _count(structured.get("r")),
        _count(found.get("x-ratelimit-remaining")),
    )
    reset = first(
        _seconds(found.get("ratelimit-reset"), now=current),
        _seconds(structured.get("reset"), now=current),
        _seconds(structured.get("t"), now=current),
        _seconds(found.get("x-ratelimit-reset"), now=current, epoch=True),
    )
    window = _seconds(policy.get("w"), now=current)
    retry_after = parse_retry_after(found.get("retry-after"), now=current)
    if retry_after is not None and retry_after > HEADER_MAX_SECONDS:
        retry_after = None
    return RateLimitHeaders(
        limit=limit,
        remaining=remaining,
        reset=reset,
        window=window or None,
        retry_after=retry_after,
    )


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), or ``None``.

    Anything that is neither (too long, not finite, an impossible date) is ``None``.
    """
    if not isinstance(value, str) or len(value) > _MAX_RETRY_AFTER_LENGTH:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            current = datetime.now(timezone.utc).timestamp() if now is None else now
            seconds = when.timestamp() - current
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)
