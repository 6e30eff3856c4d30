"""Settings objects: their defaults, derived values, and what they refuse (with the reason)."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from typing import Any

import pytest

import helpcrunch_async as hc
from helpcrunch_async._config import plural
from helpcrunch_async.redis import RedisRateLimiter
from helpcrunch_async.webhooks import EventDeduplicator, WebhookEndpoint


def test_documented_defaults():
    """The defaults are HelpCrunch's documented limit, and the retry policy the README gives."""
    assert hc.RateLimit(requests=120, per=60.0, burst=10, margin=0.5) == hc.RateLimit()
    assert (
        hc.Retry(backoff=0.5, backoff_max=30.0, retry_after_max=120.0, budget=300.0) == hc.Retry()
    )


@pytest.mark.parametrize(
    ("limit", "window", "burst"),
    [
        (hc.RateLimit(), 60.5, 10),
        (hc.RateLimit(requests=3, per=2.0, burst=10, margin=0.0), 2.0, 3),
        (hc.RateLimit(requests=300, per=60.0, burst=1, margin=1.5), 61.5, 1),
    ],
)
def test_window_and_effective_burst(limit, window, burst):
    """The enforced window is per + margin; the burst never exceeds the requests per window."""
    assert window == limit.window
    assert burst == limit.effective_burst


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: hc.RateLimit(requests=0), ValueError, "requests must be >= 1, got 0"),
        (lambda: hc.RateLimit(requests=1.5), TypeError, "requests must be an int, not float"),  # type: ignore[arg-type]
        (lambda: hc.RateLimit(requests=True), TypeError, "requests must be an int, not bool"),
        (lambda: hc.RateLimit(burst=0), ValueError, "burst must be >= 1, got 0"),
        (
            lambda: hc.RateLimit(per=0),
            ValueError,
            "per must be a positive finite number, got 0",
        ),
        (
            lambda: hc.RateLimit(per=float("inf")),
            ValueError,
            "per must be a positive finite number, got inf",
        ),
        (lambda: hc.RateLimit(per="60"), TypeError, "per must be a number, not str"),  # type: ignore[arg-type]
        (lambda: hc.RateLimit(per=True), TypeError, "per must be a number, not bool"),
        (
            lambda: hc.RateLimit(margin=-1),
            ValueError,
            "margin must be a finite number >= 0, got -1",
        ),
        (
            lambda: hc.RateLimit(margin=float("nan")),
            ValueError,
            "margin must be a finite number >= 0, got nan",
        ),
        (lambda: hc.RateLimit(margin=None), TypeError, "margin must be a number, not NoneType"),  # type: ignore[arg-type]
        (lambda: hc.Retry(backoff=True), TypeError, "backoff must be a number, not bool"),
        (
            lambda: hc.Retry(budget=-0.5),
            ValueError,
            "budget must be a finite number >= 0, got -0.5",
        ),
    ],
)
def test_bad_settings_are_refused_with_the_reason(make, error, message):
    """Each bad number is refused at construction, naming the setting, the rule and the value."""
    with pytest.raises(error) as info:
        make()

    assert message == str(info.value)


@pytest.mark.parametrize(
    ("settings", "name", "value"),
    [
        (hc.RateLimit, "margin", 0),
        (hc.RateLimit, "per", 0.001),
        (hc.RateLimit, "requests", 1),
        (hc.Retry, "backoff", 0),
        (hc.Retry, "budget", 0.0),
    ],
)
def test_edge_values_are_accepted(settings, name, value):
    """Zero where zero makes sense (no margin, no backoff), and the smallest positive values."""
    assert value == getattr(settings(**{name: value}), name)


# --- every numeric argument of the public API, given an int too large for a float ---------

HUGE = 10**400
HUGER = 10**5000  # past the digits Python will turn into text: the message must not try


def _client(**kwargs: Any) -> hc.HelpCrunch:
    return hc.HelpCrunch("key", base_url="https://api.helpcrunch.test/v1", **kwargs)


