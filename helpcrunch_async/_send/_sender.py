"""The send path: one object between the resources and httpx, as httpx splits Client/Transport.

Every API call goes through ``Sender.send``, in this order, for each attempt:

1. **turn**: a connection slot, then the rate limiter's grant, under one deadline
   (``_limit/_turn.py``; the grant is the moment the request leaves);
2. **exchange**: httpx sends it; the answer is read whole under a size cap (``_http.py``)
   and the attempt's deadline (the attempt's cancel scope, which ``close()`` cancels too);
3. **mapping**: an error status or a transport failure becomes the SDK's exception
   (``_decode.py``);
4. **429 feedback**: the pause is decided once (``Retry-After`` capped at
   ``Retry.retry_after_max``, or the limiter's own estimate) and every caller is held back
   through the limiter;
5. **retry**: the retry policy (``_retry.py``) decides whether to go again.

Each step is an event (``_events.py``) given to the observers (``_observe.py``): the
client's statistics and log, and the user's ``on_event``. The sender returns the answer and
its decoded JSON; resources build the requests and parse the answers into models.
"""

from __future__ import annotations

import functools
import math
import time
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import attrs
import httpx

from .._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    ClientClosedError,
    RateLimitError,
    ResponseValidationError,
)
from .._limit._gate import INTERACTIVE, Priority
from .._limit._headers import carries_rate_limit_headers, parse_rate_limit_headers
from .._models._json import decode_json
from ._decode import error_from_response
from ._events import (
    CallCompleted,
    CallFailed,
    CallStarted,
    LimiterWaited,
    RequestSent,
    ResponseReceived,
    RetryScheduled,
    Throttled,
    TransportFailed,
)
from ._observe import next_call_id, path_template, retry_reason

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .._limit._turn import Turn
    from .._settings import Secret
    from ._http import Exchange
    from ._observe import Observers
    from ._retry import RetryPolicy

__all__ = ["CallOptions", "Reply", "Request", "Sender"]


@attrs.frozen
class CallOptions:
    """Per-call settings of one client view (see ``HelpCrunch.with_options``), validated.

    ``priority`` is ``None`` when the view did not choose one: direct calls are then
    ``"interactive"`` and the bulk helpers ``"background"``.
    """

    timeout: float
    max_retries: int
    priority: Priority | None = None
    max_wait: float | None = None


@attrs.frozen
class Request:
    """One API call to send: the same for every attempt.

    ``path`` is relative to the base URL; ``operation`` names the call in events
    (``"chats.update_status"``); a call that is not ``idempotent`` is retried only when it
    surely never reached the server. A success must be JSON unless ``json_answer`` is
    ``False`` (a plain ``Ok``, as deleting a customer answers): then a body that is not JSON
    gives ``None``.
    """

    method: str
    path: str
    json_body: Any = None
    params: Mapping[str, Any] | None = None
    idempotent: bool = True
    operation: str | None = None
    json_answer: bool = True


@attrs.frozen
class Reply:
    """A successful answer: the response (read, closed, ``elapsed`` set) and its JSON."""

    response: httpx.Response
    json: Any


@attrs.define
class _Call:
    """What the events of one call share."""

    operation: str
    call_id: int
    started: float
    attempts: int = 0
    #: When the latest attempt's request left (``time.perf_counter()``).
    sent_at: float = 0.0


