"""OpenTelemetry traces and metrics for the client, from its events (extra ``otel``).

Enable it with one line:

```python
from helpcrunch_async.otel import OpenTelemetryObserver

client = hc.HelpCrunch(on_event=OpenTelemetryObserver())
```

It uses the global tracer and meter providers unless given others, and depends on
``opentelemetry-api`` only: with no SDK configured every span and instrument is a no-op.

Traces: one span per SDK call, ``helpcrunch chats.update_status`` (kind INTERNAL, a child of
whatever span is current when the call starts, so a bulk run inside your own span nests under
it), with one CLIENT child span per attempt named ``PUT /chats/status``, following the HTTP
client semantic conventions: ``http.request.method``, ``server.address``, ``server.port``,
``url.full`` (no query string), ``url.template``, ``http.request.resend_count`` (on retries),
``http.response.status_code`` and ``error.type``. Limiter waits are the attempt's
``helpcrunch.limiter.wait`` attribute; retries and 429s are span events on the call's span.

Metrics: ``helpcrunch.client.calls``, ``helpcrunch.client.attempts``,
``helpcrunch.client.throttled`` (counters), ``helpcrunch.client.limiter.wait`` (histogram,
seconds, by ``helpcrunch.priority``), ``http.client.request.duration`` (the semconv
histogram, seconds), and ``helpcrunch.client.bulk.outcomes`` (counter, by
``helpcrunch.outcome``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

try:
    from opentelemetry import metrics, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError as exc:  # pragma: no cover - exercised by hiding the package in a test
    raise ImportError(
        'helpcrunch_async.otel needs the otel extra: pip install "helpcrunch-async[otel]"'
    ) from exc

from .__version__ import __version__
from ._send._events import (
    BulkItemDone,
    CallCompleted,
    CallFailed,
    CallStarted,
    ClientEvent,
    LimiterWaited,
    RequestSent,
    ResponseReceived,
    RetryScheduled,
    Throttled,
    TransportFailed,
)

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["INSTRUMENTATION_NAME", "OpenTelemetryObserver"]

#: The instrumentation scope of the tracer and the meter.
INSTRUMENTATION_NAME = "helpcrunch_async"

#: Bucket boundaries (seconds) the HTTP semantic conventions advise for request durations.
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
#: Limiter waits run from nothing (an idle key) to a whole window (60 s by default) and more.
_WAIT_BUCKETS = (0.0, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
#: HTTP statuses from which an answer is an error for a client span.
_HTTP_ERROR = 400


class _Attempt:
    """What the observer keeps of an attempt in flight: its span and metric attributes."""

    __slots__ = ("attrs", "span")

    def __init__(self, span: trace.Span, attributes: dict[str, Any]) -> None:
        self.span = span
        self.attrs = attributes


class _Call:
    __slots__ = ("attempt", "span", "wait")

    def __init__(self, span: trace.Span) -> None:
        self.span = span
        self.attempt: _Attempt | None = None
        self.wait: float | None = None


class OpenTelemetryObserver:
    """An ``on_event`` observer that turns the client's events into spans and metrics.

    One observer may serve several clients. Pass ``tracer_provider``/``meter_provider`` to use
    providers other than the global ones (tests do).

    Examples:
        >>> client = hc.HelpCrunch(on_event=OpenTelemetryObserver())  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self._tracer = trace.get_tracer(
            INSTRUMENTATION_NAME, __version__, tracer_provider=tracer_provider
        )
        meter = metrics.get_meter(INSTRUMENTATION_NAME, __version__, meter_provider=meter_provider)
        self._calls = meter.create_counter(
            "helpcrunch.client.calls", unit="{call}", description="SDK calls finished."
        )
        self._attempts = meter.create_counter(
            "helpcrunch.client.attempts", unit="{attempt}", description="HTTP requests sent."
        )
        self._rate_limited = meter.create_counter(
            "helpcrunch.client.throttled", unit="{response}", description="429 answers."
        )
        self._limiter_wait = meter.create_histogram(
            "helpcrunch.client.limiter.wait",
            unit="s",
            description="Time an attempt waited for the rate limiter.",
            explicit_bucket_boundaries_advisory=_WAIT_BUCKETS,
        )
        self._duration = meter.create_histogram(
            "http.client.request.duration",
            unit="s",
            description="Duration of HTTP client requests.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self._bulk = meter.create_counter(
            "helpcrunch.client.bulk.outcomes",
            unit="{outcome}",
            description="Outcomes of bulk runs, one per distinct id.",
        )
        self._open: dict[int, _Call] = {}
        self._handlers: dict[type[ClientEvent], Callable[[Any], None]] = {
            CallStarted: self._call_started,
            LimiterWaited: self._limiter_waited,
            RequestSent: self._request_sent,
            ResponseReceived: self._response_received,
            TransportFailed: self._transport_failed,
            Throttled: self._throttled_event,
            RetryScheduled: self._retry_scheduled,
            CallCompleted: self._call_completed,
            CallFailed: self._call_failed,
            BulkItemDone: self._bulk_item_done,
        }

    def __repr__(self) -> str:
        return f"OpenTelemetryObserver({len(self._open)} calls open)"

    def __call__(self, event: ClientEvent) -> None:
        """Record ``event``; unknown event types are ignored."""
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)

    def _call_started(self, event: CallStarted) -> None:
        span = self._tracer.start_span(
            f"helpcrunch {event.operation}",
            kind=SpanKind.INTERNAL,
            attributes={"helpcrunch.operation": event.operation},
        )
        self._open[event.call_id] = _Call(span)

    def _limiter_waited(self, event: LimiterWaited) -> None:
        self._limiter_wait.record(
            event.seconds,
            {"helpcrunch.operation": event.operation, "helpcrunch.priority": event.priority},
        )
        call = self._open.get(event.call_id)
        if call is not None:
            call.wait = event.seconds

    def _request_sent(self, event: RequestSent) -> None:
        call = self._open.get(event.call_id)
        if call is None:
            return
        if call.attempt is not None:  # the last attempt ended without an answer event
            _end_with_error(call.attempt.span, _OTHER_ERROR)
        attributes: dict[str, Any] = {
            "http.request.method": event.method,
            "server.address": event.server_address,
            "server.port": event.server_port,
            "url.template": event.path_template,
        }
        span_attributes = dict(attributes)
        span_attributes["url.full"] = event.url
        if event.attempt > 1:
            span_attributes["http.request.resend_count"] = event.attempt - 1
        if call.wait is not None:
            span_attributes["helpcrunch.limiter.wait"] = call.wait
            call.wait = None
        span = self._tracer.start_span(
            f"{event.method} {event.path_template}",
            context=trace.set_span_in_context(call.span),
            kind=SpanKind.CLIENT,
            attributes=span_attributes,
        )
        call.attempt = _Attempt(span, attributes)
        self._attempts.add(1, {"helpcrunch.operation": event.operation})

    def _response_received(self, event: ResponseReceived) -> None:
        attempt = self._end_attempt(event.call_id)
        if attempt is None:
            return
        attempt.attrs["http.response.status_code"] = event.status_code
        attempt.span.set_attribute("http.response.status_code", event.status_code)
        if event.status_code >= _HTTP_ERROR:
            attempt.attrs["error.type"] = str(event.status_code)
            attempt.span.set_attribute("error.type", str(event.status_code))
            attempt.span.set_status(Status(StatusCode.ERROR))
        attempt.span.end()
        self._duration.record(event.elapsed, attempt.attrs)

    def _transport_failed(self, event: TransportFailed) -> None:
        attempt = self._end_attempt(event.call_id)
        if attempt is None:
            return
        attempt.attrs["error.type"] = event.error_type
        attempt.span.set_attribute("error.type", event.error_type)
        attempt.span.set_status(Status(StatusCode.ERROR, event.error_type))
        attempt.span.end()
        self._duration.record(event.elapsed, attempt.attrs)

    def _end_attempt(self, call_id: int) -> _Attempt | None:
        call = self._open.get(call_id)
        if call is None or call.attempt is None:
            return None
        attempt, call.attempt = call.attempt, None
        return attempt

    def _throttled_event(self, event: Throttled) -> None:
        self._rate_limited.add(1, {"helpcrunch.operation": event.operation})
        call = self._open.get(event.call_id)
        if call is not None:
            call.span.add_event("helpcrunch.throttled", _present(event, _THROTTLED_FIELDS))

    def _retry_scheduled(self, event: RetryScheduled) -> None:
        call = self._open.get(event.call_id)
        if call is not None:
            call.span.add_event("helpcrunch.retry", _present(event, _RETRY_FIELDS))

    def _call_completed(self, event: CallCompleted) -> None:
        self._calls.add(1, {"helpcrunch.operation": event.operation})
        call = self._open.pop(event.call_id, None)
        if call is not None:
            call.span.set_attribute("helpcrunch.attempts", event.attempts)
            call.span.end()

    def _call_failed(self, event: CallFailed) -> None:
        failed = {"helpcrunch.operation": event.operation, "error.type": event.error_type}
        self._calls.add(1, failed)
        call = self._open.pop(event.call_id, None)
        if call is None:
            return
        if call.attempt is not None:  # cancelled mid-request: no answer will end it
            _end_with_error(call.attempt.span, event.error_type)
        call.span.set_attribute("helpcrunch.attempts", event.attempts)
        _end_with_error(call.span, event.error_type)

    def _bulk_item_done(self, event: BulkItemDone) -> None:
        attributes: dict[str, Any] = {
            "helpcrunch.operation": event.operation,
            "helpcrunch.outcome": "ok" if event.ok else "failed",
        }
        if event.error_type is not None:
            attributes["error.type"] = event.error_type
        self._bulk.add(1, attributes)


#: ``error.type`` when no more precise one is known, as the semantic conventions say.
_OTHER_ERROR = "_OTHER"


def _end_with_error(span: trace.Span, error_type: str) -> None:
    span.set_attribute("error.type", error_type)
    span.set_status(Status(StatusCode.ERROR, error_type))
    span.end()


_THROTTLED_FIELDS = ("attempt", "retry_after", "pause", "current_rate")
_RETRY_FIELDS = ("attempt", "reason", "error_type", "delay")


def _present(event: ClientEvent, fields: tuple[str, ...]) -> dict[str, Any]:
    """Span-event attributes: the fields that have a value (OpenTelemetry drops ``None``)."""
    values = {f"helpcrunch.{name}": getattr(event, name) for name in fields}
    return {key: value for key, value in values.items() if value is not None}
