"""OpenTelemetry: a span per call, a child span per attempt, metrics; in-memory exporters."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import helpcrunch_async as hc
from helpcrunch_async.otel import OpenTelemetryObserver
from tests.conftest import API_KEY, chat_payload, status_echo

pytestmark = pytest.mark.anyio


class Telemetry:
    """An observer on private providers, and what they recorded."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.observer = OpenTelemetryObserver(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider
        )

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.name == name]

    def metric_points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        assert data is not None
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]

    def total(self, name: str, **attributes: Any) -> float:
        return sum(  # type: ignore[no-any-return]
            p.value
            for p in self.metric_points(name)
            if attributes.items() <= dict(p.attributes).items()
        )


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    t = Telemetry()
    yield t
    t.tracer_provider.shutdown()
    t.meter_provider.shutdown()


@pytest.fixture
def traced(make_client, telemetry) -> Callable[..., hc.HelpCrunch]:
    def make(**kwargs: Any) -> hc.HelpCrunch:
        client: hc.HelpCrunch = make_client(on_event=telemetry.observer, **kwargs)
        return client

    return make


async def test_call_span_with_one_child_per_attempt(traced, telemetry, api):
    """A 500 then a 200: one call span, two CLIENT attempt spans, the retry as a span event."""
    api.put("/chats/status").mock(side_effect=[httpx.Response(500), status_echo])

    async with traced(rate_limit=hc.RateLimit()) as client:
        await client.chats.update_status(5215752, "closed")

    (call,) = telemetry.named("helpcrunch chats.update_status")
    attempts = telemetry.named("PUT /chats/status")
    assert 2 == len(attempts)
    assert 3 == len(telemetry.spans())
    assert SpanKind.INTERNAL == call.kind
    assert call.parent is None
    assert call.context is not None
    for span in attempts:
        assert SpanKind.CLIENT == span.kind
        assert span.parent is not None
        assert call.context.span_id == span.parent.span_id
    first, second = sorted(attempts, key=lambda s: s.start_time or 0)
    assert {
        "http.request.method": "PUT",
        "server.address": "api.helpcrunch.test",
        "server.port": 443,
        "url.full": "https://api.helpcrunch.test/v1/chats/status",
        "url.template": "/chats/status",
        "http.response.status_code": 500,
        "error.type": "500",
    }.items() <= dict(first.attributes or {}).items()
    assert "http.request.resend_count" not in (first.attributes or {})
    assert "helpcrunch.limiter.wait" in (first.attributes or {})
    assert StatusCode.ERROR == first.status.status_code
    assert 1 == (second.attributes or {})["http.request.resend_count"]
    assert 200 == (second.attributes or {})["http.response.status_code"]
    assert "error.type" not in (second.attributes or {})
    assert StatusCode.UNSET == second.status.status_code
    assert ["helpcrunch.retry"] == [e.name for e in call.events]
    assert "server_error" == call.events[0].attributes["helpcrunch.reason"]
    assert 2 == (call.attributes or {})["helpcrunch.attempts"]


async def test_calls_nest_under_the_current_span(traced, telemetry, api):
    """A bulk run inside the caller's span: every call span is its child, on both backends."""
    api.put("/chats/status").mock(side_effect=status_echo)
    tracer = telemetry.tracer_provider.get_tracer("test")

    async with traced() as client:
        with tracer.start_as_current_span("close stale chats") as run:
            result = await client.chats.bulk_update_status(range(1, 6), "closed", concurrency=3)

    assert result.ok
    calls = telemetry.named("helpcrunch chats.update_status")
    assert 5 == len(calls)
    run_id = run.get_span_context().span_id
    assert {run_id} == {c.parent.span_id for c in calls if c.parent is not None}
    assert 5 == telemetry.total("helpcrunch.client.bulk.outcomes", **{"helpcrunch.outcome": "ok"})


async def test_transport_error_attempt_span(traced, telemetry, api):
    """An attempt with no answer carries error.type = the SDK's error class."""
    api.put("/chats/status").mock(side_effect=[httpx.ConnectError("refused"), status_echo])

    async with traced() as client:
        await client.chats.update_status(1, "closed")

    first = min(telemetry.named("PUT /chats/status"), key=lambda s: s.start_time or 0)
    assert "APIConnectionError" == (first.attributes or {})["error.type"]
    assert StatusCode.ERROR == first.status.status_code


