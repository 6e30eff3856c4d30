"""Settings as small frozen objects, and every number that matters, named once."""

from __future__ import annotations

import math
import sys
from typing import TypeGuard

import attrs

__all__ = ["RateLimit", "Retry"]

#: HelpCrunch's documented default: "the default overall requests limit is 120 per minute".
DEFAULT_REQUESTS = 120
DEFAULT_PER = 60.0

#: How many requests may leave at once on an idle key. Small enough that a burst never
#: matters to the server, large enough that a web handler's handful of parallel calls
#: never waits.
DEFAULT_BURST = 10

#: Seconds added to the rate-limit window, so that network jitter (two requests sent a
#: window apart arriving slightly less than a window apart) cannot put one request too many
#: into the server's window. 0.5 s costs 0.8 % of throughput at 120 per 60 s.
DEFAULT_MARGIN = 0.5

DEFAULT_BASE_URL = "https://api.helpcrunch.com/v1"
#: Seconds for each of connect, read, write; limiter waits are never counted in it.
DEFAULT_TIMEOUT = 30.0
#: Requests in flight at once per client (also the connection pool size of the client the
#: SDK creates). At 2 requests per second, 10 is far more than the limiter ever lets through.
DEFAULT_MAX_CONNECTIONS = 10
#: Retries after the first attempt.
DEFAULT_MAX_RETRIES = 5
#: The largest answer body the client reads: a chat is a few KiB and a page of 100 a few
#: hundred, so 4 MiB leaves room while bounding what a broken or hostile server costs.
DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024
#: Most workers one bulk run may use. At 2 requests a second more would only wait.
MAX_CONCURRENCY = 1000


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``plural(1, "chat")`` -> ``"1 chat"``; ``plural(3, "chat")`` -> ``"3 chats"``."""
    return f"{count} {noun if count == 1 else many or noun + 's'}"


def is_int(value: object) -> TypeGuard[int]:
    """Whether ``value`` is an ``int`` and not a ``bool`` (which Python counts as one)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> TypeGuard[float]:
    """Whether ``value`` is an ``int`` or ``float`` and not a ``bool``."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def require_int(value: object, name: str, *, minimum: int | None = None) -> int:
    """Return ``value`` if it is an int (not a bool) of at least ``minimum``.

    The one int check of the SDK: a ``TypeError`` for any other type, a ``ValueError`` below
    ``minimum`` or too large for a float (every count ends up in float arithmetic
    somewhere, and 10**400 would then be a raw ``OverflowError``); both name the argument.
    """
    if not is_int(value):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not -sys.float_info.max <= value <= sys.float_info.max:
        raise ValueError(f"{name} is too large: an integer of {value.bit_length()} bits")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return value


def finite_number(value: object, name: str, *, zero: bool = False) -> float:
    """``value`` as a float: finite and positive (or, with ``zero``, at least 0).

    The one check of a number argument of the SDK (seconds, shares, backoffs).

    Raises:
        TypeError: not a number (a bool is not one).
        ValueError: out of range, not finite, or an int too large for a float; the message
            names the argument.
    """
    if not is_number(value):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    try:
        result = float(value)
    except OverflowError:
        raise ValueError(f"{name} is too large: it must be a finite number") from None
    if not (math.isfinite(result) and (result >= 0 if zero else result > 0)):
        kind = "a finite number >= 0" if zero else "a positive finite number"
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return result


def positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    finite_number(value, attribute.name)


def non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    finite_number(value, attribute.name, zero=True)


def positive_int(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    require_int(value, attribute.name, minimum=1)


def optional_count(_: object, attribute: attrs.Attribute[int | None], value: int | None) -> None:
    if value is not None:
        require_int(value, attribute.name, minimum=0)


def optional_seconds(
    _: object, attribute: attrs.Attribute[float | None], value: float | None
) -> None:
    if value is not None:
        finite_number(value, attribute.name, zero=True)


def parse_rate(text: str) -> tuple[int, float]:
    """Read a rate written ``"N/S"`` (``"120/60"``: 120 requests per 60 seconds).

    Raises:
        ValueError: not two positive finite numbers around one ``/``, N an int.
    """
    try:
        requests, per = text.split("/")
        count, seconds = int(requests), float(per)
    except (ValueError, TypeError, AttributeError):
        raise ValueError(f"expected a rate as N/S, like 120/60, got {text!r}") from None
    if count < 1 or not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"expected a rate as N/S with N and S positive, got {text!r}")
    return count, seconds


@attrs.frozen
class RateLimit:
    """A request budget: at most ``requests`` in any window of ``per`` seconds.

    The client-side limiter keeps every window of ``per + margin`` seconds at or under
    ``requests`` (so also every window of ``per``), lets up to ``burst`` requests leave at
    once on an idle key, and otherwise spaces them ``(per + margin) / requests`` apart.

    Examples:
        >>> RateLimit(requests=300, per=60.0)  # a plan with a higher limit
        RateLimit(requests=300, per=60.0, burst=10, margin=0.5)
    """

    requests: int = attrs.field(default=DEFAULT_REQUESTS, validator=positive_int)
    per: float = attrs.field(default=DEFAULT_PER, validator=positive)
    burst: int = attrs.field(default=DEFAULT_BURST, validator=positive_int)
    margin: float = attrs.field(default=DEFAULT_MARGIN, validator=non_negative)

    @property
    def window(self) -> float:
        """The window the limiter enforces: ``per`` plus the jitter margin."""
        return self.per + self.margin

    @property
    def effective_burst(self) -> int:
        """``burst``, never more than ``requests``."""
        return min(self.burst, self.requests)


@attrs.frozen
class Retry:
    """How failed attempts are retried (the count is the client's ``max_retries``).

    Waits are exponential with full jitter: attempt ``n`` waits a random time up to
    ``min(backoff_max, backoff * 2**n)``. A ``Retry-After`` header, when present, is obeyed
    instead, up to ``retry_after_max``. ``budget`` bounds the total time spent waiting
    between attempts of one call; time waiting for the rate limiter is not counted.

    ``Retry(backoff=0)`` retries at once, which makes tests fast.
    """

    backoff: float = attrs.field(default=0.5, validator=non_negative)
    backoff_max: float = attrs.field(default=30.0, validator=non_negative)
    retry_after_max: float = attrs.field(default=120.0, validator=non_negative)
    budget: float = attrs.field(default=300.0, validator=non_negative)
