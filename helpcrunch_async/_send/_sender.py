"""The send path: one object between the resources and httpx, as httpx splits Client/Transport.

Every API call goes through ``Sender.send``, in this order, for each attempt:

1. **slot**: one of the client's connection slots (so the pool never makes a caller wait);
2. **limiter**: the rate limiter grants the attempt (the moment it grants is the moment the
   request leaves);
3. **http**: httpx sends it; the answer's body is read under an overall deadline and a size cap;
4. **mapping**: an error status or a transport failure becomes the SDK's exception;
5. **429 feedback**: a 429 is reported to the limiter, which pauses every caller;
6. **retry**: the retry policy (``_retry.RetryPolicy``) decides whether to go again.

Each stage reports to the client's observers (``_events``) when it has any: the lines
marked ``# events:`` build an event only then, so observing costs nothing when off.

The 429 policy has exactly one home, here: a ``Retry-After`` is capped once, at
``Retry.retry_after_max``, and handed to the limiter, which holds back *every* caller
(this one included: its retry waits in the limiter like everyone else). Without a limiter,
the retry policy sleeps the capped ``Retry-After`` itself.

Resources never see any of this: they build a request and parse the answer.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import attrs
import httpx

from .._errors import (
    APIConnectionError,
    APITimeoutError,
    ClientClosedError,
    LimiterTimeoutError,
    RateLimitError,
    ResponseValidationError,
    decode_json,
    error_from_response,
    error_from_transport,
)
from ._events import BulkItemDone, CallTrace, Emitter
from .._limit._gate import INTERACTIVE, Priority, PriorityGate
from .._limit._limiter import limiter_support, rate_limit_info
from .._resources._raw import capture_response

if TYPE_CHECKING:
    from collections.abc import Generator, Mapping

    from .._limit._limiter import RateLimiter
    from ._retry import RetryPolicy
    from .._settings import Secret

__all__ = ["CallOptions", "Sender", "SenderStats"]

logger = logging.getLogger("helpcrunch_async")

#: Connection slots background calls leave to interactive ones (none when a client has a
#: single slot). At 2 requests a second, the other slots are more than bulk work can use.
INTERACTIVE_SLOTS = 1


@attrs.frozen
class CallOptions:
    """Per-call settings of one client view (see ``HelpCrunch.with_options``).

    ``priority`` is ``None`` when the view did not choose one: direct calls are then
    ``"interactive"`` and the bulk helpers ``"background"``.
    """

    timeout: float
    max_retries: int
    priority: Priority | None = None
    max_wait: float | None = None


@attrs.frozen
class _Call:
    """What to send, the same for every attempt of one call."""

    method: str
    url: str
    json_body: Any
    params: Mapping[str, Any] | None


@attrs.define
class SenderStats:
    """Mutable counters behind ``HelpCrunch.stats()``."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    limiter_wait: float = 0.0
    status_counts: dict[int, int] = attrs.Factory(dict)
    transport_errors: int = 0
    limiter_wait_by_priority: dict[str, float] = attrs.Factory(dict)


class _BearerAuth(httpx.Auth):
    """Adds the key per request, so it lives in one object whose ``repr`` hides it."""

    def __init__(self, api_key: str) -> None:
        self._header = f"Bearer {api_key}"

    def __repr__(self) -> str:
        return "_BearerAuth(<redacted>)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


