"""Events: every kind, in order, on asyncio and trio; observers never break a call."""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import anyio
import httpx
import pytest
import respx
import trio.testing

import helpcrunch_async as hc
from helpcrunch_async._send._observe import Observers, path_template, retry_reason
from tests.conftest import API_KEY, chat_payload, status_echo

pytestmark = pytest.mark.anyio

OK = httpx.Response(200, json=chat_payload(1))


class Recorder:
    """An observer that keeps every event."""

    def __init__(self) -> None:
        self.events: list[hc.ClientEvent] = []

    def __call__(self, event: hc.ClientEvent) -> None:
        self.events.append(event)

    @property
    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    def of(self, cls: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, cls)]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def observed(make_client, recorder) -> Callable[..., hc.HelpCrunch]:
    """Build fast clients whose events go to ``recorder``."""

    def make(**kwargs: Any) -> hc.HelpCrunch:
        client: hc.HelpCrunch = make_client(on_event=recorder, **kwargs)
        return client

    return make


async def test_successful_call_events_in_order(observed, recorder, api):
    """A call that succeeds at once: started, limiter, sent, response, completed."""
    api.put("/chats/status").mock(side_effect=status_echo)

    async with observed(rate_limit=hc.RateLimit()) as client:
        await client.chats.update_status(5215752, "closed")

    expected = [
        "call_started",
        "limiter_waited",
        "request_sent",
        "response_received",
        "call_completed",
    ]
    assert expected == recorder.kinds
    started, waited, sent, answered, completed = recorder.events
    assert {"chats.update_status"} == {e.operation for e in recorder.of(hc.CallEvent)}
    assert 1 == len({e.call_id for e in recorder.of(hc.CallEvent)})
    assert ("PUT", "/chats/status") == (started.method, started.path_template)
    assert (1, "interactive") == (waited.attempt, waited.priority)
    assert waited.seconds >= 0
    assert ("PUT", 1, "/chats/status") == (sent.method, sent.attempt, sent.path)
    assert "https://api.helpcrunch.test/v1/chats/status" == sent.url
    assert ("api.helpcrunch.test", 443) == (sent.server_address, sent.server_port)
    assert 200 == answered.status_code
    assert answered.elapsed >= 0
    assert (1, 200) == (completed.attempts, completed.status_code)


@pytest.mark.parametrize(
    ("base_url", "server"),
    [
        ("http://localhost/v1", ("localhost", 80)),
        ("https://helpcrunch.internal/v1", ("helpcrunch.internal", 443)),
        ("http://127.0.0.1:8080/v1", ("127.0.0.1", 8080)),
    ],
)
async def test_the_server_port_is_the_schemes_default_unless_given(
    observed, recorder, base_url, server
):
    """``server_port`` (OpenTelemetry's ``server.port``) is the URL's port, else 80 for
    http and 443 for https."""
    with respx.mock(base_url=base_url) as router:
        router.put("/chats/status").mock(side_effect=status_echo)
        async with observed(base_url=base_url) as client:
            await client.chats.update_status(1, "closed")

    (sent,) = recorder.of(hc.RequestSent)
    assert server == (sent.server_address, sent.server_port)


