"""The send path: one object between the resources and httpx, as httpx splits Client/Transport.

Every API call goes through ``Sender.send``, in this order, for each attempt:

1. **slot**: one of the client's connection slots (so the pool never makes a caller wait);
2. **limiter**: the rate limiter grants the attempt (the moment it grants is the moment the
   request leaves);
3. **http**: httpx sends it; the answer's body is read under an overall deadline and a size cap;
4. **mapping**: an error status or a transport failure becomes the SDK's exception;
5. **429 feedback**: a 429 is reported to the limiter, which pauses every caller;
6. **retry**: the retry policy (``_retry.RetryPolicy``) decides whether to go again.

The 429 policy has exactly one home, here: a ``Retry-After`` is capped once, at
``Retry.retry_after_max``, and handed to the limiter, which holds back *every* caller
(this one included: its retry waits in the limiter like everyone else). Without a limiter,
the retry policy sleeps the capped ``Retry-After`` itself.

Resources never see any of this: they build a request and parse the answer.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from typing import TYPE_CHECKING, Any, Literal

import anyio
import attrs
import httpx

from ._errors import (
    APITimeoutError,
    ClientClosedError,
    LimiterTimeoutError,
    RateLimitError,
    ResponseValidationError,
    decode_json,
    error_from_response,
    error_from_transport,
)

if TYPE_CHECKING:
    from collections.abc import Generator, Mapping

    from ._limiter import RateLimiter
    from ._retry import RetryPolicy
    from ._settings import Secret

__all__ = ["CallOptions", "Priority", "Sender", "SenderStats"]

logger = logging.getLogger("helpcrunch_async")

#: The two traffic classes: a user-facing call, or bulk work that may wait.
Priority = Literal["interactive", "background"]


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
    ) -> None:
        self.http = http
        self.base_url = base_url
        self.limiter = limiter
        self.retry = retry
        self.max_response_bytes = max_response_bytes
        self.stats = SenderStats()
        self.closed = False
        self._key = api_key
        self._auth = _BearerAuth(api_key.reveal())
        self._slots = anyio.CapacityLimiter(max_connections)
        # A limiter written for the first protocol takes no keywords; ask it once.
        self._limiter_takes_turn_options = limiter is not None and _accepts(
            limiter.acquire, "priority", "max_wait"
        )

    async def send(
        self,
        method: str,
        path: str,
        *,
        options: CallOptions,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotent: bool = True,
    ) -> Any:
        """Send one API call, with its retries; return the decoded JSON body (or ``None``).

        Raises:
            HelpCrunchError: the subclass for what went wrong, after retries.
        """
        if self.closed:
            raise ClientClosedError("this HelpCrunch client is closed")
        call = _Call(method, self.base_url + path, json_body, params)

        async def attempt(number: int) -> Any:
            return await self._attempt(call, options, number)

        return await self.retry.call(
            attempt,
            idempotent=idempotent,
            max_retries=options.max_retries,
            limited=self.limiter is not None,
        )

    async def _attempt(self, call: _Call, options: CallOptions, number: int) -> Any:
        # Stages 1-2: a slot first, then the limiter, so that the limiter's grant is the
        # moment the request leaves. ``max_wait`` bounds both, for the first attempt only:
        # a retry of a request that went out is never cut short.
        max_wait = options.max_wait if number == 1 else None
        started = anyio.current_time()
        with anyio.move_on_after(_or_inf(max_wait)) as waiting:
            await self._slots.acquire()
        if waiting.cancelled_caught:
            raise LimiterTimeoutError(f"no connection slot within max_wait={max_wait:g} s")
        try:
            if self.limiter is not None:
                await self._acquire(options, max_wait, started)
                self.stats.limiter_wait += anyio.current_time() - started
            self.stats.requests += 1
            self.stats.retries += number > 1
            # Stage 3: send, and read the answer under one deadline for the whole attempt.
            status, response = await self._exchange(call, options)
        finally:
            self._slots.release()
        logger.debug("%s %s -> %d", call.method, response.url.path, status)
        if response.is_success:
            return decode_json(response.content, secret=self._key) if response.content else None
        # Stages 4-5: map the error; a 429 holds back every caller through the limiter.
        error = error_from_response(response, secret=self._key)
        if isinstance(error, RateLimitError):
            self.stats.rate_limited += 1
            error.retry_after = self.retry.cap_retry_after(error.retry_after)
            if self.limiter is not None:
                await self.limiter.on_rate_limited(error.retry_after)
        raise error

    async def _acquire(self, options: CallOptions, max_wait: float | None, started: float) -> None:
        """The limiter's grant, within what is left of ``max_wait``."""
        assert self.limiter is not None  # noqa: S101 - checked by the caller
        left = None if max_wait is None else max(0.0, max_wait - (anyio.current_time() - started))
        if self._limiter_takes_turn_options:
            await self.limiter.acquire(  # type: ignore[call-arg]
                priority=options.priority or "interactive", max_wait=left
            )
            return
        with anyio.move_on_after(_or_inf(left)) as waiting:
            await self.limiter.acquire()
        if waiting.cancelled_caught:
            raise LimiterTimeoutError(
                f"no turn from the rate limiter within max_wait={max_wait:g} s"
            )

    async def _exchange(self, call: _Call, options: CallOptions) -> tuple[int, httpx.Response]:
        """One HTTP exchange: the answer, its body read in full but never past the cap.

        httpx's timeouts are per socket operation (a server trickling a byte at a time never
        trips them), so the whole exchange also runs under ``options.timeout``.
        """
        request = self.http.build_request(
            call.method,
            call.url,
            json=call.json_body,
            params=call.params,
            timeout=httpx.Timeout(options.timeout, pool=None),
        )
        try:
            with anyio.fail_after(options.timeout):
                response = await self.http.send(request, auth=self._auth, stream=True)
                try:
                    body = await self._read_capped(response)
                finally:
                    await response.aclose()
        except TimeoutError as exc:
            raise APITimeoutError(
                f"no complete answer within {options.timeout:g} s", request_sent=True
            ) from exc
        except httpx.TransportError as exc:
            raise error_from_transport(exc, secret=self._key) from exc
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


def _or_inf(seconds: float | None) -> float:
    return float("inf") if seconds is None else seconds


def _accepts(function: Any, *names: str) -> bool:
    """Whether ``function`` takes every keyword in ``names``."""
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return True
    return all(name in parameters for name in names)
