"""The retry policy: tenacity, configured once, here.

Retried: 429, 5xx, connection failures and timeouts, and a 2xx whose body is not JSON; never
another 4xx (HelpCrunch says a 400 must not be repeated unchanged). A request that is not
idempotent (creating a chat) is retried only when it surely never reached the server: a 429,
or a connection that was never made.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, TypeVar

import anyio
import tenacity

from ._errors import (
    APIConnectionError,
    HelpCrunchError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ._config import Retry

__all__ = ["RetryPolicy", "is_retryable"]

logger = logging.getLogger("helpcrunch_async")

T = TypeVar("T")


def is_retryable(exc: BaseException, *, idempotent: bool = True) -> bool:
    """Whether a failed attempt may be sent again."""
    if isinstance(exc, RateLimitError):
        return True  # rejected before it was processed: safe even when not idempotent
    if not idempotent:
        return isinstance(exc, APIConnectionError) and not exc.request_sent
    if isinstance(exc, ServerError | APIConnectionError):
        return True
    return isinstance(exc, ResponseValidationError) and exc.retryable


class RetryPolicy:
    """Runs one call's attempts: how many, how long to wait between them, and what to retry."""

    def __init__(self, retry: Retry, max_retries: int) -> None:
        if isinstance(max_retries, bool) or not isinstance(max_retries, int):
            raise TypeError(f"max_retries must be an int, not {type(max_retries).__name__}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries!r}")
        self.retry = retry
        self.max_retries = max_retries
        self._backoff = tenacity.wait_random_exponential(
            multiplier=retry.backoff, max=retry.backoff_max
        )
        self._templates = {
            idempotent: tenacity.AsyncRetrying(
                sleep=anyio.sleep,
                stop=tenacity.stop_after_attempt(max_retries + 1) | _StopOverBudget(retry.budget),
                wait=self._wait,
                retry=tenacity.retry_if_exception(
                    lambda exc, idem=idempotent: is_retryable(exc, idempotent=idem)  # type: ignore[misc]
                ),
                before_sleep=_log_retry,
                reraise=True,
            )
            for idempotent in (True, False)
        }

    def __repr__(self) -> str:
        return f"RetryPolicy({self.retry!r}, max_retries={self.max_retries})"

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimitError) and exc.retry_after is not None:
            return min(exc.retry_after, self.retry.retry_after_max)
        return float(self._backoff(state))

    async def call(
        self,
        attempt: Callable[[int], Awaitable[T]],
        *,
        idempotent: bool = True,
        on_retry: Callable[[int, BaseException, float], None] | None = None,
    ) -> T:
        """Run ``attempt(n)`` for n = 1, 2... until it succeeds or the policy gives up.

        The last error is re-raised with ``attempts`` set to the number of attempts made.
        ``on_retry(n, error, delay)`` is called when attempt ``n`` failed and will be retried.
        """
        made = 0

        async def counted() -> T:
            nonlocal made
            made += 1
            try:
                return await attempt(made)
            except HelpCrunchError as exc:
                exc.attempts = made
                raise

        # A copy per call: tenacity keeps per-run state on the object.
        if on_retry is None:
            retrying = self._templates[idempotent].copy()
        else:

            def before_sleep(state: tenacity.RetryCallState) -> None:
                _log_retry(state)
                if state.outcome is not None and (exc := state.outcome.exception()) is not None:
                    on_retry(state.attempt_number, exc, state.upcoming_sleep)

            retrying = self._templates[idempotent].copy(before_sleep=before_sleep)
        return await retrying(counted)


class _StopOverBudget(tenacity.stop.stop_base):
    """Stop when the next wait would take the call's total waiting past the budget."""

    def __init__(self, budget: float) -> None:
        self.budget = budget

    def __call__(self, state: tenacity.RetryCallState) -> bool:
        return state.idle_for + state.upcoming_sleep > self.budget


def _log_retry(state: tenacity.RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    logger.debug(
        "retrying after attempt %d failed (%s); waiting %.3f s",
        state.attempt_number,
        exc,
        state.upcoming_sleep,
    )