@pytest.mark.parametrize(
    "anyio_backend", [("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})]
)
async def test_limiter_wait_is_reported(observed, recorder, api):
    """On trio's virtual clock: the second call of a 1-per-10 s budget waits about 10 s."""
    api.put("/chats/status").mock(side_effect=status_echo)

    async with observed(rate_limit=hc.RateLimit(requests=1, per=10.0, burst=1, margin=0)) as c:
        await c.chats.update_status(1, "closed")
        await c.chats.update_status(2, "closed")

    waits = [e.seconds for e in recorder.of(hc.LimiterWaited)]
    assert 0.0 == waits[0]
    assert 10.0 == pytest.approx(waits[1], abs=0.01)
    assert waits[1] == pytest.approx(c.stats().limiter_wait_by_priority["interactive"])


async def test_no_limiter_no_limiter_event(observed, recorder, api):
    """Without a limiter there is no wait to report."""
    api.get("/chats/7").mock(return_value=httpx.Response(200, json=chat_payload(7)))

    async with observed() as client:
        await client.chats.get(7)

    assert ["call_started", "request_sent", "response_received", "call_completed"] == (
        recorder.kinds
    )
    sent = recorder.of(hc.RequestSent)[0]
    assert ("chats.get", "/chats/7", "/chats/{id}") == (
        sent.operation,
        sent.path,
        sent.path_template,
    )


async def test_server_error_retry_events(observed, recorder, api):
    """A 500 then a 200: the retry, its reason and delay, and the second attempt."""
    api.put("/chats/status").mock(side_effect=[httpx.Response(500), status_echo])

    async with observed() as client:
        await client.chats.update_status(1, "closed")

    assert [
        "call_started",
        "request_sent",
        "response_received",
        "retry_scheduled",
        "request_sent",
        "response_received",
        "call_completed",
    ] == recorder.kinds
    retry = recorder.of(hc.RetryScheduled)[0]
    assert (1, "server_error", "ServerError", 0.0) == (
        retry.attempt,
        retry.reason,
        retry.error_type,
        retry.delay,
    )
    assert [1, 2] == [e.attempt for e in recorder.of(hc.RequestSent)]
    assert [500, 200] == [e.status_code for e in recorder.of(hc.ResponseReceived)]
    assert 2 == recorder.of(hc.CallCompleted)[0].attempts


@pytest.mark.parametrize("ending", ["completed", "failed"])
async def test_every_event_of_a_call_names_it_numbers_its_attempt_and_times_it(
    observed, recorder, api, ending
):
    """A call's events share its operation and id, say their attempt, and time what they end."""
    last = status_echo if ending == "completed" else httpx.Response(404, json={"errors": []})
    api.put("/chats/status").mock(
        side_effect=[httpx.Response(500), httpx.ConnectError("refused"), last]
    )

    async with observed(max_retries=2) as client:
        started = time.perf_counter()
        with contextlib.suppress(hc.NotFoundError):
            await client.chats.update_status(1, "closed")
        took = time.perf_counter() - started

    events = recorder.of(hc.CallEvent)
    assert 10 == len(events)  # started, 3 sent, 2 received, 1 failed, 2 retries, the end
    assert {("chats.update_status", events[0].call_id)} == {
        (e.operation, e.call_id) for e in events
    }
    assert isinstance(events[0].call_id, int)
    assert {
        "request_sent": [1, 2, 3],
        "response_received": [1, 3],
        "transport_failed": [2],
        "retry_scheduled": [1, 2],
    } == {
        kind: [e.attempt for e in events if e.kind == kind]
        for kind in ("request_sent", "response_received", "transport_failed", "retry_scheduled")
    }
    assert f"call_{ending}" == events[-1].kind
    timed = [e for e in events if hasattr(e, "elapsed")]
    assert 4 == len(timed)  # 2 received, 1 failed, the end
    assert all(0 <= e.elapsed <= took for e in timed)


async def test_throttled_events(observed, recorder, api):
    """A 429 reports Retry-After, the pause and the rate in force (one 429 lowers nothing),
    then a throttled retry."""
    too_many = httpx.Response(429, json={"errors": []}, headers={"Retry-After": "0"})
    api.put("/chats/status").mock(side_effect=[too_many, status_echo])

    async with observed(rate_limit=hc.RateLimit(requests=100, per=1.0, margin=0)) as client:
        await client.chats.update_status(1, "closed")

    limited = recorder.of(hc.Throttled)
    assert 1 == len(limited)
    assert (1, 0.0, 0.0) == (limited[0].attempt, limited[0].retry_after, limited[0].pause)
    assert 100 == limited[0].current_rate
    assert "throttled" == recorder.of(hc.RetryScheduled)[0].reason
    assert recorder.kinds.index("throttled") < recorder.kinds.index("retry_scheduled")


async def test_throttled_without_a_limiter_names_its_call_and_no_rate(observed, recorder, api):
    """With no limiter, the 429's event still names its call; it has no rate to report."""
    too_many = httpx.Response(429, json={"errors": []}, headers={"Retry-After": "0"})
    api.put("/chats/status").mock(side_effect=[too_many, status_echo])

    async with observed() as client:
        await client.chats.update_status(1, "closed")

    started = recorder.of(hc.CallStarted)[0]
    limited = recorder.of(hc.Throttled)[0]
    assert ("chats.update_status", started.call_id, None) == (
        limited.operation,
        limited.call_id,
        limited.current_rate,
    )


@pytest.mark.parametrize(
    "anyio_backend", [("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})]
)
async def test_rate_limited_pause_is_the_capped_retry_after(observed, recorder, api):
    """Retry-After: 500 with retry_after_max=30: the event shows both, the pause capped."""
    too_many = httpx.Response(429, json={"errors": []}, headers={"Retry-After": "500"})
    api.put("/chats/status").mock(side_effect=[too_many, status_echo])
    limit = hc.RateLimit(requests=100, per=1.0, margin=0)

    async with observed(rate_limit=limit, retry=hc.Retry(retry_after_max=30.0)) as client:
        await client.chats.update_status(1, "closed")

    limited = recorder.of(hc.Throttled)[0]
    assert (500.0, 30.0) == (limited.retry_after, limited.pause)
    assert "call_completed" == recorder.kinds[-1]


async def test_transport_error_events(observed, recorder, api):
    """A refused connection: transport_failed (never sent), a retry, then success."""
    api.put("/chats/status").mock(side_effect=[httpx.ConnectError("refused"), status_echo])

    async with observed() as client:
        await client.chats.update_status(1, "closed")

    failed = recorder.of(hc.TransportFailed)
    assert 1 == len(failed)
    assert ("APIConnectionError", False, 1) == (
        failed[0].error_type,
        failed[0].request_sent,
        failed[0].attempt,
    )
    assert "connection_error" == recorder.of(hc.RetryScheduled)[0].reason
    assert "call_completed" == recorder.kinds[-1]


async def test_timeout_is_a_timeout_retry(observed, recorder, api):
    """A read timeout is reported as APITimeoutError and retried as "timeout"."""
    api.put("/chats/status").mock(side_effect=[httpx.ReadTimeout("slow"), status_echo])

    async with observed() as client:
        await client.chats.update_status(1, "closed")

    failed = recorder.of(hc.TransportFailed)[0]
    assert ("APITimeoutError", True) == (failed.error_type, failed.request_sent)
    assert "timeout" == recorder.of(hc.RetryScheduled)[0].reason


async def test_failed_call_event(observed, recorder, api):
    """A 404 is not retried: call_failed with the error class and status."""
    api.get("/chats/9").mock(return_value=httpx.Response(404, json={"errors": []}))

    async with observed() as client:
        with pytest.raises(hc.NotFoundError):
            await client.chats.get(9)

    failed = recorder.of(hc.CallFailed)
    assert 1 == len(failed)
    assert ("NotFoundError", 404, 1) == (
        failed[0].error_type,
        failed[0].status_code,
        failed[0].attempts,
    )
    assert "call_failed" == recorder.kinds[-1]


async def test_cancelled_call_ends_with_call_failed(observed, recorder, api):
    """A call cancelled mid-request still ends with call_failed, so observers can close it."""
    never = anyio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        await never.wait()
        return OK  # pragma: no cover - cancelled first

    api.put("/chats/status").mock(side_effect=hang)

    async with observed() as client:
        with anyio.CancelScope() as scope:

            def cancel_once_sent(event: hc.ClientEvent) -> None:
                if isinstance(event, hc.RequestSent):
                    scope.cancel()

            client._sender.observers = Observers([recorder, cancel_once_sent])
            await client.chats.update_status(1, "closed")

    failed = recorder.of(hc.CallFailed)
    assert 1 == len(failed)
    assert failed[0].error_type in {"Cancelled", "CancelledError"}
    assert (1, None) == (failed[0].attempts, failed[0].status_code)


async def test_raising_observer_never_breaks_a_call_and_is_logged_once(
    make_client, recorder, api, caplog
):
    """An observer that raises: the call succeeds, other observers see everything, one log."""
    api.put("/chats/status").mock(side_effect=status_echo)

    def broken(event: hc.ClientEvent) -> None:
        raise RuntimeError("observer bug")

    with caplog.at_level(logging.DEBUG, logger="helpcrunch_async"):
        async with make_client(on_event=[broken, recorder]) as client:
            chat = await client.chats.update_status(1, "closed")
            await client.chats.update_status(2, "closed")

    assert 1 == chat.id
    assert 8 == len(recorder.events)
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert 1 == len(errors)
    assert errors[0].exc_info is not None
    assert "observer bug" in caplog.text


async def test_events_carry_no_key_and_no_body(observed, recorder, api):
    """Serialised, no event holds the key or a request or response body."""
    api.put("/chats/status").mock(side_effect=[httpx.Response(500), status_echo])

    async with observed(rate_limit=hc.RateLimit()) as client:
        await client.chats.update_status(5215752, "closed")

    text = json.dumps([e.to_json() for e in recorder.events])
    assert API_KEY not in text
    assert "bob@example.com" not in text  # the response body
    assert '"closed"' not in text  # the request body
    assert {"event": "call_started"}.items() <= recorder.events[0].to_json().items()


async def test_request_without_operation_is_named_by_method_and_template(observed, recorder, api):
    """client.request() without operation= names the call "GET /chats/{id}/messages"."""
    api.get("/chats/5/messages").mock(return_value=httpx.Response(200, json={"data": []}))

    async with observed() as client:
        await client.request("GET", "/chats/5/messages")

    assert "GET /chats/{id}/messages" == recorder.events[0].operation


async def test_bulk_outcome_events(observed, recorder, api):
    """Each id of a bulk run ends with bulk_item_done: ok, or failed with the error class."""
    api.put("/chats/status").mock(side_effect=status_echo)

    async with observed() as client:
        result = await client.chats.bulk_update_status([1, 2, 0], "closed")

    assert 1 == len(result.failed)
    done = recorder.of(hc.BulkItemDone)
    assert [(False, "ValueError"), (True, None), (True, None)] == sorted(
        (e.ok, e.error_type) for e in done
    )
    assert {"chats.update_status"} == {e.operation for e in done}


async def test_observers_see_nothing_when_none_given(make_client, api):
    """With no observer given, only the client's own statistics and log observe."""
    api.put("/chats/status").mock(side_effect=status_echo)

    async with make_client() as client:
        await client.chats.update_status(1, "closed")

    assert () == client._sender.observers.user
    assert 1 == client.stats().requests


@pytest.mark.parametrize(
    ("on_event", "debug", "wanted"),
    [
        (None, False, {hc.RequestSent, hc.ResponseReceived, hc.LimiterWaited}),
        (None, True, "all"),
        (lambda _: None, False, "all"),
    ],
    ids=["statistics only", "DEBUG log", "an observer"],
)
def test_an_event_is_wanted_when_an_observer_reads_it(on_event, debug, wanted, caplog):
    """Events nobody reads are not built: the statistics read some kinds, the rest read all."""
    caplog.set_level(logging.DEBUG if debug else logging.INFO, logger="helpcrunch_async")
    observers = Observers(on_event)
    kinds = [
        hc.CallStarted,
        hc.RequestSent,
        hc.ResponseReceived,
        hc.LimiterWaited,
        hc.CallCompleted,
        hc.CallFailed,
        hc.RetryScheduled,
    ]

    got = {kind for kind in kinds if observers.wants(kind)}

    assert (set(kinds) if wanted == "all" else wanted) == got


async def test_a_call_seen_only_by_the_statistics_builds_no_call_events(
    make_client, api, monkeypatch
):
    """Without observers or DEBUG log, only the events the statistics read are built."""
    api.put("/chats/status").mock(side_effect=status_echo)
    built: list[type] = []
    emit = Observers.emit

    def recording(self: Observers, event: hc.ClientEvent) -> None:
        built.append(type(event))
        emit(self, event)

    monkeypatch.setattr(Observers, "emit", recording)
    async with make_client() as client:
        await client.chats.update_status(1, "closed")

    assert [hc.RequestSent, hc.ResponseReceived] == built
    assert 1 == client.stats().requests


async def test_a_timeout_of_the_whole_exchange_is_a_transport_failure(make_client, api, recorder):
    """An answer unfinished at the timeout: transport_failed (sent), counted as such."""

    async def never(request: httpx.Request) -> httpx.Response:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    api.put("/chats/status").mock(side_effect=never)
    async with make_client(on_event=recorder, timeout=0.01, max_retries=0) as client:
        with pytest.raises(hc.APITimeoutError):
            await client.chats.update_status(1, "closed")

    failed = recorder.of(hc.TransportFailed)
    assert [("APITimeoutError", True, 1)] == [
        (event.error_type, event.request_sent, event.attempt) for event in failed
    ]
    assert 1 == client.stats().transport_errors
    assert ["transport_failed", "call_failed"] == recorder.kinds[-2:]


async def test_stats_count_statuses_transport_errors_and_waits(make_client, api):
    """stats(): answers per status, transport errors, and limiter wait per class."""
    api.put("/chats/status").mock(
        side_effect=[httpx.Response(500), httpx.ConnectError("refused"), status_echo]
    )

    async with make_client(rate_limit=hc.RateLimit()) as client:
        await client.chats.update_status(1, "closed")
        stats = client.stats()

    assert {500: 1, 200: 1} == dict(stats.status_counts)
    assert 1 == stats.transport_errors
    assert (3, 2) == (stats.requests, stats.retries)
    assert {"interactive"} == set(stats.limiter_wait_by_priority)
    assert stats.limiter_wait == sum(stats.limiter_wait_by_priority.values())
    with pytest.raises(TypeError):
        stats.status_counts[200] = 5  # type: ignore[index, unused-ignore]


# --- units -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/chats/status", "/chats/status"),
        ("/chats/5215752", "/chats/{id}"),
        ("/chats/5/messages", "/chats/{id}/messages"),
        ("/v2x/12a", "/v2x/12a"),
    ],
)
def test_path_template(path, template):
    """Numeric segments become {id}; anything else stays."""
    assert template == path_template(path)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (hc.RateLimitError("429"), "throttled"),
        (hc.ServerError("503", status_code=503), "server_error"),
        (hc.APITimeoutError("slow"), "timeout"),
        (hc.APIConnectionError("reset"), "connection_error"),
        (hc.ResponseValidationError("garbled", retryable=True), "invalid_response"),
        (RuntimeError("other"), "error"),
    ],
)
def test_retry_reason(error, reason):
    """Each retryable failure has its one-word reason."""
    assert reason == retry_reason(error)