async def test_failed_call_span_and_metrics(traced, telemetry, api):
    """A 404: the call span is an error with error.type; calls and attempts are counted."""
    api.get("/chats/9").mock(return_value=httpx.Response(404, json={"errors": []}))

    async with traced() as client:
        with pytest.raises(hc.NotFoundError):
            await client.chats.get(9)

    (call,) = telemetry.named("helpcrunch chats.get")
    assert StatusCode.ERROR == call.status.status_code
    assert "NotFoundError" == (call.attributes or {})["error.type"]
    (attempt,) = telemetry.named("GET /chats/{id}")
    assert "/chats/{id}" == (attempt.attributes or {})["url.template"]
    assert 1 == telemetry.total("helpcrunch.client.calls", **{"error.type": "NotFoundError"})
    assert 1 == telemetry.total("helpcrunch.client.attempts")


async def test_a_400_is_an_error_attempt(traced, telemetry, api):
    """Every status from 400 up marks the attempt span as an error, with the status as type."""
    api.put("/chats/status").respond(400, json={"errors": [{"code": "invalid_chat_value"}]})

    async with traced() as client:
        with pytest.raises(hc.BadRequestError):
            await client.chats.update_status(1, "closed")

    (attempt,) = telemetry.named("PUT /chats/status")
    assert "400" == (attempt.attributes or {})["error.type"]
    assert StatusCode.ERROR == attempt.status.status_code


async def test_rate_limit_metrics_and_span_event(traced, telemetry, api):
    """A 429 is counted, shows on the call span, and the limiter waits are a histogram."""
    too_many = httpx.Response(429, json={"errors": []}, headers={"Retry-After": "0"})
    api.put("/chats/status").mock(side_effect=[too_many, status_echo])

    async with traced(rate_limit=hc.RateLimit(requests=100, per=1.0, margin=0)) as client:
        await client.chats.update_status(1, "closed")

    assert 1 == telemetry.total("helpcrunch.client.throttled")
    assert 2 == telemetry.total("helpcrunch.client.attempts")
    assert 1 == telemetry.total("helpcrunch.client.calls")
    (call,) = telemetry.named("helpcrunch chats.update_status")
    assert ["helpcrunch.throttled", "helpcrunch.retry"] == [e.name for e in call.events]
    waits = telemetry.metric_points("helpcrunch.client.limiter.wait")
    assert 2 == sum(p.count for p in waits)
    assert {"interactive"} == {p.attributes["helpcrunch.priority"] for p in waits}
    durations = telemetry.metric_points("http.client.request.duration")
    assert {429, 200} == {p.attributes["http.response.status_code"] for p in durations}


async def test_no_key_in_any_span(traced, telemetry, api):
    """No span attribute or event holds the API key."""
    api.put("/chats/status").mock(side_effect=[httpx.Response(500), status_echo])

    async with traced() as client:
        await client.chats.update_status(1, "closed")

    for span in telemetry.spans():
        assert API_KEY not in span.to_json()


async def test_cancelled_call_ends_its_spans(traced, telemetry, api):
    """A call cancelled mid-request leaves no span open: both end as errors."""
    import anyio  # noqa: PLC0415

    in_flight = anyio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        in_flight.set()
        await anyio.sleep_forever()
        return httpx.Response(200, json=chat_payload(1))  # pragma: no cover

    api.put("/chats/status").mock(side_effect=hang)

    async with traced() as client, anyio.create_task_group() as tasks:
        tasks.start_soon(client.chats.update_status, 1, "closed")
        await in_flight.wait()  # cancelled mid-request, however slow the machine
        tasks.cancel_scope.cancel()

    assert 2 == len(telemetry.spans())
    assert {StatusCode.ERROR} == {s.status.status_code for s in telemetry.spans()}
    assert "OpenTelemetryObserver(0 calls open)" == repr(telemetry.observer)


def test_without_the_extra_the_import_error_says_what_to_install(monkeypatch):
    """No opentelemetry-api installed: importing the module names the extra to install."""
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    monkeypatch.delitem(sys.modules, "helpcrunch_async.otel")

    with pytest.raises(ImportError, match=r"helpcrunch-async\[otel\]"):
        importlib.import_module("helpcrunch_async.otel")


# httpx's own generators, left when the body passes the cap, as in tests/test_sender.py.
@pytest.mark.filterwarnings("ignore:Async generator 'httpx.:ResourceWarning")
async def test_oversized_answer_ends_the_attempt_span_with_the_call(traced, telemetry, api):
    """A success past max_response_bytes has no answer event: the call's end closes both."""
    api.get("/chats/1").mock(return_value=httpx.Response(200, json=chat_payload(1)))

    async with traced(max_response_bytes=10) as client:
        with pytest.raises(hc.ResponseValidationError):
            await client.chats.get(1)

    assert 2 == len(telemetry.spans())
    assert {"ResponseValidationError"} == {
        (s.attributes or {})["error.type"] for s in telemetry.spans()
    }


