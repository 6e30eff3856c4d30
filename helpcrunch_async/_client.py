"""``HelpCrunch``: configuration, the send path (slot, limiter, retries) and its statistics."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import anyio
import attrs
import httpx

from ._chats import Chats
from ._config import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    RateLimit,
    Retry,
)
from ._errors import (
    RateLimitError,
    ResponseValidationError,
    error_from_response,
    error_from_transport,
)
from ._events import DEFAULT_PRIORITY, CallTrace, Emitter, EventObserver, Priority
from ._limiter import RateLimiter, TokenBucketLimiter, api_key_fingerprint
from ._raw import capture_response
from ._retry import RetryPolicy

if TYPE_CHECKING:
    from collections.abc import Generator, Iterable
    from types import TracebackType

__all__ = ["ClientStats", "HelpCrunch"]

logger = logging.getLogger("helpcrunch_async")

#: The default ``rate_limit``: HelpCrunch's documented 120 requests per 60 s.
DEFAULT_RATE_LIMIT = RateLimit()


def _frozen_map(value: Mapping[Any, Any]) -> Mapping[Any, Any]:
    """A read-only copy, so that a snapshot stays one."""
    return MappingProxyType(dict(value))


@attrs.frozen
class ClientStats:
    """A snapshot of what a client has done since it was created.

    Attributes:
        requests: HTTP requests sent (every attempt counts).
        retries: Attempts that were retries of an earlier failed attempt.
        rate_limited: 429 answers received.
        limiter_wait: Seconds callers spent waiting for the rate limiter, summed over callers.
        status_counts: HTTP status -> answers received with it (every attempt counts).
        transport_errors: Attempts that got no HTTP answer (refused, reset, timed out).
        limiter_wait_by_priority: ``limiter_wait`` split by traffic class
            (``"interactive"``, ``"background"``).
    """

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    limiter_wait: float = 0.0
    status_counts: Mapping[int, int] = attrs.field(factory=dict, converter=_frozen_map, hash=False)
    transport_errors: int = 0
    limiter_wait_by_priority: Mapping[str, float] = attrs.field(
        factory=dict, converter=_frozen_map, hash=False
    )


class _BearerAuth(httpx.Auth):
    """Adds the key per request, so it lives in one object whose ``repr`` hides it."""

    def __init__(self, api_key: str) -> None:
        self._header = f"Bearer {api_key}"

    def __repr__(self) -> str:
        return "_BearerAuth(<redacted>)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


def _resolve_api_key(api_key: str | None) -> str:
    if api_key is None:
        api_key = os.environ.get("HELPCRUNCH_API_KEY")
    if api_key is None:
        raise ValueError("no API key: pass api_key=... or set HELPCRUNCH_API_KEY")
    if not isinstance(api_key, str):
        raise TypeError(f"api_key must be a str, not {type(api_key).__name__}")
    if not api_key:
        raise ValueError("the API key is empty: pass api_key=... or set HELPCRUNCH_API_KEY")
    if any(ch.isspace() for ch in api_key):
        # HelpCrunch wants the key exactly; the key itself is never echoed.
        raise ValueError("the API key contains whitespace; paste it exactly, with no spaces")
    return api_key


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _resolve_base_url(base_url: str | None) -> str:
    if base_url is None:
        base_url = os.environ.get("HELPCRUNCH_BASE_URL") or DEFAULT_BASE_URL
    if not isinstance(base_url, str):
        raise TypeError(f"base_url must be a str, not {type(base_url).__name__}")
    try:
        url = httpx.URL(base_url)
    except httpx.InvalidURL as exc:
        raise ValueError(f"base_url is not a valid URL: {base_url!r}") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
    if url.scheme == "http" and not _is_loopback(url.host):
        raise ValueError(
            f"base_url {base_url!r} uses plain http; only https is allowed, "
            "except for loopback hosts (the emulator, tests)"
        )
    return base_url.rstrip("/")


def _resolve_limiter(rate_limit: RateLimit | RateLimiter | None) -> RateLimiter | None:
    if rate_limit is None or isinstance(rate_limit, RateLimiter):
        return rate_limit
    if isinstance(rate_limit, RateLimit):
        return TokenBucketLimiter(rate_limit)
    raise TypeError(
        f"rate_limit must be a RateLimit, a RateLimiter or None, not {type(rate_limit).__name__}"
    )


class HelpCrunch:
    """An async client for the HelpCrunch REST API.

    Use one client for the life of your program (or of your web app) and share it between
    tasks: it holds the connection pool and the rate limiter. Every request goes through
    the limiter and the retry policy, so ``asyncio.gather`` over thousands of calls is safe.

    Example:
        >>> async with HelpCrunch(api_key="...") as client:  # doctest: +SKIP
        ...     chat = await client.chats.update_status(5215752, "closed")

    Args:
        api_key: The API key; ``HELPCRUNCH_API_KEY`` when ``None``. Never logged or shown.
        base_url: The API root; ``HELPCRUNCH_BASE_URL``, then ``https://api.helpcrunch.com/v1``
            when ``None``. Plain ``http://`` is accepted only for loopback hosts.
        rate_limit: A ``RateLimit`` (default: 120 per 60 s), any ``RateLimiter`` (such as
            ``helpcrunch_async.redis.RedisRateLimiter``, or a ``TokenBucketLimiter`` shared
            with other clients), or ``None`` to send without client-side limiting.
        max_retries: Retries after the first attempt of a call.
        retry: Backoff and budget of those retries.
        timeout: Seconds for each of connect, read and write of one attempt. Time waiting
            for the rate limiter is not part of it.
        max_connections: Requests in flight at once; the size of the connection pool.
        http_client: Your own ``httpx.AsyncClient`` (proxies, custom transports, respx);
            the SDK uses it as it is and never closes it.
        on_event: A callable, or a list of callables, given every ``Event`` of the send path
            (see ``helpcrunch_async.CallEvent``); an observer that raises never breaks a call.

    Raises:
        ValueError: No API key, an empty one, or a base URL that is not http(s).
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        rate_limit: RateLimit | RateLimiter | None = DEFAULT_RATE_LIMIT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry: Retry | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        http_client: httpx.AsyncClient | None = None,
        on_event: EventObserver | Iterable[EventObserver] | None = None,
    ) -> None:
        key = _resolve_api_key(api_key)
        self._auth = _BearerAuth(key)
        self.base_url = _resolve_base_url(base_url)
        self.limiter = _resolve_limiter(rate_limit)
        scope = getattr(self.limiter, "scope", None)
        if callable(scope):
            scope(api_key_fingerprint(key))
        self._retry = RetryPolicy(Retry() if retry is None else retry, max_retries)
        if isinstance(max_connections, bool) or not isinstance(max_connections, int):
            raise TypeError(f"max_connections must be an int, not {type(max_connections).__name__}")
        if max_connections < 1:
            raise ValueError(f"max_connections must be >= 1, got {max_connections!r}")
        self.max_connections = max_connections
        self._slots = anyio.CapacityLimiter(max_connections)
        # Per request, so it applies to the caller's http_client too. The pool never makes a
        # caller wait: the slots admit no more requests than the pool has connections.
        self._timeout = httpx.Timeout(timeout, pool=None)
        if http_client is None:
            self._http = httpx.AsyncClient(
                limits=httpx.Limits(
                    max_connections=max_connections, max_keepalive_connections=max_connections
                ),
                headers={"Accept": "application/json", "User-Agent": _user_agent()},
            )
        else:
            self._http = http_client
        self._owns_http = http_client is None
        self._closed = False
        self._counts = {"requests": 0, "retries": 0, "rate_limited": 0, "transport_errors": 0}
        self._limiter_wait = 0.0
        self._statuses: dict[int, int] = {}
        self._waits: dict[str, float] = {}
        self._events = Emitter(on_event)
        self.chats = Chats(self)

    def __repr__(self) -> str:
        return f"HelpCrunch(base_url={self.base_url!r}, rate_limit={self.limiter!r})"

    async def __aenter__(self) -> HelpCrunch:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (unless it is the caller's ``http_client``)."""
        self._closed = True
        if self._owns_http:
            await self._http.aclose()

    def stats(self) -> ClientStats:
        """What this client has done so far: requests, retries, 429s, time waited."""
        return ClientStats(
            limiter_wait=self._limiter_wait,
            status_counts=self._statuses,
            limiter_wait_by_priority=self._waits,
            **self._counts,
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotent: bool = True,
        operation: str | None = None,
    ) -> Any:
        """Send one API call through the limiter and the retry policy; return the JSON body.

        This is the path every resource method takes; it is public for endpoints the SDK
        does not wrap yet. ``path`` is relative to ``base_url`` (``"/chats/status"``);
        ``operation`` names the call in events and traces (``"chats.update_status"``).

        Raises:
            HelpCrunchError: the subclass for what went wrong, after retries.
        """
        if self._closed:
            raise RuntimeError("this HelpCrunch client is closed")
        trace = self._events.start_call(operation, method, path)

        async def send(number: int) -> Any:
            return await self._attempt(method, path, json_body, params, number=number, trace=trace)

        if trace is None:
            return await self._retry.call(send, idempotent=idempotent)
        try:
            body = await self._retry.call(
                send, idempotent=idempotent, on_retry=trace.retry_scheduled
            )
        except BaseException as exc:  # cancellation too: observers must see every call end
            trace.failed(exc)
            raise
        trace.completed()
        return body

    async def _attempt(
        self,
        method: str,
        path: str,
        json_body: Any,
        params: Mapping[str, Any] | None,
        *,
        number: int,
        trace: CallTrace | None,
        priority: Priority = DEFAULT_PRIORITY,
    ) -> Any:
        url = self.base_url + path
        # Order matters: a free slot first, then the limiter, then the socket, so the
        # moment the limiter grants is the moment the request leaves.
        async with self._slots:
            if self.limiter is not None:
                started = anyio.current_time()
                await self.limiter.acquire()
                waited = anyio.current_time() - started
                self._limiter_wait += waited
                self._waits[priority] = self._waits.get(priority, 0.0) + waited
                if trace is not None:  # events: limiter wait
                    trace.limiter_waited(number, waited, priority)
            self._counts["requests"] += 1
            if number > 1:
                self._counts["retries"] += 1
            if trace is not None:  # events: request sent
                trace.request_sent(number, method, self.base_url, path)
            # httpx's own response.elapsed is unset for answers a custom transport built
            # already read, so the SDK times attempts itself (perf_counter: ~20x cheaper
            # than anyio.current_time, and an HTTP round trip is real time anyway).
            sent_at = time.perf_counter()
            try:
                response = await self._http.request(
                    method,
                    url,
                    json=json_body,
                    params=params,
                    auth=self._auth,
                    timeout=self._timeout,
                )
            except httpx.TransportError as exc:
                self._counts["transport_errors"] += 1
                failure = error_from_transport(exc)
                if trace is not None:  # events: transport error
                    trace.transport_failed(number, failure, sent_at)
                raise failure from exc
        logger.debug("%s %s -> %d", method, response.url.path, response.status_code)
        self._statuses[response.status_code] = self._statuses.get(response.status_code, 0) + 1
        if trace is not None:  # events: response
            trace.response_received(number, response, sent_at)
        if response.is_success:
            capture_response(response, sent_at)
            return _decode(response)
        error = error_from_response(response)
        if isinstance(error, RateLimitError):
            await self._rate_limited(error, number, trace)
        raise error

    async def _rate_limited(
        self, error: RateLimitError, number: int, trace: CallTrace | None
    ) -> None:
        self._counts["rate_limited"] += 1
        if self.limiter is not None:
            await self.limiter.on_rate_limited(error.retry_after)
        if trace is not None:  # events: 429
            rate = getattr(self.limiter, "current_rate", None)
            trace.rate_limited(number, error.retry_after, None, rate)


def _decode(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return json.loads(response.content)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise ResponseValidationError(
            f"HTTP {response.status_code} answer is not JSON: {response.text[:200]!r}",
            retryable=True,
        ) from exc


def _user_agent() -> str:
    from . import __version__  # noqa: PLC0415 - the package imports this module first

    return f"helpcrunch-async/{__version__}"