@pytest.mark.parametrize("on_event", ["print", 3, [print, None]])
def test_bad_on_event_is_type_error(on_event):
    """on_event must be a callable or an iterable of callables."""
    with pytest.raises(TypeError, match="on_event"):
        hc.HelpCrunch(API_KEY, on_event=on_event)


def test_on_event_accepts_one_or_many():
    """One callable or a list of them; None is no observer."""
    assert 1 == len(Observers(print).user)
    assert 2 == len(Observers([print, print]).user)
    assert () == Observers(None).user


# --- the CLI's --log-json ----------------------------------------------------------------


@pytest.mark.emulator
def test_cli_log_json_writes_every_event_as_a_json_line(tmp_path):
    """`set-status --log-json FILE`: one JSON object per event, with its time, and no key."""
    from anyio.from_thread import start_blocking_portal  # noqa: PLC0415
    from click.testing import CliRunner  # noqa: PLC0415

    from helpcrunch_async._cli._commands import cli  # noqa: PLC0415
    from helpcrunch_async.emulator import EmulatorConfig, serve  # noqa: PLC0415

    first = 5_215_700
    log = tmp_path / "logs" / "events.jsonl"
    config = EmulatorConfig(chats=5, rate_limit=None)
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(serve(config)) as emu:
        env = {"HELPCRUNCH_API_KEY": emu.api_key, "HELPCRUNCH_BASE_URL": emu.base_url}
        args = ["chats", "set-status", "closed", str(first), str(first + 1), "--log-json", str(log)]
        result = CliRunner().invoke(cli, args, env=env, catch_exceptions=False)

    assert 0 == result.exit_code, result.output
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    per_call = ["call_started", "limiter_waited", "request_sent", "response_received"]
    per_call += ["call_completed"]
    assert sorted(per_call * 2 + ["bulk_item_done"] * 2) == sorted(e["event"] for e in lines)
    assert {"chats.update_status"} == {e["operation"] for e in lines}
    assert all(datetime.fromisoformat(e["time"]).tzinfo is not None for e in lines)
    assert emu.api_key not in log.read_text()