class Sender:
    """Slots, limiter, httpx, error mapping, 429 feedback and retries: every call's path.

    Shared by a client and all its ``with_options`` views; it owns no settings that differ
    between views (those arrive as ``CallOptions`` with each call).
    """

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        api_key: Secret[str],
        base_url: str,
        limiter: RateLimiter | None,
        retry: RetryPolicy,
        max_connections: int,
        max_response_bytes: int,
        events: Emitter,
    ) -> None:
        self.http = http
        self.events = events
        self.base_url = base_url
        self.limiter = limiter
        self.retry = retry
        self.max_response_bytes = max_response_bytes
        self.stats = SenderStats()
        self.closed = False
        self._key = api_key
        self._auth = _BearerAuth(api_key.reveal())
        self._timeouts: dict[float, httpx.Timeout] = {}
        self._event_loop: object = None
        # One slot stays open to interactive calls: background calls hold theirs while they
        # wait for the limiter, and an interactive call must not wait for one of them.
        self._slots = PriorityGate(max_connections, reserve=INTERACTIVE_SLOTS)
        # Which optional parts of the limiter protocol this limiter has; asked once.
        self._support = limiter_support(limiter)

    async def send(
        self,
        method: str,
        path: str,
        *,
        options: CallOptions,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotent: bool = True,
        operation: str | None = None,
    ) -> Any:
        """Send one API call, with its retries; return the decoded JSON body (or ``None``).

        ``operation`` names the call in events (``"chats.update_status"``).

        Raises:
            HelpCrunchError: the subclass for what went wrong, after retries.
        """
        if self.closed:
            raise ClientClosedError("this HelpCrunch client is closed")
        self._check_event_loop()
        call = _Call(method, self.base_url + path, json_body, params)
        trace = self.events.start_call(operation, method, path)  # events: call started

        async def attempt(number: int) -> Any:
            return await self._attempt(call, options, number, path, trace)

        if trace is None:
            return await self.retry.call(
                attempt,
                idempotent=idempotent,
                max_retries=options.max_retries,
                limited=self.limiter is not None,
            )
        try:
            body = await self.retry.call(
                attempt,
                idempotent=idempotent,
                max_retries=options.max_retries,
                limited=self.limiter is not None,
                on_retry=trace.retry_scheduled,  # events: retry
            )
        except BaseException as exc:  # a cancellation too: observers see every call end
            trace.failed(exc)  # events: call failed
            raise
        trace.completed()  # events: call completed
        return body

    def _check_event_loop(self) -> None:
        """A client belongs to the event loop of its first call (its pool lives there).

        Used from another loop (a second ``asyncio.run``, another thread) its connections
        would fail at random ("Event loop is closed") or hang: say so at once instead.
        """
        token = anyio.lowlevel.current_token()
        if self._event_loop is None:
            self._event_loop = token
        elif token != self._event_loop:
            raise RuntimeError(
                "this HelpCrunch client was first used in another event loop (another "
                "asyncio.run() or thread): create one client per event loop"
            )

    def bulk_item_done(self, operation: str, error: Exception | None) -> None:
        """Report one outcome of a bulk run to the observers (nothing without any)."""
        if self.events:  # events: bulk outcome
            kind = None if error is None else type(error).__name__
            self.events.emit(BulkItemDone(operation=operation, ok=error is None, error_type=kind))

    async def _attempt(
        self, call: _Call, options: CallOptions, number: int, path: str, trace: CallTrace | None
    ) -> Any:
        # Stages 1-2: a slot first, then the limiter, so that the limiter's grant is the
        # moment the request leaves. ``max_wait`` bounds both, for the first attempt only:
        # a retry of a request that went out is never cut short.
        # Both gates serve interactive callers before queued background ones, so background
        # calls never hold every slot while an interactive one waits.
        priority = options.priority or INTERACTIVE
        max_wait = options.max_wait if number == 1 else None
        started = anyio.current_time() if self.limiter is not None else 0.0
        await self._slots.acquire(priority, max_wait)
        try:
            if self.limiter is not None:
                await self._acquire(priority, max_wait, started)
                self._limiter_waited(anyio.current_time() - started, priority, number, trace)
            self.stats.requests += 1
            self.stats.retries += number > 1
            # Stage 3: send, and read the answer under one deadline for the whole attempt.
            if trace is not None:  # events: request sent
                trace.request_sent(number, call.method, self.base_url, path)
            # The SDK times attempts itself: httpx leaves ``elapsed`` unset for answers a
            # custom transport built already read, and perf_counter is the cheapest clock.
            sent_at = time.perf_counter()
            try:
                status, response = await self._exchange(call, options)
            except APIConnectionError as exc:
                self.stats.transport_errors += 1
                if trace is not None:  # events: transport error
                    trace.transport_failed(number, exc, sent_at)
                raise
        finally:
            self._slots.release()
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s %s -> %d", call.method, response.url.path, status)
        if self._support.rate_limit_info:
            await self._rate_limit_headers(response)
        self.stats.status_counts[status] = self.stats.status_counts.get(status, 0) + 1
        if trace is not None:  # events: response
            trace.response_received(number, response, sent_at)
        if response.is_success:
            capture_response(response, sent_at)
            return decode_json(response.content, secret=self._key) if response.content else None
        # Stages 4-5: map the error; a 429 holds back every caller through the limiter.
        error = error_from_response(response, secret=self._key)
        if isinstance(error, RateLimitError):
            await self._rate_limited(error, number, trace)
        raise error

    def _limiter_waited(
        self, waited: float, priority: Priority, number: int, trace: CallTrace | None
    ) -> None:
        self.stats.limiter_wait += waited
        by_class = self.stats.limiter_wait_by_priority
        by_class[priority] = by_class.get(priority, 0.0) + waited
        if trace is not None:  # events: limiter wait
            trace.limiter_waited(number, waited, priority)

    async def _rate_limit_headers(self, response: httpx.Response) -> None:
        """The server's own rate-limit headers, when it sends any, set the pace directly."""
        # One cheap look at the raw names first: HelpCrunch documents no such header.
        if not any(
            name.lower().startswith(_RATE_LIMIT_HEADERS) for name, _ in response.headers.raw
        ):
            return
        info = rate_limit_info(response.headers)
        if info is not None:
            await self.limiter.on_rate_limit_info(info)  # type: ignore[union-attr]

    async def _rate_limited(
        self, error: RateLimitError, number: int, trace: CallTrace | None
    ) -> None:
        """Stage 5: cap the ``Retry-After`` once and hold every caller back through the limiter."""
        self.stats.rate_limited += 1
        asked = error.retry_after
        error.retry_after = self.retry.cap_retry_after(asked)
        if self.limiter is not None:
            await self.limiter.on_rate_limited(error.retry_after)
        if trace is not None:  # events: 429
            rate = getattr(self.limiter, "current_rate", None)
            trace.rate_limited(number, asked, error.retry_after, rate)

    async def _acquire(self, priority: Priority, max_wait: float | None, started: float) -> None:
        """The limiter's grant, within what is left of ``max_wait``.

        A limiter written for the first protocol takes neither keyword: it is then served in
        its own order, and ``max_wait`` bounds the wait from outside.
        """
        assert self.limiter is not None  # noqa: S101 - checked by the caller
        left = None if max_wait is None else max(0.0, max_wait - (anyio.current_time() - started))
        keywords: dict[str, Any] = {}
        if self._support.priority:
            keywords["priority"] = priority
        if self._support.max_wait:
            keywords["max_wait"] = left
        if self._support.max_wait or left is None:
            await self.limiter.acquire(**keywords)
            return
        with anyio.move_on_after(left) as waiting:
            await self.limiter.acquire(**keywords)
        if waiting.cancelled_caught:
            raise LimiterTimeoutError(
                f"no turn from the rate limiter within max_wait={max_wait:g} s"
            )

    async def _exchange(self, call: _Call, options: CallOptions) -> tuple[int, httpx.Response]:
        """One HTTP exchange: the answer, its body read in full but never past the cap.

        httpx's timeouts are per socket operation (a server trickling a byte at a time never
        trips them), so the whole exchange also runs under ``options.timeout``.
        """
        timeout = self._timeouts.get(options.timeout)
        if timeout is None:
            timeout = self._timeouts[options.timeout] = httpx.Timeout(options.timeout, pool=None)
        request = self.http.build_request(
            call.method, call.url, json=call.json_body, params=call.params, timeout=timeout
        )
        try:
            # A bare cancel scope with a deadline: fail_after's wrapper costs more per call.
            with anyio.CancelScope(deadline=anyio.current_time() + options.timeout) as deadline:
                response = await self.http.send(request, auth=self._auth, stream=True)
                try:
                    if _declared_within(response.headers, self.max_response_bytes):
                        # The common case, read by httpx itself: the framing bounds it.
                        await response.aread()
                        return response.status_code, response
                    body = await self._read_capped(response)
                finally:
                    await response.aclose()
        except httpx.TransportError as exc:
            raise error_from_transport(exc, secret=self._key) from exc
        if deadline.cancelled_caught:
            raise APITimeoutError(
                f"no complete answer within {options.timeout:g} s", request_sent=True
            )
        # A complete, detached response: closed, with nothing left to stream.
        complete = httpx.Response(
            response.status_code,
            headers=response.headers,
            content=body,
            request=request,
            extensions=response.extensions,
        )
        with contextlib.suppress(RuntimeError):  # a custom transport may not time it
            complete.elapsed = response.elapsed
        return response.status_code, complete

    async def _read_capped(self, response: httpx.Response) -> bytes:
        """The body, never more than ``max_response_bytes`` of it in memory.

        A success past the cap is an error (its model would be wrong); an error answer is
        cut at the cap, since only its status and an excerpt are kept.
        """
        chunks: list[bytes] = []
        size = 0
        # aclosing: leaving early must finalize httpx's generators now, not at GC time.
        async with contextlib.aclosing(response.aiter_bytes()) as body:  # type: ignore[type-var]
            async for chunk in body:
                size += len(chunk)
                if size > self.max_response_bytes:
                    if not response.is_success:
                        chunks.append(chunk[: len(chunk) - (size - self.max_response_bytes)])
                        break
                    raise ResponseValidationError(
                        f"HTTP {response.status_code} answer is larger than "
                        f"max_response_bytes={self.max_response_bytes}"
                    )
                chunks.append(chunk)
        return b"".join(chunks)


def _declared_within(headers: httpx.Headers, cap: int) -> bool:
    """Whether the answer says, in a way the HTTP framing enforces, that it fits the cap.

    Only an uncompressed body with a ``Content-Length`` qualifies: a compressed one may
    decode to far more than it declares.
    """
    length = headers.get("content-length")
    encoding = headers.get("content-encoding", "identity").strip().lower()
    return (
        length is not None
        and encoding == "identity"
        and length.isascii()
        and length.isdigit()
        and len(length) <= _MAX_LENGTH_DIGITS
        and int(length) <= cap
    )


#: The names (prefixes, lower case) of every header ``rate_limit_info`` reads.
_RATE_LIMIT_HEADERS = (b"ratelimit", b"x-ratelimit", b"retry-after")

#: Longest Content-Length value read as a number (beyond is surely past any cap).
_MAX_LENGTH_DIGITS = 18
