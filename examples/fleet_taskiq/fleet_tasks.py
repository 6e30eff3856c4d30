"""A bulk status job on taskiq workers: the broker, the workers' client, the chunk task.

    taskiq worker fleet_tasks:broker --workers 1 --max-async-tasks 2 --max-prefetch 0 \
        --ack-type when_executed                      # on each machine, one or more
    taskiq scheduler fleet_tasks:scheduler --update-interval 1      # one, for delayed retries
    python producer.py --job close-stale --first-id 5215700 --count 240   # the job

Run from this folder (taskiq imports ``fleet_tasks`` from the working directory). Settings
come from the environment, since taskiq's command starts the workers: FLEET_REDIS_URL (the
broker, the shared limiter and the journal: one Redis), HELPCRUNCH_API_KEY,
HELPCRUNCH_BASE_URL, FLEET_RATE ("120/60"), FLEET_MARGIN (s), FLEET_LEASE (s), FLEET_MAX_WAIT
(s), FLEET_CONCURRENCY (per chunk), FLEET_IDLE_TIMEOUT_MS (when a dead worker's chunk may be
redelivered), FLEET_STOP_GRACE (s); for tests FLEET_SPANS_FILE (spans as JSON lines) and
FLEET_READY_KEY.

- Each worker process makes ONE client (with the Redis limiter) in its start-up hook and
  closes it in its shutdown hook.
- A chunk task runs the bulk helper over its ids with the job's RedisJournal: ids done by
  anyone (in any earlier delivery of the chunk) are skipped, ids another worker holds are
  waited for and taken over if its lease lapses. A second delivery is therefore harmless.
- Calls wait at most FLEET_MAX_WAIT for their turn: ids with no turn are given back to the
  journal, and the chunk goes back to taskiq's retry after the limiter's ``retry_after``
  (through the schedule source) instead of holding the worker.
- OpenTelemetry: the producer's trace context travels in the messages' labels; the SDK's
  spans are children of the worker's span for the task, retries included.

README.md (beside this file) tells which parts work around bugs of taskiq and taskiq-redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract
from taskiq import Context, TaskiqDepends, TaskiqEvents, TaskiqMessage, TaskiqScheduler, TaskiqState
from taskiq.middlewares import SmartRetryMiddleware
from taskiq.middlewares.opentelemetry_middleware import OpenTelemetryMiddleware
from taskiq.result import TaskiqResult
from taskiq_redis import ListRedisScheduleSource, RedisStreamBroker

import helpcrunch_async as hc
from helpcrunch_async.otel import OpenTelemetryObserver
from helpcrunch_async.redis import RedisJournal, RedisRateLimiter, client_from_url

REDIS_URL = os.environ.get("FLEET_REDIS_URL", "redis://127.0.0.1:6379/0")
RATE = os.environ.get("FLEET_RATE", "120/60")
MARGIN = float(os.environ.get("FLEET_MARGIN", "0.5"))
LEASE = float(os.environ.get("FLEET_LEASE", "10"))
MAX_WAIT = float(os.environ.get("FLEET_MAX_WAIT", "2"))
CONCURRENCY = int(os.environ.get("FLEET_CONCURRENCY", "4"))
IDLE_TIMEOUT_MS = int(os.environ.get("FLEET_IDLE_TIMEOUT_MS", "60000"))
#: Errors after which a chunk is tried again later: nothing of it was sent meanwhile.
RETRIED = (hc.LimiterTimeoutError, hc.LimiterUnavailableError, hc.JournalError)
#: Seconds a worker may take to stop after SIGTERM before it exits anyway (see README).
STOP_GRACE = float(os.environ.get("FLEET_STOP_GRACE", "10"))


def _export_spans(path: str) -> None:
    """Every finished span appended to ``path`` as a JSON line (the test reads them)."""
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import (  # noqa: PLC0415
        SimpleSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class JsonLines(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            with open(path, "a", encoding="utf-8") as out:  # noqa: PTH123
                out.writelines(json.dumps(_span_fields(span)) + "\n" for span in spans)
            return SpanExportResult.SUCCESS

    def _span_fields(span: ReadableSpan) -> dict[str, Any]:
        context = span.get_span_context()
        return {"name": span.name, "trace": f"{0 if context is None else context.trace_id:032x}"}

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(JsonLines()))
    trace.set_tracer_provider(provider)


if os.environ.get("FLEET_SPANS_FILE"):
    _export_spans(os.environ["FLEET_SPANS_FILE"])


class TraceContextMiddleware(OpenTelemetryMiddleware):
    """taskiq's OpenTelemetry middleware, with two fixes for retries sent by the scheduler.

    - The scheduler process has no current span: the send span would start a new trace and
      overwrite the context the message carries. The carried context is its parent instead.
    - Labels that went through a schedule source come back as strings; the middleware's
      queue-time arithmetic needs numbers (``post_execute`` would raise ``TypeError``).
    """

    _TIME_LABELS = ("_taskiq_queue_time", "_taskiq_broker_receive_time")

    def __init__(self) -> None:
        super().__init__()
        # Task id -> the carried context attached for its send span, detached after it.
        self._carried: dict[str, object] = {}

    def pre_send(self, message: TaskiqMessage) -> TaskiqMessage:
        """Send within the trace the message carries, when no span is current."""
        if not trace.get_current_span().get_span_context().is_valid:
            carried = extract(message.labels)
            if trace.get_current_span(carried).get_span_context().is_valid:
                self._carried[message.task_id] = otel_context.attach(carried)
        return super().pre_send(message)

    def post_send(self, message: TaskiqMessage) -> None:
        """End the send span, then let go of the carried context (in that order)."""
        super().post_send(message)
        token = self._carried.pop(message.task_id, None)
        if token is not None:
            otel_context.detach(token)  # type: ignore[arg-type]

    def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        """Time labels back to numbers before taskiq's middleware reads them."""
        for key in self._TIME_LABELS:
            value = message.labels.get(key)
            if isinstance(value, str):
                try:
                    message.labels[key] = float(value)
                except ValueError:
                    del message.labels[key]
        return super().pre_execute(message)