def test_cli_dry_run_writes_no_event_log(tmp_path):
    """A dry run sends nothing, so it creates no event log."""
    from click.testing import CliRunner  # noqa: PLC0415

    from helpcrunch_async._cli._commands import cli  # noqa: PLC0415

    log = tmp_path / "events.jsonl"
    env = {"HELPCRUNCH_API_KEY": API_KEY, "HELPCRUNCH_BASE_URL": "http://127.0.0.1:9/v1"}
    args = ["chats", "set-status", "closed", "1", "--dry-run", "--log-json", str(log)]
    result = CliRunner().invoke(cli, args, env=env, catch_exceptions=False)

    assert 0 == result.exit_code, result.output
    assert not log.exists()


async def test_every_resource_names_its_calls(observed, recorder, api):
    """messages, agents and departments calls carry their operation names."""
    message = {"id": 991, "text": "Hi", "from": "agent", "createdAt": 1597758468}
    api.post("/messages").respond(200, json=message)
    api.get("/agents").respond(200, json={"data": []})
    api.get("/departments").respond(200, json=[])

    async with observed() as client:
        await client.messages.create(1, "Hi")
        _ = [a async for a in client.agents.list()]
        _ = [d async for d in client.departments.list()]

    names = [e.operation for e in recorder.of(hc.CallStarted)]
    assert ["messages.create", "agents.list", "departments.list"] == names