def test_an_attempt_left_open_is_ended_by_the_next(telemetry):
    """Should an attempt end with no answer event, the next attempt ends its span as _OTHER."""
    common: dict[str, Any] = {"operation": "chats.get", "call_id": 1}
    sent: dict[str, Any] = {
        "method": "GET",
        "url": "https://x.test/v1/chats/1",
        "path": "/chats/1",
        "path_template": "/chats/{id}",
        "server_address": "x.test",
        "server_port": 443,
    }
    observer = telemetry.observer
    observer(hc.CallStarted(method="GET", path_template="/chats/{id}", **common))
    observer(hc.RequestSent(attempt=1, **sent, **common))
    observer(hc.RequestSent(attempt=2, **sent, **common))
    observer(hc.ResponseReceived(attempt=2, status_code=200, elapsed=0.01, **common))
    observer(hc.CallCompleted(attempts=2, status_code=200, elapsed=0.02, **common))

    first, second = sorted(telemetry.named("GET /chats/{id}"), key=lambda s: s.start_time or 0)
    assert "_OTHER" == (first.attributes or {})["error.type"]
    assert 200 == (second.attributes or {})["http.response.status_code"]


def test_events_of_calls_it_never_saw_start_are_ignored(telemetry):
    """An observer attached mid-call (or shared late) ignores the rest of that call's spans."""
    common: dict[str, Any] = {"operation": "chats.get", "call_id": 10**9}
    observer = telemetry.observer
    observer(
        hc.RequestSent(
            attempt=1,
            method="GET",
            url="https://x.test/v1/chats/1",
            path="/chats/1",
            path_template="/chats/{id}",
            server_address="x.test",
            server_port=443,
            **common,
        )
    )
    observer(hc.LimiterWaited(attempt=2, seconds=0.5, priority="background", **common))
    observer(hc.ResponseReceived(attempt=1, status_code=500, elapsed=0.01, **common))
    observer(
        hc.TransportFailed(
            attempt=2, error_type="APITimeoutError", request_sent=True, elapsed=0.01, **common
        )
    )
    observer(hc.Throttled(attempt=1, retry_after=None, pause=None, current_rate=None, **common))
    observer(
        hc.RetryScheduled(
            attempt=1, reason="timeout", error_type="APITimeoutError", delay=0.1, **common
        )
    )
    observer(
        hc.CallFailed(
            attempts=2, error_type="APITimeoutError", status_code=None, elapsed=0.2, **common
        )
    )
    observer(hc.ClientEvent())

    assert [] == telemetry.spans()
    assert 1 == telemetry.total("helpcrunch.client.throttled")
    assert 1 == telemetry.total("helpcrunch.client.calls", **{"error.type": "APITimeoutError"})


@pytest.mark.emulator
async def test_bulk_run_against_the_emulator_with_faults(telemetry):
    """Over real sockets, a bulk run with injected 5xx: one span per call, retries visible."""
    from helpcrunch_async.emulator import EmulatorConfig, Faults, serve  # noqa: PLC0415

    config = EmulatorConfig(chats=30, rate_limit=None, faults=Faults(server_errors=0.3))
    tracer = telemetry.tracer_provider.get_tracer("test")
    async with serve(config) as emulator:
        first = min(emulator.state.chats)
        ids = range(first, first + 20)
        async with hc.HelpCrunch(
            emulator.api_key,
            base_url=emulator.base_url,
            rate_limit=None,
            retry=hc.Retry(backoff=0),
            max_retries=20,
            on_event=telemetry.observer,
        ) as client:
            with tracer.start_as_current_span("close stale chats") as run:
                result = await client.chats.bulk_update_status(ids, "closed")

    assert result.ok
    calls = telemetry.named("helpcrunch chats.update_status")
    attempts = telemetry.named("PUT /chats/status")
    assert 20 == len(calls)
    assert {run.get_span_context().span_id} == {c.parent.span_id for c in calls if c.parent}
    assert {c.context.span_id for c in calls if c.context} == {
        a.parent.span_id for a in attempts if a.parent
    }
    retried = [a for a in attempts if "http.request.resend_count" in (a.attributes or {})]
    failed = [a for a in attempts if (a.attributes or {}).get("error.type")]
    assert len(retried) == len(failed) == len(attempts) - 20
    assert failed  # the emulator's fault dice are seeded: this run always meets some 5xx
    assert 20 == telemetry.total("helpcrunch.client.bulk.outcomes", **{"helpcrunch.outcome": "ok"})
