"""Events: a typed record of what the send path does, for observers (logs, metrics, traces).

Pass ``on_event=`` to ``HelpCrunch``: a callable, or a list of callables, taking one event.
One call of the API gives, in order:

```text
CallStarted
├── per attempt:  LimiterWaited (if a limiter is set) → RequestSent
│                 → ResponseReceived | TransportFailed
│                 → Throttled (on a 429) → RetryScheduled (if it is retried)
└── CallCompleted | CallFailed
```

and each chat of a bulk run ends with a ``BulkItemDone``. Events are frozen attrs objects
carrying no API key and no request or response body. Observers run synchronously, in the
calling task, between the send path's steps: keep them quick (hand slow work to a queue). An
observer that raises never breaks the call; its first failure is logged with a traceback on
the ``helpcrunch_async`` logger, later ones at DEBUG.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import attrs

__all__ = [
    "BulkItemDone",
    "CallCompleted",
    "CallEvent",
    "CallFailed",
    "CallStarted",
    "ClientEvent",
    "EventObserver",
    "LimiterWaited",
    "RequestSent",
    "ResponseReceived",
    "RetryReason",
    "RetryScheduled",
    "Throttled",
    "TransportFailed",
]

if TYPE_CHECKING:
    from .._limit._gate import Priority

#: Why an attempt is retried.
RetryReason = Literal[
    "throttled", "server_error", "timeout", "connection_error", "invalid_response", "error"
]


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
class Throttled(CallEvent):
    """An attempt was answered 429: the server throttled the key (the limiter was told).

    Attributes:
        attempt: The attempt that got the 429.
        retry_after: Seconds the server asked to wait (``Retry-After``), or ``None``.
        pause: Seconds of the pause applied for it, decided once: ``retry_after`` capped
            at ``Retry.retry_after_max``, or the limiter's own estimate when the server gave
            none (a whole window when the key was busy, less once the limiter has evidence
            of a lower limit); with a limiter every caller is held back that long from now
            (for a request sent before a pause began, what is left of that pause), without
            one this call's retry sleeps it. ``None`` without a limiter and without a
            ``Retry-After`` (the backoff then decides: see ``RetryScheduled.delay``).
        current_rate: Requests per window the limiter allows after the 429, or ``None``
            without a limiter.
    """

    kind: ClassVar[str] = "throttled"
    attempt: int
    retry_after: float | None
    pause: float | None
    current_rate: int | None


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