class RetryAfterMiddleware(SmartRetryMiddleware):
    """taskiq's retry, waiting what the error asks (``retry_after``) when it says."""

    async def on_error(
        self, message: TaskiqMessage, result: TaskiqResult[Any], exception: BaseException
    ) -> None:
        """Set the retry's delay from the error, then retry as taskiq does."""
        after = getattr(exception, "retry_after", None)
        if after is not None:
            message.labels["delay"] = max(0.1, float(after))
        await super().on_error(message, result, exception)


schedule_source = ListRedisScheduleSource(REDIS_URL, prefix="helpcrunch:fleet:schedule")
broker = RedisStreamBroker(
    REDIS_URL,
    queue_name="helpcrunch:fleet",
    consumer_group_name="helpcrunch-fleet",
    idle_timeout=IDLE_TIMEOUT_MS,
    xread_count=1,  # one chunk at a time: the others stay for the other workers
    maxlen=100_000,  # acknowledged entries stay in a stream: bound it
).with_middlewares(
    TraceContextMiddleware(),
    RetryAfterMiddleware(
        default_retry_count=1000,
        default_delay=1.0,
        schedule_source=schedule_source,
        types_of_exceptions=RETRIED,
    ),
)
scheduler = TaskiqScheduler(broker, sources=[schedule_source])


@broker.on_event(TaskiqEvents.WORKER_STARTUP)
async def startup(state: TaskiqState) -> None:
    """One client per worker process, with the fleet's limiter; one Redis client for journals."""
    requests, per = RATE.split("/")
    limit = hc.RateLimit(requests=int(requests), per=float(per), margin=MARGIN)
    state.stack = contextlib.AsyncExitStack()
    limiter = RedisRateLimiter.from_url(REDIS_URL, limit=limit, on_unavailable="local")
    state.stack.push_async_callback(limiter.aclose)
    client = hc.HelpCrunch(rate_limit=limiter, on_event=[OpenTelemetryObserver()])
    state.client = await state.stack.enter_async_context(client)
    state.redis = client_from_url(REDIS_URL)
    state.stack.callback(state.redis.close)
    state.journals = {}
    _watch_sigterm(state)
    if os.environ.get("FLEET_READY_KEY"):  # for the test: this process is up
        state.redis.sadd(os.environ["FLEET_READY_KEY"], os.getpid())


