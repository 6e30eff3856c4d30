"""Events: a typed record of what the send path does, for observers (logs, metrics, traces).

Pass ``on_event=`` to ``HelpCrunch``: a callable, or a list of callables, taking one event.
One call of the API gives, in order::

    CallStarted
    ├── per attempt:  LimiterWaited (if a limiter is set) → RequestSent
    │                 → ResponseReceived | TransportFailed
    │                 → RateLimited (on a 429) → RetryScheduled (if it is retried)
    └── CallCompleted | CallFailed

and each chat of a bulk run ends with a ``BulkItemDone``. Events are frozen attrs objects
carrying no API key and no request or response body. Observers run synchronously, in the
calling task, between the send path's steps: keep them quick (hand slow work to a queue). An
observer that raises never breaks the call; its first failure is logged with a traceback on
the ``helpcrunch_async`` logger, later ones at DEBUG.
"""

from __future__ import annotations

import functools
import itertools
import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import anyio
import attrs
import httpx

from .._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
)

__all__ = [
    "BulkItemDone",
    "CallCompleted",
    "CallEvent",
    "CallFailed",
    "CallStarted",
    "ClientEvent",
    "EventObserver",
    "LimiterWaited",
    "RateLimited",
    "RequestSent",
    "ResponseReceived",
    "RetryReason",
    "RetryScheduled",
    "TransportFailed",
]

if TYPE_CHECKING:
    from .._limit._gate import Priority

logger = logging.getLogger("helpcrunch_async")

#: Why an attempt is retried.
RetryReason = Literal[
    "rate_limited", "server_error", "timeout", "connection_error", "invalid_response", "error"
]

#: A path segment that is an id: replaced by ``{id}`` in ``path_template`` so that spans and
#: metrics group ``/chats/5215752`` and ``/chats/5215753`` together.
_ID_SEGMENT = re.compile(r"/\d+(?=/|$)")


@attrs.frozen(kw_only=True)
class ClientEvent:
    """The base of every event of the client's send path (webhooks have ``WebhookEvent``).

    ``kind`` names the event in logs (``"request_sent"``).
    """

    kind: ClassVar[str] = "event"

    def to_json(self) -> dict[str, Any]:
        """The event as a JSON-ready dict: ``{"event": kind, **fields}``."""
        return {"event": self.kind, **attrs.asdict(self, recurse=False)}


@attrs.frozen(kw_only=True)
class CallEvent(ClientEvent):
    """An event of one API call.

    Attributes:
        operation: What was called, ``"chats.update_status"``; ``"PUT /chats/{id}"`` style
            for ``client.request()`` calls made without one.
        call_id: Tells apart the events of concurrent calls; unique within the process.
    """

    operation: str
    call_id: int


@attrs.frozen(kw_only=True)
class CallStarted(CallEvent):
    """A call began (before any limiter wait).

    Attributes:
        method: The HTTP method.
        path_template: The path relative to ``base_url`` with ids as ``{id}``.
    """

    kind: ClassVar[str] = "call_started"
    method: str
    path_template: str


@attrs.frozen(kw_only=True)
class LimiterWaited(CallEvent):
    """An attempt got its turn: a connection slot, then the rate limiter's grant.

    Attributes:
        attempt: 1 for the first attempt, 2 for the first retry...
        seconds: Time spent waiting for the slot and the limiter (about 0 on an idle key).
        priority: The traffic class the call waited in.
    """

    kind: ClassVar[str] = "limiter_waited"
    attempt: int
    seconds: float
    priority: Priority


@attrs.frozen(kw_only=True)
class RequestSent(CallEvent):
    """An attempt's request is leaving.

    Attributes:
        attempt: 1 for the first attempt, 2 for the first retry...
        method: The HTTP method.
        url: The full URL without its query string (no credentials are ever in it).
        path: The path relative to ``base_url``, ``"/chats/5215752"``.
        path_template: The same with ids as ``{id}``, ``"/chats/{id}"``.
        server_address: The host.
        server_port: The port (443 for https unless the URL says otherwise).
    """

    kind: ClassVar[str] = "request_sent"
    attempt: int
    method: str
    url: str
    path: str
    path_template: str
    server_address: str
    server_port: int


@attrs.frozen(kw_only=True)
class ResponseReceived(CallEvent):
    """An attempt got an HTTP answer (any status).

    Attributes:
        attempt: 1 for the first attempt, 2 for the first retry...
        status_code: The HTTP status.
        elapsed: Seconds from sending the request to reading the whole answer.
    """

    kind: ClassVar[str] = "response_received"
    attempt: int
    status_code: int
    elapsed: float


@attrs.frozen(kw_only=True)
class TransportFailed(CallEvent):
    """An attempt got no HTTP answer: refused, reset, timed out...

    Attributes:
        attempt: 1 for the first attempt, 2 for the first retry...
        error_type: The SDK's exception class name (``"APITimeoutError"``).
        request_sent: ``False`` when the request surely never reached the server.
        elapsed: Seconds from sending the request to the failure.
    """

    kind: ClassVar[str] = "transport_failed"
    attempt: int
    error_type: str
    request_sent: bool
    elapsed: float


