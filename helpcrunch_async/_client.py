"""``HelpCrunch``: settings, resources, views (``with_options``) and statistics.

The send path itself (turn, exchange, retries, 429 feedback, events) is ``_send.Sender``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
import httpx

from .__version__ import __version__
from ._config import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    RateLimit,
    Retry,
    require_int,
)
from ._errors import ClientClosedError
from ._limit._protocol import api_key_fingerprint
from ._limit._turn import Turn
from ._resources._account import Applications, OrganizationResource
from ._resources._agents import Agents
from ._resources._chats import Chats
from ._resources._customers import Customers
from ._resources._departments import Departments
from ._resources._events import CustomerEvents
from ._resources._messages import Messages
from ._send._http import Exchange
from ._send._observe import Observers
from ._send._retry import RetryPolicy
from ._send._sender import CallOptions, Request, Sender
from ._settings import (
    Secret,
    resolve_api_key,
    resolve_base_url,
    resolve_limiter,
    validate_http_client,
    validate_max_connections,
    validate_max_wait,
    validate_priority,
    validate_retry,
    validate_timeout,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from types import TracebackType

    from ._limit._gate import Priority
    from ._limit._protocol import RateLimiter
    from ._send._events import EventObserver
    from ._send._observe import ClientStats

__all__ = ["HelpCrunch"]

#: The default ``rate_limit``: HelpCrunch's documented 120 requests per 60 s.
DEFAULT_RATE_LIMIT = RateLimit()


def _check_max_retries(value: object) -> int:
    return require_int(value, "max_retries", minimum=0)


class HelpCrunch:
    """An async client for the HelpCrunch REST API.

    Use one client for the life of your program (or of your web app) and share it between
    tasks: it holds the connection pool and the rate limiter. Every request goes through
    the limiter and the retry policy, so ``asyncio.gather`` over thousands of calls is safe.

    Examples:
        >>> async with HelpCrunch(api_key="...") as client:  # doctest: +SKIP
        ...     chat = await client.chats.update_status(5215752, "closed")

    Args:
        api_key: The API key; ``HELPCRUNCH_API_KEY`` when ``None``. Never logged or shown.
        base_url: The API root; ``HELPCRUNCH_BASE_URL``, then ``https://api.helpcrunch.com/v1``
            when ``None``. Plain ``http://`` is accepted only for loopback hosts.
        rate_limit: A ``RateLimit`` (default: 120 per 60 s), any ``RateLimiter`` (such as
            ``helpcrunch_async.redis.RedisRateLimiter``, or a ``LocalRateLimiter`` shared
            with other clients of the same key), or ``None`` to send without client-side
            limiting.
        max_retries: Retries after the first attempt of a call.
        retry: Backoff and budget of those retries.
        timeout: Seconds one attempt may take, from sending the request to the last byte of
            the answer (and for each of connect, read and write). Time waiting for a
            connection slot or the rate limiter is not part of it.
        max_connections: Requests in flight at once; the size of the connection pool.
        max_response_bytes: The largest answer body read; a larger success is a
            ``ResponseValidationError``, a larger error answer is cut there.
        http_client: Your own ``httpx.AsyncClient`` (proxies, custom transports, respx);
            the SDK uses it as it is and never closes it.
        on_event: A callable, or a list of callables, given every ``ClientEvent`` of the send
            path (see ``helpcrunch_async.CallEvent``), synchronously: ``async def``
            observers are refused. An observer that raises never breaks a call.

    Raises:
        TypeError: an argument of the wrong type (a ``rate_limit`` that is not a whole
            ``RateLimiter``, an ``async def`` observer...).
        ValueError: No API key, an empty one, a base URL that is not http(s), a number out
            of range.
    """

    chats: Chats
    messages: Messages
    agents: Agents
    departments: Departments
    customers: Customers
    events: CustomerEvents
    applications: Applications
    organization: OrganizationResource

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
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        http_client: httpx.AsyncClient | None = None,
        on_event: EventObserver | Iterable[EventObserver] | None = None,
    ) -> None:
        # The bare key must be no local of this frame when a bad argument raises below.
        given = Secret(api_key)
        del api_key
        key = resolve_api_key(given)
        base = resolve_base_url(base_url)
        limiter = resolve_limiter(rate_limit)
        retry = validate_retry(retry)
        options = CallOptions(
            timeout=validate_timeout(timeout), max_retries=_check_max_retries(max_retries)
        )
        max_connections = validate_max_connections(max_connections)
        max_response_bytes = require_int(max_response_bytes, "max_response_bytes", minimum=1)
        http_client = validate_http_client(http_client)
        observers = Observers(on_event)
        if limiter is not None:
            limiter.bind_key(api_key_fingerprint(key.reveal()))
        self._owns_http = http_client is None
        if http_client is None:
            http_client = httpx.AsyncClient(
                limits=httpx.Limits(
                    max_connections=max_connections, max_keepalive_connections=max_connections
                ),
                headers=default_headers(),
            )
        self._sender = Sender(
            exchange=Exchange(http_client, api_key=key, max_response_bytes=max_response_bytes),
            api_key=key,
            base_url=base,
            turn=Turn(max_connections, limiter),
            retry=RetryPolicy(retry),
            observers=observers,
        )
        self.max_connections = max_connections
        self._view_of: HelpCrunch | None = None
        self._bind(options)

    def _bind(self, options: CallOptions) -> None:
        self._options = options
        self.chats = Chats(self._sender, options)
        self.messages = Messages(self._sender, options)
        self.agents = Agents(self._sender, options)
        self.departments = Departments(self._sender, options)
        self.customers = Customers(self._sender, options)
        self.events = CustomerEvents(self._sender, options)
        self.applications = Applications(self._sender, options)
        self.organization = OrganizationResource(self._sender, options)

    @property
    def base_url(self) -> str:
        """The API root every path is relative to."""
        return self._sender.base_url

    @property
    def limiter(self) -> RateLimiter | None:
        """The rate limiter every attempt goes through, or ``None``."""
        return self._sender.limiter

    @property
    def priority(self) -> Priority | None:
        """The traffic class of this view, or ``None`` when it chose none (see ``with_options``)."""
        return self._options.priority

    def __repr__(self) -> str:
        # A traceback rendered with its locals shows a half-built client too.
        if "_sender" not in vars(self):
            return "HelpCrunch(<not constructed>)"
        return f"HelpCrunch(base_url={self.base_url!r}, rate_limit={self.limiter!r})"

    def with_options(
        self,
        *,
        priority: Priority | None = None,
        max_wait: float | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> HelpCrunch:
        """A view of this client with other per-call settings; ``None`` keeps the current one.

        The view shares everything else (connection pool, rate limiter, statistics) and is
        cheap enough to make per request. It is closed with the client it came from, and is
        not closed on its own.

        Args:
            priority: ``"interactive"`` (the default of direct calls) is served before every
                queued ``"background"`` call (the default of the bulk helpers), at the
                connection slots and at the rate limiter.
            max_wait: Seconds a call may wait for its turn (slot and limiter together) before
                its first attempt; past it the call raises ``LimiterTimeoutError`` having sent
                nothing. Retries of an attempt that went out are not cut short by it.
            timeout: Seconds per attempt, as the client's ``timeout``.
            max_retries: Retries after the first attempt, as the client's ``max_retries``.

        Examples:
            >>> fast = client.with_options(max_wait=2.0)  # doctest: +SKIP
            >>> await fast.chats.update_status(5215752, "closed")  # doctest: +SKIP
        """
        # The one check of these values: the send path below trusts them.
        changes: dict[str, Any] = {}
        if priority is not None:
            changes["priority"] = validate_priority(priority)
        if max_wait is not None:
            changes["max_wait"] = validate_max_wait(max_wait)
        if timeout is not None:
            changes["timeout"] = validate_timeout(timeout)
        if max_retries is not None:
            changes["max_retries"] = _check_max_retries(max_retries)
        view = object.__new__(HelpCrunch)
        view.__dict__.update(self.__dict__)
        view._view_of = self._view_of or self
        view._bind(attrs.evolve(self._options, **changes))
        return view

    async def __aenter__(self) -> HelpCrunch:
        if self._view_of is not None:
            raise TypeError(
                "a with_options() view shares its client's resources and is not closed on its "
                "own: use the client it came from in `async with`"
            )
        if self._sender.closed:
            raise ClientClosedError("this HelpCrunch client is closed; create a new one")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the client (and its views), and its connection pool unless it was given.

        Every call still in progress (waiting for its turn, between attempts, or in flight)
        ends with ``ClientClosedError``, and so does every later call; a bulk run raises it
        once, after the outcomes that completed before.

        Raises:
            TypeError: called on a ``with_options()`` view.
        """
        if self._view_of is not None:
            raise TypeError("close the client this view came from, not the view")
        self._sender.close()
        if self._owns_http:
            await self._sender.exchange.http.aclose()

    def stats(self) -> ClientStats:
        """What this client (with its views) has done so far: requests, retries, 429s, waits."""
        learned = None if self.limiter is None else self.limiter.learned_limit
        return self._sender.observers.stats.snapshot(learned)

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
        request = Request(method, path, json_body, params, idempotent, operation)
        return (await self._sender.send(request, self._options)).json


def default_headers() -> dict[str, str]:
    """The headers the client the SDK makes sends with every request."""
    return {"Accept": "application/json", "User-Agent": f"helpcrunch-async/{__version__}"}