async def test_priority_class_in_limiter_events_and_stats(observed, recorder, api):
    """A background view (and a bulk run) waits as "background"; direct calls as "interactive"."""
    api.get("/chats/1").respond(200, json=chat_payload(1))
    api.put("/chats/status").mock(side_effect=status_echo)

    async with observed(rate_limit=hc.RateLimit()) as client:
        await client.chats.get(1)
        await client.with_options(priority="background").chats.get(1)
        await client.chats.bulk_update_status([2], "closed")
        stats = client.stats()

    classes = [e.priority for e in recorder.of(hc.LimiterWaited)]
    assert ["interactive", "background", "background"] == classes
    assert {"interactive", "background"} == set(stats.limiter_wait_by_priority)


def test_cli_log_json_to_an_unwritable_path_is_a_clean_error(tmp_path):
    """A log path that cannot be opened is a one-line error, not a traceback."""
    from click.testing import CliRunner  # noqa: PLC0415

    from helpcrunch_async._cli._commands import cli  # noqa: PLC0415

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env = {"HELPCRUNCH_API_KEY": API_KEY, "HELPCRUNCH_BASE_URL": "http://127.0.0.1:9/v1"}
    args = ["chats", "set-status", "closed", "1", "--log-json", str(blocker / "events.jsonl")]
    result = CliRunner().invoke(cli, args, env=env)

    assert 0 != result.exit_code
    assert isinstance(result.exception, SystemExit)
    assert "Could not open file" in result.output