@attrs.frozen(kw_only=True)
class RateLimited(CallEvent):
    """An attempt was answered 429 (and the limiter, if any, was told).

    Attributes:
        attempt: The attempt that got the 429.
        retry_after: Seconds the server asked to wait (``Retry-After``), or ``None``.
        pause: The pause the SDK applies for it: ``retry_after`` capped at
            ``Retry.retry_after_max``, handed to the limiter (which holds every caller back)
            or, without one, slept by this call's retry; ``None`` when the server sent no
            ``Retry-After`` (the limiter, or the backoff, then picks the pause).
        current_rate: Requests per ``per`` seconds the limiter allows after the 429, when it
            tells (``TokenBucketLimiter.current_rate``), else ``None``.
    """

    kind: ClassVar[str] = "rate_limited"
    attempt: int
    retry_after: float | None
    pause: float | None
    current_rate: float | None


@attrs.frozen(kw_only=True)
class RetryScheduled(CallEvent):
    """A failed attempt will be sent again after ``delay`` seconds.

    Attributes:
        attempt: The attempt that failed; the next one is ``attempt + 1``.
        reason: Why it is retried.
        error_type: The SDK's exception class name for the failure.
        delay: Seconds the call waits before the next attempt (limiter wait not included).
    """

    kind: ClassVar[str] = "retry_scheduled"
    attempt: int
    reason: RetryReason
    error_type: str
    delay: float


@attrs.frozen(kw_only=True)
class CallCompleted(CallEvent):
    """A call succeeded.

    Attributes:
        attempts: Attempts made (1 when it was not retried).
        status_code: The status of the answer that succeeded.
        elapsed: Seconds from ``CallStarted``, limiter waits and retries included.
    """

    kind: ClassVar[str] = "call_completed"
    attempts: int
    status_code: int
    elapsed: float


@attrs.frozen(kw_only=True)
class CallFailed(CallEvent):
    """A call failed for good (or was cancelled).

    Attributes:
        attempts: Attempts made (0 when it was cancelled before sending anything).
        error_type: The exception's class name (``"NotFoundError"``, ``"Cancelled"``...).
        status_code: The HTTP status of the error, or ``None`` if it was not an HTTP answer.
        elapsed: Seconds from ``CallStarted``, limiter waits and retries included.
    """

    kind: ClassVar[str] = "call_failed"
    attempts: int
    error_type: str
    status_code: int | None
    elapsed: float


@attrs.frozen(kw_only=True)
class BulkItemDone(ClientEvent):
    """One id of a bulk run reached its outcome.

    Attributes:
        operation: The per-id operation, ``"chats.update_status"``.
        ok: ``True`` if it succeeded.
        error_type: The error's class name when it failed (``"ValueError"`` for a bad id).
    """

    kind: ClassVar[str] = "bulk_item_done"
    operation: str
    ok: bool
    error_type: str | None = None


#: What ``on_event=`` takes: a callable given each event.
EventObserver = Callable[[ClientEvent], None]

_call_ids = itertools.count(1)


def next_call_id() -> int:
    """A new call id, unique within the process (observers may be shared by clients)."""
    return next(_call_ids)


def path_template(path: str) -> str:
    """``path`` with numeric segments as ``{id}``: ``/chats/5/x`` -> ``/chats/{id}/x``."""
    return _ID_SEGMENT.sub("/{id}", path)


@functools.lru_cache(maxsize=16)
def _server(base_url: str) -> tuple[str, int]:
    """Host and port of a base URL, parsed once per base URL rather than per request."""
    url = httpx.URL(base_url)
    return url.host, url.port or (443 if url.scheme == "https" else 80)


def retry_reason(exc: BaseException) -> RetryReason:
    """Why a failed attempt is being retried, in one word."""
    if isinstance(exc, RateLimitError):
        return "rate_limited"
    if isinstance(exc, ServerError):
        return "server_error"
    if isinstance(exc, APITimeoutError):
        return "timeout"
    if isinstance(exc, APIConnectionError):
        return "connection_error"
    if isinstance(exc, ResponseValidationError):
        return "invalid_response"
    return "error"