async def _handler(_: object) -> None:
    pass  # pragma: no cover - never called


def _endpoint(**kwargs: Any) -> WebhookEndpoint:
    return WebhookEndpoint(_handler, signing_key="key", **kwargs)


async def _drain(items: Any) -> None:
    async for _ in items:
        pass  # pragma: no cover - refused before the first page


#: argument name -> a call giving it a number; the call may return an awaitable.
NUMERIC_ARGUMENTS: dict[str, Callable[[int], Any]] = {
    "HelpCrunch(timeout)": lambda n: _client(timeout=n),
    "HelpCrunch(max_retries)": lambda n: _client(max_retries=n),
    "HelpCrunch(max_connections)": lambda n: _client(max_connections=n),
    "HelpCrunch(max_response_bytes)": lambda n: _client(max_response_bytes=n),
    "with_options(max_wait)": lambda n: _client().with_options(max_wait=n),
    "with_options(timeout)": lambda n: _client().with_options(timeout=n),
    "with_options(max_retries)": lambda n: _client().with_options(max_retries=n),
    "RateLimit(requests)": lambda n: hc.RateLimit(requests=n),
    "RateLimit(per)": lambda n: hc.RateLimit(per=n),
    "RateLimit(burst)": lambda n: hc.RateLimit(burst=n),
    "RateLimit(margin)": lambda n: hc.RateLimit(margin=n),
    "Retry(backoff)": lambda n: hc.Retry(backoff=n),
    "Retry(backoff_max)": lambda n: hc.Retry(backoff_max=n),
    "Retry(retry_after_max)": lambda n: hc.Retry(retry_after_max=n),
    "Retry(budget)": lambda n: hc.Retry(budget=n),
    "RateLimitHeaders(limit)": lambda n: hc.RateLimitHeaders(limit=n),
    "RateLimitHeaders(remaining)": lambda n: hc.RateLimitHeaders(remaining=n),
    "RateLimitHeaders(reset)": lambda n: hc.RateLimitHeaders(reset=n),
    "RateLimitHeaders(window)": lambda n: hc.RateLimitHeaders(window=n),
    "RateLimitHeaders(retry_after)": lambda n: hc.RateLimitHeaders(retry_after=n),
    "LocalRateLimiter.acquire(deadline)": lambda n: hc.LocalRateLimiter().acquire(deadline=n),
    "LocalRateLimiter.on_rate_limited(pause)": lambda n: hc.LocalRateLimiter().on_rate_limited(n),
    "RedisRateLimiter(local_share)": lambda n: RedisRateLimiter.from_url(
        "redis://127.0.0.1:9/0", local_share=n
    ),
    "RedisRateLimiter.acquire(deadline)": lambda n: RedisRateLimiter.from_url(
        "redis://127.0.0.1:9/0", key="k"
    ).acquire(deadline=n),
    "RedisRateLimiter.on_rate_limited(pause)": lambda n: RedisRateLimiter.from_url(
        "redis://127.0.0.1:9/0", key="k"
    ).on_rate_limited(n),
    "EventDeduplicator(ttl)": lambda n: EventDeduplicator(ttl=n),
    "EventDeduplicator(max_events)": lambda n: EventDeduplicator(max_events=n),
    "WebhookEndpoint(max_body_size)": lambda n: _endpoint(max_body_size=n),
    "WebhookEndpoint(body_timeout)": lambda n: _endpoint(body_timeout=n),
    "stream_update_status(concurrency)": lambda n: _client().chats.stream_update_status(
        [1], "closed", concurrency=n
    ),
    "stream_update_status(stop_after_consecutive_failures)": (
        lambda n: _client().chats.stream_update_status(
            [1], "closed", stop_after_consecutive_failures=n
        )
    ),
    "chats.list(page_size)": lambda n: _drain(_client().chats.list(page_size=n)),
    "chats.search(page_size)": lambda n: _drain(
        _client().chats.search(hc.Filter("chats.status", "=", "new"), page_size=n)
    ),
    "chats.messages(page_size)": lambda n: _drain(_client().chats.messages(1, page_size=n)),
    "agents.list(page_size)": lambda n: _drain(_client().agents.list(page_size=n)),
    "chats.update_status(chat_id)": lambda n: _client().chats.update_status(n, "closed"),
    "chats.update_assignee(agent_id)": lambda n: _client().chats.update_assignee(1, n),
    "chats.update_department(department_id)": lambda n: _client().chats.update_department(1, n),
    "chats.create(customer)": lambda n: _client().chats.create(customer=n, application=1),
    "chats.create(application)": lambda n: _client().chats.create(customer=1, application=n),
    "messages.create(agent_id)": lambda n: _client().messages.create(1, "hi", agent_id=n),
    "Filter(value)": lambda n: hc.Filter("chats.closedAt", ">", n),
}


