"""The retry policy: tenacity, configured once, here.

Retried: 429, 5xx, connection failures and timeouts, and a 2xx whose body is not JSON; never
another 4xx (HelpCrunch says a 400 must not be repeated unchanged). A request that is not
idempotent (creating a chat) is retried only when it surely never reached the server: a 429,
or a connection that was never made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import anyio
import tenacity

from .._errors import (
    APIConnectionError,
    HelpCrunchError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .._config import Retry

__all__ = ["RetryPolicy", "is_retryable"]

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
    """Runs one call's attempts: how many, how long to wait between them, and what to retry.

    The 429 rule, in one place: ``Retry-After`` is capped at ``Retry.retry_after_max``
    (``cap_retry_after``). With a rate limiter the retry does not sleep on its own: the
    limiter was told of the 429 and holds back every caller, this one included, so the
    retry simply waits for its turn there. Without a limiter the retry sleeps the capped
    ``Retry-After``, or the backoff when the server gave none.
    """

    def __init__(self, retry: Retry) -> None:
        self.retry = retry
        self._backoff = tenacity.wait_random_exponential(
            multiplier=retry.backoff, max=retry.backoff_max
        )
        # tenacity keeps per-run state on the object: these are templates, copied per call.
        self._templates: dict[tuple[bool, int, bool], tenacity.AsyncRetrying] = {}

    def __repr__(self) -> str:
        return f"RetryPolicy({self.retry!r})"

    def cap_retry_after(self, retry_after: float | None) -> float | None:
        """The server's ``Retry-After``, never longer than ``Retry.retry_after_max``."""
        return None if retry_after is None else min(retry_after, self.retry.retry_after_max)

    def _template(
        self, idempotent: bool, max_retries: int, limited: bool
    ) -> tenacity.AsyncRetrying:
        key = (idempotent, max_retries, limited)
        template = self._templates.get(key)
        if template is None:

            def wait(state: tenacity.RetryCallState) -> float:
                exc = state.outcome.exception() if state.outcome else None
                if isinstance(exc, RateLimitError):
                    if limited:
                        return 0.0  # the limiter already holds every caller back
                    if exc.retry_after is not None:
                        return exc.retry_after
                return float(self._backoff(state))

            template = self._templates[key] = tenacity.AsyncRetrying(
                stop=tenacity.stop_after_attempt(max_retries + 1)
                | _StopOverBudget(self.retry.budget),
                wait=wait,
                retry=tenacity.retry_if_exception(
                    lambda exc: is_retryable(exc, idempotent=idempotent)
                ),
                reraise=True,
            )
        return template

    async def call(
        self,
        attempt: Callable[[int], Awaitable[T]],
        *,
        idempotent: bool = True,
        max_retries: int,
        limited: bool = False,
        on_retry: Callable[[int, BaseException, float], None],
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> T:
        """Run ``attempt(n)`` for n = 1, 2... until it succeeds or the policy gives up.

        ``limited`` says whether a rate limiter stands in front of every attempt (see the
        class docstring). The last error is re-raised with ``attempts`` set to the number of
        attempts made. ``on_retry(n, error, delay)`` is called when attempt ``n`` failed and
        will be retried after ``delay`` seconds; ``sleep(delay)`` then waits (the sender's
        ends when the client is closed).
        """
        # The first attempt runs outside tenacity: most calls succeed at once, and tenacity's
        # per-call set-up is a large share of the SDK's CPU per request. A failure is then
        # replayed as tenacity's first attempt, so the policy sees exactly the same history.
        try:
            return await attempt(1)
        except HelpCrunchError as exc:
            exc.attempts = 1
            if max_retries == 0 or not is_retryable(exc, idempotent=idempotent):
                raise
            replay: HelpCrunchError | None = exc
        made = 1

        async def counted() -> T:
            nonlocal made, replay
            if replay is not None:
                first, replay = replay, None
                raise first
            made += 1
            try:
                return await attempt(made)
            except HelpCrunchError as exc:
                exc.attempts = made
                raise

        def before_sleep(state: tenacity.RetryCallState) -> None:
            if state.outcome is not None and (exc := state.outcome.exception()) is not None:
                on_retry(state.attempt_number, exc, state.upcoming_sleep)

        retrying = self._template(idempotent, max_retries, limited).copy(
            before_sleep=before_sleep, sleep=sleep
        )
        return await retrying(counted)


class _StopOverBudget(tenacity.stop.stop_base):
    """Stop when the next wait would take the call's total waiting past the budget."""

    def __init__(self, budget: float) -> None:
        self.budget = budget

    def __call__(self, state: tenacity.RetryCallState) -> bool:
        return state.idle_for + state.upcoming_sleep > self.budget
