"""What the client needs from a rate limiter, declared whole, and checked once per limiter."""

from __future__ import annotations

import hashlib
import inspect
import math
from typing import TYPE_CHECKING, Protocol, cast, runtime_checkable

from .._config import finite_number, is_number
from .._errors import LimiterTimeoutError

if TYPE_CHECKING:
    from ._gate import Priority
    from ._headers import RateLimitHeaders

__all__ = [
    "RateLimiter",
    "api_key_fingerprint",
    "check_deadline",
    "check_pause",
    "refusal",
    "validate_limiter",
]


@runtime_checkable
class RateLimiter(Protocol):
    """What the client needs from a rate limiter; pass any implementation as ``rate_limit=``.

    ``LocalRateLimiter`` (one process) and ``helpcrunch_async.redis.RedisRateLimiter`` (a
    fleet) implement it; so can your own. The client checks an implementation once, when it
    is built, and then calls:

    - ``bind_key(fingerprint)`` once, with ``api_key_fingerprint(key)``: a limit belongs to an
      API key, so a limiter may keep one schedule per key without ever seeing the key (and
      should refuse a second, different key);
    - ``acquire(priority=..., deadline=...)`` before every attempt of every request (retries
      included: the server counts rejected requests too). ``priority`` is the call's traffic
      class: queued ``"interactive"`` callers go before every queued ``"background"`` one.
      ``deadline`` is the ``anyio.current_time()`` by which the grant must come, or ``None``;
      past it the limiter raises ``LimiterTimeoutError`` (with ``retry_after`` when it can
      tell) having taken nothing. The client passes valid values only.
    - ``on_rate_limited(pause, sent_ago=...)`` on a 429: hold back every caller for
      ``pause`` seconds (the server's ``Retry-After``, already capped by the client, to be
      applied unchanged), or for the limiter's own estimate when ``pause`` is ``None``;
      return the pause in force from now, in seconds (the ``throttled`` event and
      ``stats()`` report it). ``sent_ago`` is how many seconds ago the refused attempt was
      granted (an age, not a clock reading, so a fleet's limiter can use it whatever its
      clock): a limiter tells by it a request sent before its pause began (in flight when
      the pause started: the same episode) from one sent after, and which window the server
      judged. A 429 says the key's window is full, not who filled it: a limiter should not
      take one for a lower limit;
    - ``on_rate_limit_headers(headers)`` for any answer that carried rate-limit headers,
      before ``on_rate_limited`` when it is a 429.

    ``current_rate`` and ``learned_limit`` feed ``HelpCrunch.stats()``, the events and the
    CLI's advice: ``learned_limit`` should be ``None`` unless the limiter has evidence that
    the key allows less than configured, and still holds to it.
    Implementations must be safe to cancel: a caller cancelled inside ``acquire()`` must not
    cost later callers more than a bounded wait.
    """

    @property
    def current_rate(self) -> int:
        """Requests per window allowed now."""
        ...

    @property
    def learned_limit(self) -> int | None:
        """Requests per window learned to be the key's real limit, when below the configured."""
        ...

    def bind_key(self, fingerprint: str) -> None:
        """Serve the API key of this fingerprint (called once by each client given this limiter)."""
        ...

    async def acquire(
        self, *, priority: Priority = "interactive", deadline: float | None = None
    ) -> None:
        """Wait until one more request may be sent, and count it as sent."""
        ...

    async def on_rate_limited(self, pause: float | None, *, sent_ago: float | None = None) -> float:
        """Hold every caller back after a 429; return the pause in force, in seconds."""
        ...

    async def on_rate_limit_headers(self, headers: RateLimitHeaders) -> None:
        """Apply what an answer's rate-limit headers said."""
        ...


#: The coroutine methods of the protocol.
_ASYNC_METHODS = ("acquire", "on_rate_limited", "on_rate_limit_headers")


def validate_limiter(limiter: object) -> RateLimiter:
    """``limiter`` if it implements the whole ``RateLimiter`` protocol; else a ``TypeError``.

    Checked once, when a client is built, so that a limiter missing a part fails at once
    rather than on the first 429.
    """
    missing = [
        name
        for name in (*_ASYNC_METHODS, "bind_key", "current_rate", "learned_limit")
        if not hasattr(type(limiter), name)
    ]
    not_async = [
        name
        for name in _ASYNC_METHODS
        if name not in missing and not inspect.iscoroutinefunction(getattr(type(limiter), name))
    ]
    # The keyword the client passes on every 429: checked now, not at the first 429.
    penalty = getattr(type(limiter), "on_rate_limited", None)
    deaf = penalty is not None and not _takes_keyword(penalty, "sent_ago")
    # Checked on the class: isinstance() against the protocol would read the properties,
    # which a limiter may compute from the event loop's clock.
    if missing or not_async or deaf:
        problems = [f"missing {', '.join(missing)}"] if missing else []
        problems += [f"{name} must be an async method" for name in not_async]
        problems += ["on_rate_limited must take the keyword argument sent_ago"] if deaf else []
        raise TypeError(
            f"rate_limit must be a RateLimit, None, or a RateLimiter: "
            f"{type(limiter).__name__} is not one ({'; '.join(problems)})"
        )
    return cast("RateLimiter", limiter)  # checked member by member above


def _takes_keyword(function: object, name: str) -> bool:
    """Whether ``function`` accepts ``name=...`` (by name, or through ``**kwargs``)."""
    try:
        parameters = inspect.signature(function).parameters.values()  # type: ignore[arg-type]
    except (TypeError, ValueError):  # no signature to read (a C callable): trust it
        return True
    return any(
        p.kind is p.VAR_KEYWORD
        or (p.name == name and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))
        for p in parameters
    )


def api_key_fingerprint(api_key: str) -> str:
    """A stable, non-reversible name for an API key (32 hex digits of a SHA-256)."""
    return hashlib.sha256(b"helpcrunch-async:" + api_key.encode()).hexdigest()[:32]


def check_deadline(deadline: float | None) -> float | None:
    """A limiter's ``deadline``: ``None`` or a number on ``anyio.current_time()``'s clock.

    Raises:
        TypeError: not a number.
        ValueError: an int too large for a float, or NaN.
    """
    if deadline is None:
        return None
    if not is_number(deadline):
        raise TypeError(f"deadline must be a number or None, not {type(deadline).__name__}")
    try:
        value = float(deadline)
    except OverflowError:
        raise ValueError("deadline is too large: it must be a float") from None
    if math.isnan(value):
        raise ValueError("deadline must be a number, not NaN")
    return value


def check_pause(pause: float | None) -> float | None:
    """The pause a 429 asks for: ``None`` (unknown) or a finite number of seconds >= 0."""
    return None if pause is None else finite_number(pause, "pause", zero=True)


def refusal(retry_after: float) -> LimiterTimeoutError:
    """The error for a turn expected ``retry_after`` seconds from now, past the deadline."""
    return LimiterTimeoutError(
        f"no rate-limit slot within max_wait (one expected in {retry_after:.3f} s)",
        retry_after=retry_after,
    )