def _watch_sigterm(state: TaskiqState) -> None:
    """Hand SIGTERM to taskiq through the event loop, and exit if taskiq hangs all the same.

    taskiq sets its shutdown event from a plain ``signal.signal`` handler, which an idle loop
    (a quiet stream) never runs, and which otherwise runs between any two bytecodes of the
    loop's own code (now and then the worker then hung for ever while stopping). Through
    ``add_signal_handler`` the loop wakes up for it and runs it as a callback. A worker still
    running ``STOP_GRACE`` seconds after SIGTERM closes its client and exits anyway (whatever
    it had not recorded, the journal has another worker send).
    """
    loop = asyncio.get_running_loop()
    taskiq_handler = signal.getsignal(signal.SIGTERM)
    state.watchdog = None

    def on_sigterm() -> None:
        if state.watchdog is None:
            state.watchdog = loop.create_task(_exit_after_grace(state))
        if callable(taskiq_handler):
            taskiq_handler(signal.SIGTERM, None)

    loop.add_signal_handler(signal.SIGTERM, on_sigterm)


async def _exit_after_grace(state: TaskiqState) -> None:
    await asyncio.sleep(STOP_GRACE)
    print(f"worker {os.getpid()}: still running {STOP_GRACE:g} s after SIGTERM, exiting")
    await _close(state)
    os._exit(0)


@broker.on_event(TaskiqEvents.WORKER_SHUTDOWN)
async def shutdown(state: TaskiqState) -> None:
    """Close the client and the Redis connections (SIGTERM, or the end of the worker)."""
    if state.watchdog is not None:
        state.watchdog.cancel()
    await _close(state)


async def _close(state: TaskiqState) -> None:
    await state.stack.aclose()
    print(f"worker {os.getpid()}: shut down cleanly", flush=True)


@broker.task(task_name="helpcrunch.update_status", retry_on_error=True)
async def update_status(
    job: str,
    status: str,
    ids: list[int],
    context: Context = TaskiqDepends(),  # noqa: B008 - how taskiq injects
) -> dict[str, int]:
    """Set ``status`` on ``ids``, one chunk of job ``job``; safe to run twice."""
    # The work runs in a task of its own. taskiq's receiver task carries a done-callback
    # holding the set of running tasks; anyio puts repr(current_task()) in every cancel
    # reason, and on Python 3.10 that repr recurses through the set without end: the first
    # cancel scope cancelled in the SDK would hang the worker at 100 % CPU.
    return await asyncio.ensure_future(_update_status(context.state, job, status, ids))


async def _update_status(state: Any, job: str, status: str, ids: list[int]) -> dict[str, int]:
    journal = state.journals.get(job)
    if journal is None:
        journal = state.journals[job] = RedisJournal(state.redis, job, lease=LEASE)
    client = state.client.with_options(max_wait=MAX_WAIT)
    result = await client.chats.bulk_update_status(
        ids, status, journal=journal, concurrency=CONCURRENCY
    )
    waited = [e for e in result.failed.values() if isinstance(e, hc.LimiterTimeoutError)]
    if waited:  # given back to the journal: the retry sends them, or finds them done
        after = min((e.retry_after for e in waited if e.retry_after is not None), default=1.0)
        raise hc.LimiterTimeoutError(
            f"job {job}: {len(waited)} ids had no turn within {MAX_WAIT:g} s",
            retry_after=after,
        )
    return {
        "updated": len(result.succeeded),
        "failed": len(result.failed),
        "skipped": result.skipped,
    }
