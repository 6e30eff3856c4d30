"""``HelpCrunch``: configuration, the send path (slot, limiter, retries) and its statistics."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import anyio
import attrs
import httpx

from ._chats import Chats
from ._config import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    RateLimit,
    Retry,
)
from ._errors import (
    RateLimitError,
    decode_json,
    error_from_response,
    error_from_transport,
)
from ._limiter import RateLimiter, api_key_fingerprint
from ._retry import RetryPolicy
from ._settings import (
    Secret,
    resolve_api_key,
    resolve_base_url,
    resolve_limiter,
    validate_http_client,
    validate_max_connections,
    validate_retry,
    validate_timeout,
)

if TYPE_CHECKING:
    from collections.abc import Generator, Mapping
    from types import TracebackType

__all__ = ["ClientStats", "HelpCrunch"]

logger = logging.getLogger("helpcrunch_async")

#: The default ``rate_limit``: HelpCrunch's documented 120 requests per 60 s.
DEFAULT_RATE_LIMIT = RateLimit()


@attrs.frozen
class ClientStats:
    """A snapshot of what a client has done since it was created.

    Attributes:
        requests: HTTP requests sent (every attempt counts).
        retries: Attempts that were retries of an earlier failed attempt.
        rate_limited: 429 answers received.
        limiter_wait: Seconds callers spent waiting for the rate limiter, summed over callers.
    """

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    limiter_wait: float = 0.0


class _BearerAuth(httpx.Auth):
    """Adds the key per request, so it lives in one object whose ``repr`` hides it."""

    def __init__(self, api_key: str) -> None:
        self._header = f"Bearer {api_key}"

    def __repr__(self) -> str:
        return "_BearerAuth(<redacted>)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


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
    ) -> None:
        # The bare key must be no local of this frame when a bad argument raises below.
        given = Secret(api_key)
        del api_key
        self._key = resolve_api_key(given)
        self._auth = _BearerAuth(self._key.reveal())
        self.base_url = resolve_base_url(base_url)
        self.limiter = resolve_limiter(rate_limit)
        self._retry = RetryPolicy(validate_retry(retry), max_retries)
        max_connections = validate_max_connections(max_connections)
        # Per request, so it applies to the caller's http_client too. The pool never makes a
        # caller wait: the slots admit no more requests than the pool has connections.
        self._timeout = httpx.Timeout(validate_timeout(timeout), pool=None)
        http_client = validate_http_client(http_client)
        scope = getattr(self.limiter, "scope", None)
        if callable(scope):
            scope(api_key_fingerprint(self._key.reveal()))
        self.max_connections = max_connections
        self._slots = anyio.CapacityLimiter(max_connections)
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
        self._counts = {"requests": 0, "retries": 0, "rate_limited": 0}
        self._limiter_wait = 0.0
        self.chats = Chats(self)

    def __repr__(self) -> str:
        # getattr: a traceback rendered with locals shows a half-built client too.
        base_url, limiter = getattr(self, "base_url", None), getattr(self, "limiter", None)
        return f"HelpCrunch(base_url={base_url!r}, rate_limit={limiter!r})"

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
        return ClientStats(limiter_wait=self._limiter_wait, **self._counts)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotent: bool = True,
    ) -> Any:
        """Send one API call through the limiter and the retry policy; return the JSON body.

        This is the path every resource method takes; it is public for endpoints the SDK
        does not wrap yet. ``path`` is relative to ``base_url`` (``"/chats/status"``).

        Raises:
            HelpCrunchError: the subclass for what went wrong, after retries.
        """
        if self._closed:
            raise RuntimeError("this HelpCrunch client is closed")
        url = self.base_url + path

        async def send(number: int) -> Any:
            return await self._attempt(method, url, json_body, params, retry=number > 1)

        return await self._retry.call(send, idempotent=idempotent)

    async def _attempt(
        self,
        method: str,
        url: str,
        json_body: Any,
        params: Mapping[str, Any] | None,
        *,
        retry: bool,
    ) -> Any:
        # Order matters: a free slot first, then the limiter, then the socket, so the
        # moment the limiter grants is the moment the request leaves.
        async with self._slots:
            if self.limiter is not None:
                started = anyio.current_time()
                await self.limiter.acquire()
                self._limiter_wait += anyio.current_time() - started
            self._counts["requests"] += 1
            if retry:
                self._counts["retries"] += 1
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
                raise error_from_transport(exc, secret=self._key) from exc
        logger.debug("%s %s -> %d", method, response.url.path, response.status_code)
        if response.is_success:
            return decode_json(response.content) if response.content else None
        error = error_from_response(response, secret=self._key)
        if isinstance(error, RateLimitError):
            self._counts["rate_limited"] += 1
            if self.limiter is not None:
                await self.limiter.on_rate_limited(error.retry_after)
        raise error


def _user_agent() -> str:
    from . import __version__  # noqa: PLC0415 - the package imports this module first

    return f"helpcrunch-async/{__version__}"