class Sender:
    """Turn, exchange, error mapping, 429 feedback and retries: every call's path.

    Shared by a client and all its ``with_options`` views; it owns no settings that differ
    between views (those arrive as ``CallOptions`` with each call).
    """

    def __init__(
        self,
        *,
        exchange: Exchange,
        api_key: Secret[str],
        base_url: str,
        turn: Turn,
        retry: RetryPolicy,
        observers: Observers,
    ) -> None:
        self.exchange = exchange
        self.base_url = base_url
        self.turn = turn
        self.limiter = turn.limiter
        self.retry = retry
        self.observers = observers
        self.closed = False
        #: The scope of every call in progress, so that closing the client ends them.
        self._calls: set[anyio.CancelScope] = set()
        #: What this server accepted where the documentation disagrees (the on-hold
        #: spelling), learnt once and shared by the client's views.
        self.dialect: dict[str, str] = {}
        self._key = api_key
        self._event_loop: object = None
        url = httpx.URL(base_url)
        self._server = (url.host, url.port or (443 if url.scheme == "https" else 80))

    def __repr__(self) -> str:
        return f"Sender({self.base_url!r}, {self.turn!r})"

    def close(self) -> None:
        """Refuse new calls and end every call in progress with ``ClientClosedError``.

        A call waiting for its turn or between two attempts sends nothing more; a request
        in flight is cut off (it may have reached the server). Their turns are given back
        on the way out, so a limiter shared with other clients loses nothing.
        """
        self.closed = True
        for scope in self._calls:
            scope.cancel()

    async def send(self, request: Request, options: CallOptions) -> Reply:
        """Send one API call, with its retries; return the successful answer.

        Raises:
            ClientClosedError: the client was closed before or during the call.
            HelpCrunchError: the subclass for what went wrong, after retries.
        """
        if self.closed:
            raise ClientClosedError("this HelpCrunch client is closed")
        self._check_event_loop()
        template = path_template(request.path)
        call = _Call(
            request.operation or f"{request.method} {template}", next_call_id(), time.perf_counter()
        )
        observers = self.observers
        emit = observers.emit
        if observers.wants(CallStarted):
            emit(
                CallStarted(
                    operation=call.operation,
                    call_id=call.call_id,
                    method=request.method,
                    path_template=template,
                )
            )

        def retry_scheduled(attempt: int, error: BaseException, delay: float) -> None:
            emit(
                RetryScheduled(
                    operation=call.operation,
                    call_id=call.call_id,
                    attempt=attempt,
                    reason=retry_reason(error),
                    error_type=type(error).__name__,
                    delay=delay,
                )
            )

        try:
            reply = await self.retry.call(
                functools.partial(self._attempt, request, template, options, call),
                idempotent=request.idempotent,
                max_retries=options.max_retries,
                limited=self.limiter is not None,
                on_retry=retry_scheduled,
                sleep=self._sleep,
            )
        except BaseException as exc:  # a cancellation too: observers see every call end
            if observers.wants(CallFailed):
                emit(
                    CallFailed(
                        operation=call.operation,
                        call_id=call.call_id,
                        attempts=call.attempts,
                        error_type=type(exc).__name__,
                        status_code=exc.status_code if isinstance(exc, APIError) else None,
                        elapsed=time.perf_counter() - call.started,
                    )
                )
            raise
        if observers.wants(CallCompleted):
            emit(
                CallCompleted(
                    operation=call.operation,
                    call_id=call.call_id,
                    attempts=call.attempts,
                    status_code=reply.response.status_code,
                    elapsed=time.perf_counter() - call.started,
                )
            )
        return reply

    async def _sleep(self, seconds: float) -> None:
        """The retry policy's sleep between two attempts; ``close()`` ends it."""
        with anyio.CancelScope() as scope:
            self._calls.add(scope)
            try:
                await anyio.sleep(seconds)
                return
            finally:
                self._calls.discard(scope)
        # Only close() cancels this scope (a cancel of the caller's own at the same moment
        # is not caught here: it stays a cancel).
        raise ClientClosedError("this HelpCrunch client was closed during the call")

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

    async def _attempt(
        self, request: Request, template: str, options: CallOptions, call: _Call, number: int
    ) -> Reply:
        # One cancel scope per attempt: close() cancels it, and while the request is out its
        # deadline is the attempt's timeout. Between two attempts a call waits only in the
        # retry policy's sleep, which close() ends too (``_sleep``): no close goes unseen.
        with anyio.CancelScope() as scope:
            self._calls.add(scope)
            try:
                return await self._attempt_in(
                    scope, request, template, options, call=call, number=number
                )
            finally:
                self._calls.discard(scope)
        # The scope caught its own cancel: close(), or the deadline (a cancel of the
        # caller's own at the same moment is not caught here: it stays a cancel).
        if self.closed:
            raise ClientClosedError("this HelpCrunch client was closed during the call")
        error = APITimeoutError(
            f"no complete answer within {options.timeout:g} s", request_sent=True
        )
        self._transport_failed(error, call, number)
        raise error

    async def _attempt_in(
        self,
        scope: anyio.CancelScope,
        request: Request,
        template: str,
        options: CallOptions,
        *,
        call: _Call,
        number: int,
    ) -> Reply:
        # ``max_wait`` bounds the first attempt's turn only: a retry of a request that went
        # out is never cut short.
        priority = options.priority or INTERACTIVE
        deadline = None
        if number == 1 and options.max_wait is not None:
            deadline = anyio.current_time() + options.max_wait
        waited = await self.turn.acquire(priority, deadline)
        granted = anyio.current_time()  # a 429 tells the limiter how long ago it was sent
        emit = self.observers.emit
        url = self.base_url + request.path
        try:
            # A cancel that came while the turn was being granted (a closed client, a bulk
            # run that stopped) lands here, before the request leaves: asyncio delivers it
            # only at a task's next suspension, which may be past the send.
            await anyio.lowlevel.checkpoint_if_cancelled()
            if self.limiter is not None:
                emit(
                    LimiterWaited(
                        operation=call.operation,
                        call_id=call.call_id,
                        attempt=number,
                        seconds=waited,
                        priority=priority,
                    )
                )
            call.attempts = number
            emit(
                RequestSent(
                    operation=call.operation,
                    call_id=call.call_id,
                    attempt=number,
                    method=request.method,
                    url=url,
                    path=request.path,
                    path_template=template,
                    server_address=self._server[0],
                    server_port=self._server[1],
                )
            )
            call.sent_at = time.perf_counter()
            # The whole exchange runs under one deadline: httpx's timeouts are per socket
            # operation, and a server trickling a byte at a time never trips them.
            scope.deadline = granted + options.timeout
            try:
                response = await self.exchange.send(
                    request.method, url, json_body=request.json_body, params=request.params
                )
            except APIConnectionError as exc:
                self._transport_failed(exc, call, number)
                raise
            scope.deadline = math.inf
        finally:
            self.turn.release()
        if self.limiter is not None and carries_rate_limit_headers(response.headers):
            headers = parse_rate_limit_headers(response.headers)
            if headers is not None:
                await self.limiter.on_rate_limit_headers(headers)
        emit(
            ResponseReceived(
                operation=call.operation,
                call_id=call.call_id,
                attempt=number,
                status_code=response.status_code,
                elapsed=response.elapsed.total_seconds(),
            )
        )
        if response.is_success:
            return Reply(response, self._body(request, response))
        error = error_from_response(response, secret=self._key)
        if isinstance(error, RateLimitError):
            await self._throttled(error, call, number, anyio.current_time() - granted)
        raise error

    def _transport_failed(self, error: APIConnectionError, call: _Call, number: int) -> None:
        self.observers.emit(
            TransportFailed(
                operation=call.operation,
                call_id=call.call_id,
                attempt=number,
                error_type=type(error).__name__,
                request_sent=error.request_sent,
                elapsed=time.perf_counter() - call.sent_at,
            )
        )

    def _body(self, request: Request, response: httpx.Response) -> Any:
        """A success's JSON; ``None`` for no body, or one not JSON where that is allowed."""
        if not response.content:
            return None
        try:
            return decode_json(response.content, secret=self._key)
        except ResponseValidationError:
            if request.json_answer:
                raise
            return None

    async def _throttled(
        self, error: RateLimitError, call: _Call, number: int, sent_ago: float
    ) -> None:
        """A 429: decide the pause once and hold every caller back through the limiter.

        The pause is the server's ``Retry-After`` capped at ``Retry.retry_after_max``, or,
        when it gave none, the limiter's own estimate; the limiter applies it unchanged and
        returns the pause in force, which the event reports. ``sent_ago`` (seconds since the
        attempt was granted) lets the limiter tell a request sent before its pause from one
        sent after. Without a limiter the retry policy sleeps the pause (or its backoff,
        without either).
        """
        asked = error.retry_after
        error.retry_after = pause = self.retry.cap_retry_after(asked)
        rate = None
        if self.limiter is not None:
            pause = await self.limiter.on_rate_limited(pause, sent_ago=sent_ago)
            rate = self.limiter.current_rate
        self.observers.emit(
            Throttled(
                operation=call.operation,
                call_id=call.call_id,
                attempt=number,
                retry_after=asked,
                pause=pause,
                current_rate=rate,
            )
        )