class Emitter:
    """Delivers events to the observers given as ``on_event=``; false when there are none.

    The send path tests ``if emitter:`` before building an event, so with no observer an
    event costs one truth test.
    """

    __slots__ = ("_failed", "observers")

    def __init__(self, on_event: EventObserver | Iterable[EventObserver] | None) -> None:
        given: object = on_event
        if given is None:
            observers: tuple[EventObserver, ...] = ()
        elif callable(given):
            observers = (given,)
        elif isinstance(given, str | bytes) or not isinstance(given, Iterable):
            raise TypeError(
                f"on_event must be a callable or a list of callables, not {type(on_event).__name__}"
            )
        else:
            observers = tuple(given)
            for observer in observers:
                if not callable(observer):
                    raise TypeError(
                        f"every on_event observer must be callable, not {type(observer).__name__}"
                    )
        self.observers = observers
        self._failed: set[int] = set()

    def __bool__(self) -> bool:
        return bool(self.observers)

    def __repr__(self) -> str:
        return f"Emitter({len(self.observers)} observers)"

    def start_call(self, operation: str | None, method: str, path: str) -> CallTrace | None:
        """Emit ``CallStarted`` and return the call's recorder; ``None`` with no observers."""
        if not self.observers:
            return None
        return CallTrace(self, operation, method, path)

    def emit(self, event: ClientEvent) -> None:
        """Give ``event`` to every observer; an observer's exception is logged, never raised."""
        for observer in self.observers:
            try:
                observer(event)
            except Exception:
                # Logged once per observer with its traceback: a broken observer must not
                # flood the log at the request rate either.
                if id(observer) in self._failed:
                    logger.debug("event observer %r failed again on %s", observer, event.kind)
                else:
                    self._failed.add(id(observer))
                    logger.exception(
                        "event observer %r failed on %s; the call goes on "
                        "(further failures of this observer are logged at DEBUG)",
                        observer,
                        event.kind,
                    )


class CallTrace:
    """The events of one call: the send path calls one method per step, in order."""

    __slots__ = ("_emitter", "_started", "attempts", "call_id", "operation", "status_code")

    def __init__(self, emitter: Emitter, operation: str | None, method: str, path: str) -> None:
        template = path_template(path)
        self._emitter = emitter
        self.operation = operation or f"{method} {template}"
        self.call_id = next_call_id()
        self.attempts = 0
        self.status_code: int | None = None
        self._started = anyio.current_time()
        emitter.emit(
            CallStarted(
                operation=self.operation,
                call_id=self.call_id,
                method=method,
                path_template=template,
            )
        )

    def limiter_waited(self, attempt: int, seconds: float, priority: Priority) -> None:
        """The limiter granted ``attempt`` after ``seconds``."""
        self._emitter.emit(
            LimiterWaited(
                operation=self.operation,
                call_id=self.call_id,
                attempt=attempt,
                seconds=seconds,
                priority=priority,
            )
        )

    def request_sent(self, attempt: int, method: str, base_url: str, path: str) -> None:
        """``attempt`` is leaving for ``base_url + path`` (the query string apart)."""
        self.attempts = attempt
        address, port = _server(base_url)
        self._emitter.emit(
            RequestSent(
                operation=self.operation,
                call_id=self.call_id,
                attempt=attempt,
                method=method,
                url=base_url + path,
                path=path,
                path_template=path_template(path),
                server_address=address,
                server_port=port,
            )
        )

    def response_received(self, attempt: int, response: httpx.Response, sent_at: float) -> None:
        """``attempt``, sent at ``sent_at`` (``time.perf_counter()``), got ``response``."""
        self.status_code = response.status_code
        self._emitter.emit(
            ResponseReceived(
                operation=self.operation,
                call_id=self.call_id,
                attempt=attempt,
                status_code=response.status_code,
                elapsed=time.perf_counter() - sent_at,
            )
        )

    def transport_failed(self, attempt: int, error: APIConnectionError, sent_at: float) -> None:
        """``attempt`` got no answer."""
        self._emitter.emit(
            TransportFailed(
                operation=self.operation,
                call_id=self.call_id,
                attempt=attempt,
                error_type=type(error).__name__,
                request_sent=error.request_sent,
                elapsed=time.perf_counter() - sent_at,
            )
        )

    def rate_limited(
        self,
        attempt: int,
        retry_after: float | None,
        pause: float | None,
        current_rate: float | None,
    ) -> None:
        """``attempt`` was answered 429, and the limiter was told."""
        self._emitter.emit(
            RateLimited(
                operation=self.operation,
                call_id=self.call_id,
                attempt=attempt,
                retry_after=retry_after,
                pause=pause,
                current_rate=current_rate,
            )
        )

    def retry_scheduled(self, attempt: int, error: BaseException, delay: float) -> None:
        """``attempt`` failed with ``error`` and will be retried after ``delay`` seconds."""
        self._emitter.emit(
            RetryScheduled(
                operation=self.operation,
                call_id=self.call_id,
                attempt=attempt,
                reason=retry_reason(error),
                error_type=type(error).__name__,
                delay=delay,
            )
        )

    def completed(self) -> None:
        """The call succeeded."""
        self._emitter.emit(
            CallCompleted(
                operation=self.operation,
                call_id=self.call_id,
                attempts=self.attempts,
                status_code=self.status_code or 0,
                elapsed=anyio.current_time() - self._started,
            )
        )

    def failed(self, error: BaseException) -> None:
        """The call ended with ``error`` (a ``HelpCrunchError``, a cancellation...)."""
        status = error.status_code if isinstance(error, APIError) else None
        self._emitter.emit(
            CallFailed(
                operation=self.operation,
                call_id=self.call_id,
                attempts=self.attempts,
                error_type=type(error).__name__,
                status_code=status,
                elapsed=anyio.current_time() - self._started,
            )
        )