async def test_max_wait_refusal_ends_the_call_having_sent_nothing(observed, recorder, api):
    """A call refused by max_wait: call_failed with 0 attempts and no request_sent."""
    api.get("/chats/1").respond(200, json=chat_payload(1))
    limit = hc.RateLimit(requests=1, per=60.0, burst=1)

    async with observed(rate_limit=limit) as client:
        await client.chats.get(1)
        recorder.events.clear()
        with pytest.raises(hc.LimiterTimeoutError):
            await client.with_options(max_wait=0.01).chats.get(1)

    assert ["call_started", "call_failed"] == recorder.kinds
    failed = recorder.of(hc.CallFailed)[0]
    assert ("LimiterTimeoutError", 0, None) == (
        failed.error_type,
        failed.attempts,
        failed.status_code,
    )


# --- observers are synchronous ------------------------------------------------------------------


class AsyncCallable:
    """An observer object whose __call__ is a coroutine function."""

    async def __call__(self, event: hc.ClientEvent) -> None:
        pass  # pragma: no cover - never called


async def async_observer(event: hc.ClientEvent) -> None:
    pass  # pragma: no cover - never called


@pytest.mark.parametrize(
    "on_event",
    [async_observer, AsyncCallable(), [print, async_observer]],
    ids=["async-def", "async-__call__", "in-a-list"],
)
async def test_an_async_observer_is_refused_when_the_client_is_built(make_client, on_event):
    """An async def observer would never run: TypeError at construction, naming the fix."""
    with pytest.raises(TypeError, match="async function; observers run synchronously"):
        make_client(on_event=on_event)


