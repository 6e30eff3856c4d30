"""A circuit breaker for bulk runs: stop when every recent outcome failed as in an outage.

A bulk job of 100,000 chats against an unreachable API (a wrong base URL, the network down,
HelpCrunch failing) would otherwise retry and fail every id, one by one, for hours. The
breaker watches the final outcome of each id (after the client's own retries) and trips
once ``threshold`` of them in a row failed with an error that says "the API is not
answering": no connection at all (``APIConnectionError``, timeouts included), a 5xx
(``ServerError``), or a 404 that is not HelpCrunch's (``NotFoundError.endpoint_not_found``:
a wrong ``base_url``, such as one without ``/v1``). A success, or a failure that belongs to
one chat (HelpCrunch's 404, a 400...), resets the count: those prove the API is up.
"""

from __future__ import annotations

from .._config import require_int
from .._errors import APIConnectionError, BulkAbortedError, NotFoundError, ServerError

__all__ = ["CircuitBreaker", "is_outage"]


def is_outage(error: BaseException | None) -> bool:
    """``True`` for an error that says the API as a whole is failing, not one chat."""
    if isinstance(error, NotFoundError):
        return error.endpoint_not_found
    return isinstance(error, APIConnectionError | ServerError)


class CircuitBreaker:
    """Counts consecutive outage failures; ``record`` says when ``threshold`` is reached.

    Examples:
        >>> breaker = CircuitBreaker(2)
        >>> breaker.record(ServerError("HTTP 503", status_code=503))
        False
        >>> breaker.record(APIConnectionError("connection failed"))
        True
    """

    def __init__(self, threshold: int, *, noun: str = "chats") -> None:
        require_int(threshold, "stop_after_consecutive_failures", minimum=1)
        self.threshold = threshold
        #: What the run's ids are, for the message (``"customers"``).
        self.noun = noun
        #: Outage failures in a row so far.
        self.consecutive = 0
        #: The latest outage failure, kept for the message when the breaker trips.
        self.last_error: BaseException | None = None

    def record(self, error: BaseException | None) -> bool:
        """Feed one final outcome (``None`` for a success); ``True`` once the breaker trips."""
        if is_outage(error):
            self.consecutive += 1
            self.last_error = error
        else:
            self.consecutive = 0
        return self.tripped

    @property
    def tripped(self) -> bool:
        """``True`` when the last ``threshold`` outcomes all failed as in an outage."""
        return self.consecutive >= self.threshold

    def error(self) -> BulkAbortedError:
        """The exception that ends a run this breaker stopped."""
        return BulkAbortedError(
            f"stopped after {self.consecutive} {self.noun} in a row failed as if the API were "
            f"unreachable or failing; the last error: {self.last_error}",
            failures=self.consecutive,
            last_error=self.last_error,
        )
