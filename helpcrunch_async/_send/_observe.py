"""One way to observe: every event goes to the built-in observers, then to the user's.

The built-in observers are the client's statistics (``HelpCrunch.stats()``) and its DEBUG
log; the user's are those given as ``on_event=`` (OpenTelemetry, ``--log-json``, your own).
All of them see the same events, in the same order, so a counter can never disagree with a
trace.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import math
import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from .._errors import (
    APIConnectionError,
    APITimeoutError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
)
from ._events import (
    ClientEvent,
    LimiterWaited,
    RequestSent,
    ResponseReceived,
    Throttled,
    TransportFailed,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._events import EventObserver, RetryReason

__all__ = [
    "ClientStats",
    "Observers",
    "StatsObserver",
    "next_call_id",
    "path_template",
    "retry_reason",
]

logger = logging.getLogger("helpcrunch_async")

#: A path segment that is an id: replaced by ``{id}`` in ``path_template`` so that spans and
#: metrics group ``/chats/5215752`` and ``/chats/5215753`` together.
_ID_SEGMENT = re.compile(r"/\d+(?=/|$)")

_call_ids = itertools.count(1)


def next_call_id() -> int:
    """A new call id, unique within the process (observers may be shared by clients)."""
    return next(_call_ids)


def path_template(path: str) -> str:
    """``path`` with numeric segments as ``{id}``: ``/chats/5/x`` -> ``/chats/{id}/x``."""
    return _ID_SEGMENT.sub("/{id}", path)


def retry_reason(exc: BaseException) -> RetryReason:
    """Why a failed attempt is being retried, in one word."""
    if isinstance(exc, RateLimitError):
        return "throttled"
    if isinstance(exc, ServerError):
        return "server_error"
    if isinstance(exc, APITimeoutError):
        return "timeout"
    if isinstance(exc, APIConnectionError):
        return "connection_error"
    if isinstance(exc, ResponseValidationError):
        return "invalid_response"
    return "error"


def _frozen_map(value: Mapping[Any, Any]) -> Mapping[Any, Any]:
    """A read-only copy, so that a snapshot stays one."""
    return MappingProxyType(dict(value))


@attrs.frozen
class ClientStats:
    """A snapshot of what a client has done since it was created (``HelpCrunch.stats()``).

    Attributes:
        requests: HTTP requests sent (every attempt counts).
        retries: Attempts that were retries of an earlier failed attempt.
        throttled: 429 answers received.
        limiter_wait: Seconds callers spent waiting for their turn (a connection slot and
            the rate limiter), summed over callers: with 10 callers waiting one second
            together, 10 seconds.
        learned_limit: Requests per window the limiter learned the key really allows, when
            that is below the configured rate (your plan's limit, or another program using
            the key steadily). Learned only from evidence, 429s that recur at a rate already
            refused, across windows; never from one burst of 429s (a job resumed right after
            a stop, another program's burst). ``None`` while nothing is learned, and again
            once the configured rate went through a window without a 429. A lower limit
            that a server's rate-limit headers state counts too.
        status_counts: HTTP status -> answers received with it (every attempt counts).
        transport_errors: Attempts that got no HTTP answer (refused, reset, timed out).
        limiter_wait_by_priority: ``limiter_wait`` split by traffic class
            (``"interactive"``, ``"background"``).
        throttled_pause: Seconds of pause the 429s imposed: the pauses applied, as the
            ``throttled`` events report them (``Retry-After`` capped once at
            ``retry_after_max``, or the limiter's estimate), counted once where they
            overlap. With a limiter every caller was held back that long; without one, the
            calls that got the 429s.
    """

    requests: int = 0
    retries: int = 0
    throttled: int = 0
    limiter_wait: float = 0.0
    learned_limit: int | None = None
    status_counts: Mapping[int, int] = attrs.field(factory=dict, converter=_frozen_map, hash=False)
    transport_errors: int = 0
    limiter_wait_by_priority: Mapping[str, float] = attrs.field(
        factory=dict, converter=_frozen_map, hash=False
    )
    throttled_pause: float = 0.0


class StatsObserver:
    """The counters behind ``HelpCrunch.stats()``: an observer of the client's own events."""

    __slots__ = (
        "_handlers",
        "limiter_wait",
        "limiter_wait_by_priority",
        "paused_until",
        "requests",
        "retries",
        "status_counts",
        "throttled",
        "throttled_pause",
        "transport_errors",
    )

    def __init__(self) -> None:
        self.requests = self.retries = self.throttled = self.transport_errors = 0
        self.limiter_wait = self.throttled_pause = 0.0
        #: When the latest pause ends (the event loop's clock), to count overlaps once.
        self.paused_until = -math.inf
        self.status_counts: dict[int, int] = {}
        self.limiter_wait_by_priority: dict[str, float] = {}
        self._handlers: dict[type[ClientEvent], Callable[[Any], None]] = {
            LimiterWaited: self._waited,
            RequestSent: self._sent,
            ResponseReceived: self._answered,
            TransportFailed: self._failed,
            Throttled: self._throttled,
        }

    def reads(self, kind: type[ClientEvent]) -> bool:
        """Whether events of ``kind`` change a counter."""
        return kind in self._handlers

    def __call__(self, event: ClientEvent) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)

    def _waited(self, event: LimiterWaited) -> None:
        self.limiter_wait += event.seconds
        by_class = self.limiter_wait_by_priority
        by_class[event.priority] = by_class.get(event.priority, 0.0) + event.seconds

    def _sent(self, event: RequestSent) -> None:
        self.requests += 1
        self.retries += event.attempt > 1

    def _answered(self, event: ResponseReceived) -> None:
        self.status_counts[event.status_code] = self.status_counts.get(event.status_code, 0) + 1

    def _failed(self, _: TransportFailed) -> None:
        self.transport_errors += 1

    def _throttled(self, event: Throttled) -> None:
        self.throttled += 1
        if event.pause:
            now = anyio.current_time()  # emitted in the send path: an event loop runs
            end = now + event.pause
            overlap = self.paused_until > now
            self.throttled_pause += max(0.0, end - self.paused_until) if overlap else event.pause
            self.paused_until = max(self.paused_until, end)

    def snapshot(self, learned_limit: int | None) -> ClientStats:
        """The counters now, as a frozen ``ClientStats``."""
        return ClientStats(
            requests=self.requests,
            retries=self.retries,
            throttled=self.throttled,
            limiter_wait=self.limiter_wait,
            learned_limit=learned_limit,
            status_counts=self.status_counts,
            transport_errors=self.transport_errors,
            limiter_wait_by_priority=self.limiter_wait_by_priority,
            throttled_pause=self.throttled_pause,
        )


def log_event(event: ClientEvent) -> None:
    """The client's DEBUG log (logger ``helpcrunch_async``): one line per event.

    ``kind key=value ...``, the event's fields in order, so a log can be grepped by any of
    them (``call_id=42``); like the events, it never holds the key or a body.
    """
    if logger.isEnabledFor(logging.DEBUG):
        fields = attrs.asdict(event, recurse=False)
        logger.debug("%s %s", event.kind, " ".join(f"{k}={v!r}" for k, v in fields.items()))


def _is_async(observer: object) -> bool:
    call = getattr(observer, "__call__", None)  # noqa: B004 - an instance's async __call__
    return inspect.iscoroutinefunction(observer) or inspect.iscoroutinefunction(call)


def _never_awaitable(result: object) -> None:
    """Refuse what an observer returned if it is awaitable: nobody would ever await it.

    A sync callable that returned a coroutine (a lambda around an async function) would
    never run; the coroutine is closed, so Python warns of nothing, and the refusal is
    logged once as the observer's failure.
    """
    if result is not None and inspect.isawaitable(result):
        if inspect.iscoroutine(result):
            result.close()
        raise TypeError("the observer returned an awaitable, which is never awaited")


class Observers:
    """Delivers each event to the built-in observers, then to the ones given as ``on_event=``.

    Observers run synchronously, in the calling task: an ``async def`` observer is refused
    when the client is built (it would have to be awaited inside the send path, holding up
    the call; hand the event to a queue or a memory stream instead). An observer that raises
    never breaks a call: its first failure is logged with its traceback, later ones at DEBUG.

    Raises:
        TypeError: ``on_event`` is not a callable or a list of callables, or one of them is
            an ``async def`` function.
    """

    __slots__ = ("_failed", "stats", "user")

    def __init__(self, on_event: EventObserver | Iterable[EventObserver] | None) -> None:
        given: object = on_event
        if given is None:
            user: tuple[EventObserver, ...] = ()
        elif callable(given):
            user = (given,)
        elif isinstance(given, str | bytes) or not isinstance(given, Iterable):
            raise TypeError(
                f"on_event must be a callable or a list of callables, not {type(on_event).__name__}"
            )
        else:
            user = tuple(given)
        for observer in user:
            if not callable(observer):
                raise TypeError(
                    f"every on_event observer must be callable, not {type(observer).__name__}"
                )
            if _is_async(observer):
                raise TypeError(
                    f"on_event observer {observer!r} is an async function; observers run "
                    "synchronously in the send path: use a plain function, and hand slow work "
                    "to a queue or an anyio memory stream"
                )
        self.stats = StatsObserver()
        self.user = user
        self._failed: set[int] = set()

    def __repr__(self) -> str:
        return f"Observers(stats, log, {len(self.user)} given)"

    def wants(self, kind: type[ClientEvent]) -> bool:
        """Whether an event of ``kind`` would reach an observer now.

        The send path builds an event only if one would: the statistics read some kinds;
        your observers and the DEBUG log read them all.
        """
        return bool(self.user) or self.stats.reads(kind) or logger.isEnabledFor(logging.DEBUG)

    def emit(self, event: ClientEvent) -> None:
        """Give ``event`` to every observer; an observer's exception is logged, never raised."""
        self.stats(event)
        log_event(event)
        for observer in self.user:
            try:
                _never_awaitable(observer(event))
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
