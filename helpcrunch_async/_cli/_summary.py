"""The end of a bulk job told: the summary printed, and the same as JSON for scripts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._config import plural
from .._limit._local import LocalRateLimiter
from ._job import JobResult, exit_code, stopped_by
from ._output import duration

if TYPE_CHECKING:
    from rich.console import Console

    from .._client import HelpCrunch


def print_summary(
    out: Console,
    client: HelpCrunch,
    result: JobResult,
    status: str,
    report: str | None,
    *,
    action: str | None = None,
) -> None:
    """The end-of-job summary on ``out`` (stdout): outcomes, failures by reason, the client.

    ``action`` says what was done (default: ``set to 'status'``).
    """
    done = action or f"set to {status!r}"
    out.print(
        f"{plural(result.updated, result.noun)} {done}, {result.failed} failed, "
        f"{result.skipped} skipped (already done), "
        f"{plural(result.duplicates, 'duplicate')}, in {duration(result.seconds)}.",
        highlight=False,
    )
    for line in result.failures.lines(report):
        out.print(line, highlight=False)
    out.print(requests_line(client, result), highlight=False)
    limiter, stats = client.limiter, result.stats
    if not isinstance(limiter, LocalRateLimiter):
        return
    # Advice only from evidence: one burst of 429s (another program, a run stopped just
    # before) says the key was busy, not that its limit is lower.
    limit = limiter.limit
    if stats.learned_limit is not None:
        why = (
            "429 answers recurred across windows at a rate the server had already refused"
            if stats.throttled
            else "the server's rate-limit headers say so"
        )
        out.print(
            f"{why}: the key allows about {stats.learned_limit} requests per {limit.per:g} s,"
            f" not the configured {limit.requests} (your plan, or another program using it "
            f"steadily), and the client held to that to the end. Set --rate "
            f"{stats.learned_limit}/{limit.per:g} to match.",
            highlight=False,
        )
    elif stats.throttled:
        out.print(
            f"429 answers paused every call for {duration(stats.throttled_pause)} in all; "
            "they did not recur at a rate already refused, so nothing shows a limit below "
            f"the configured {limit.requests} per {limit.per:g} s (the key was busy: another "
            "program, or a run stopped just before): --rate needs no change.",
            highlight=False,
        )


def _requests(client: HelpCrunch, result: JobResult) -> dict[str, Any]:
    """What the client sent: answered apart from attempts that got no answer."""
    stats = result.stats
    answered = sum(stats.status_counts.values())
    limited = client.limiter is not None
    # Connected, then cut or timed out before the whole answer came.
    no_answer = max(stats.transport_errors - result.could_not_connect, 0)
    return {
        "attempts": stats.requests,
        "retries": stats.retries,
        "answered": answered,
        "could_not_connect": result.could_not_connect,
        "no_answer": no_answer,
        # In flight when the run stopped (a signal, the breaker): cancelled, not journaled.
        "cancelled": max(stats.requests - answered - stats.transport_errors, 0),
        "throttled": stats.throttled,
        "limiter_share": round(_share(result), 3) if limited else None,
    }


def _share(result: JobResult) -> float:
    """The share of the run's wall time the rate limiter held updates back."""
    return min(result.limiter_seconds / result.seconds, 1.0) if result.seconds > 0 else 0.0


def requests_line(client: HelpCrunch, result: JobResult) -> str:
    """``Requests: 304 (4 retries): 302 answered, 2 could not connect; ...``."""
    counts = _requests(client, result)
    parts = [f"{counts['answered']} answered"]
    if counts["no_answer"]:
        parts.append(f"{counts['no_answer']} cut or timed out without an answer")
    if counts["could_not_connect"]:
        parts.append(f"{counts['could_not_connect']} could not connect")
    if counts["cancelled"]:
        parts.append(f"{counts['cancelled']} cancelled in flight when the run stopped")
    retries = plural(counts["retries"], "retry", "retries")
    line = f"Requests: {counts['attempts']} ({retries}): {', '.join(parts)}; "
    line += f"429 answers: {counts['throttled']}; "
    if counts["limiter_share"] is None:
        return line + "no rate limiter."
    return line + (
        f"waiting for the rate limiter: {counts['limiter_share']:.0%} of the run "
        f"({duration(result.limiter_seconds)} of {duration(result.seconds)})."
    )


def summary_document(
    client: HelpCrunch, result: JobResult, status: str, report: str | None, *, key: str = "status"
) -> dict[str, Any]:
    """The summary as a JSON object, for scripts (``--json``); ``key`` names ``status``."""
    return {
        key: status,
        "updated": result.updated,
        "failed": result.failed,
        "skipped": result.skipped,
        "duplicates": result.duplicates,
        "not_started": result.not_started,
        "failures_by_reason": result.failures.as_dict(),
        "report": report,
        "stopped_by": stopped_by(result),
        "exit_code": exit_code(result),
        "seconds": round(result.seconds, 3),
        "requests": _requests(client, result),
    }