async def test_an_observer_returning_a_coroutine_has_it_closed_and_is_logged_once(
    make_client, recorder, api, caplog
):
    """A lambda around an async function: its coroutines are closed (no "never awaited"
    warning), the failure is logged once, and the call and the other observers go on."""
    api.put("/chats/status").mock(side_effect=status_echo)
    returned: list[Any] = []

    async def handle(event: hc.ClientEvent) -> None:
        pass  # pragma: no cover - closed unawaited

    def wrapper(event: hc.ClientEvent) -> Any:
        returned.append(handle(event))
        return returned[-1]

    with caplog.at_level(logging.DEBUG, logger="helpcrunch_async"):
        async with make_client(on_event=[wrapper, recorder]) as client:
            chat = await client.chats.update_status(1, "closed")

    assert 1 == chat.id
    assert len(recorder.events) == len(returned)
    assert all(inspect.getcoroutinestate(c) == inspect.CORO_CLOSED for c in returned)
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert 1 == len(errors)
    assert "returned an awaitable" in caplog.text


async def test_an_observer_returning_another_awaitable_is_logged_and_harmless(
    make_client, api, caplog
):
    """Any awaitable an observer returns is refused the same way; the call succeeds."""
    api.put("/chats/status").mock(side_effect=status_echo)

    class Awaitable:
        def __await__(self) -> Any:
            yield from ()  # pragma: no cover - never awaited

    with caplog.at_level(logging.WARNING, logger="helpcrunch_async"):
        async with make_client(on_event=lambda _: Awaitable()) as client:
            chat = await client.chats.update_status(1, "closed")

    assert 1 == chat.id
    assert "returned an awaitable" in caplog.text