@pytest.mark.anyio
@pytest.mark.parametrize("number", [HUGE, HUGER], ids=["1e400", "1e5000"])
@pytest.mark.parametrize("argument", sorted(NUMERIC_ARGUMENTS))
async def test_an_int_too_large_for_a_float_is_a_value_error_naming_the_argument(
    anyio_backend, argument, number
):
    """10**400 anywhere a number goes: a ValueError naming the argument, never an
    OverflowError (nor a message that fails to print a 5,000-digit number)."""
    name = argument.split("(")[1].rstrip(")")

    with pytest.raises(ValueError, match=rf"\b{name}\b") as info:
        result = NUMERIC_ARGUMENTS[argument](number)
        if inspect.isawaitable(result):
            await result

    assert len(str(info.value)) < 200


def test_the_largest_int_a_float_holds_is_a_number_and_one_more_is_too_large():
    """The bound is the largest float, on both sides: it is accepted, one past it is not."""
    largest = int(sys.float_info.max)

    assert largest == hc.RateLimit(requests=largest).requests
    with pytest.raises(ValueError, match="requests is too large"):
        hc.RateLimit(requests=largest + 1)
    with pytest.raises(ValueError, match="must be >= 1"):
        hc.RateLimit(requests=-largest)
    with pytest.raises(ValueError, match="requests is too large"):
        hc.RateLimit(requests=-largest - 1)


@pytest.mark.parametrize("field", ["limit", "remaining"])
def test_rate_limit_header_counts_are_never_negative(field):
    """RateLimitHeaders counts are ints >= 0 (0 requests remaining is a count)."""
    assert 0 == getattr(hc.RateLimitHeaders(**{field: 0}), field)
    with pytest.raises(ValueError, match=rf"{field} must be >= 0"):
        hc.RateLimitHeaders(**{field: -1})
    wrong: dict[str, Any] = {field: 1.5}
    with pytest.raises(TypeError, match=field):
        hc.RateLimitHeaders(**wrong)


@pytest.mark.parametrize("field", ["reset", "window", "retry_after"])
def test_rate_limit_header_seconds_are_finite_and_never_negative(field):
    """RateLimitHeaders seconds are finite numbers >= 0."""
    assert 0.0 == getattr(hc.RateLimitHeaders(**{field: 0}), field)
    for bad in (-1.0, float("inf"), float("nan")):
        wrong: dict[str, Any] = {field: bad}
        with pytest.raises(ValueError, match=field):
            hc.RateLimitHeaders(**wrong)


def test_plural():
    """1 chat, 2 chats, 0 chats; irregular plurals; the irregular form only past one."""
    assert ["1 chat", "2 chats", "0 chats", "3 retries", "1 retry"] == [
        plural(1, "chat"),
        plural(2, "chat"),
        plural(0, "chat"),
        plural(3, "retry", "retries"),
        plural(1, "retry", "retries"),
    ]
