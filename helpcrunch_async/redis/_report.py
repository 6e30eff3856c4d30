"""``JournalReport``: a shared journal's job as the whole fleet left it, read from Redis."""

from __future__ import annotations

from datetime import datetime, timezone

import attrs

from .._config import plural
from .._models._wire import MAX_ID

__all__ = ["MAX_OPS", "JournalReport", "parse_report"]

#: Most operations a job's report lists (a job has a few: "closed", "opened"...).
MAX_OPS = 100
#: Failed ids listed in ``str(report)``; the report itself holds up to its ``limit``.
SHOWN_FAILURES = 10
#: Longest count believed (a hostile reply could claim any number).
MAX_COUNT = 10**15


@attrs.frozen
class JournalReport:
    """A job across the fleet: what every worker recorded, what is claimed, what failed.

    Counts are by each id's latest record (an id closed, then failed to reopen, counts
    once, as a failure of ``"opened"``). After Redis lost the job's state (``lost_states``),
    they restart from what was recorded since.

    Attributes:
        job: The job's name.
        at: Redis's time when the report was read (UTC).
        succeeded: Operation -> ids whose latest record is a success of it.
        failed: Operation -> ids whose latest record is a failure of it.
        failures: Failed ids (at most the ``limit`` asked for) -> (operation, reason).
        in_flight: Claims held now (their ids are being sent).
        lapsed: Claims whose lease ran out (a worker died, or is late renewing).
        sessions: Worker sessions seen in the last minute.
        takeovers: Claims taken over from a lapsed lease, over the job's life.
        lost_states: Times a worker found the job's state lost in Redis.
    """

    job: str
    at: datetime
    succeeded: dict[str, int]
    failed: dict[str, int]
    failures: dict[int | str, tuple[str, str]]
    in_flight: int
    lapsed: int
    sessions: int
    takeovers: int
    lost_states: int

    @property
    def ids(self) -> int:
        """Ids with a record."""
        return sum(self.succeeded.values()) + sum(self.failed.values())

    def __str__(self) -> str:
        ops = sorted(set(self.succeeded) | set(self.failed))
        counts = "; ".join(
            f"{op}: {self.succeeded.get(op, 0)} done, {self.failed.get(op, 0)} failed" for op in ops
        )
        lines = [
            (
                f"job {self.job}: {counts or 'nothing recorded'}; {self.in_flight} in flight,"
                f" {plural(self.lapsed, 'lapsed claim')}, {plural(self.sessions, 'live session')},"
                f" {plural(self.takeovers, 'takeover')}"
            )
        ]
        if self.lost_states:
            lines.append(
                f"Redis lost the job's state {self.lost_states} times: the counts are of what"
                " was recorded since"
            )
        shown = list(self.failures.items())[:SHOWN_FAILURES]
        lines += [f"  {item}: {op}: {reason}" for item, (op, reason) in shown]
        more = sum(self.failed.values()) - len(shown)
        if more > 0:
            lines.append(f"  ... and {more} more failed")
        return "\n".join(lines)


def parse_report(job: str, reply: list[str], limit: int) -> JournalReport:
    """The report script's reply (after the epoch and lost flag), checked.

    Raises:
        ValueError: the reply is not a report.
    """
    items = iter(reply)
    at, in_flight, lapsed, sessions = (_count(next(items, "")) for _ in range(4))
    codes: dict[str, str] = {}
    for _ in range(_count(next(items, ""), MAX_OPS)):
        name, code = next(items, ""), next(items, "")
        _count(code)  # a small number, as the script makes them
        codes[code] = name
    counts: dict[str, int] = {}
    for _ in range(_count(next(items, ""), 2 * MAX_OPS + 2)):
        key, value = next(items, ""), next(items, "")
        counts[key] = _count(value)
    failures: dict[int | str, tuple[str, str]] = {}
    for _ in range(_count(next(items, ""), limit)):
        raw_id, entry = next(items, ""), next(items, "")
        _at, code, reason = [*entry.split("\t", 2), "", ""][:3]
        failures[_id(raw_id)] = (codes.get(code, "?"), reason)
    if next(items, None) is not None:
        raise ValueError("a report with more than it announced")
    return JournalReport(
        job=job,
        at=datetime.fromtimestamp(at / 1000, timezone.utc),
        succeeded={name: counts[code] for code, name in codes.items() if code in counts},
        failed={name: counts["-" + code] for code, name in codes.items() if "-" + code in counts},
        failures=failures,
        in_flight=in_flight,
        lapsed=lapsed,
        sessions=sessions,
        takeovers=counts.get("takeovers", 0),
        lost_states=counts.get("lost", 0),
    )


def _count(text: str, most: int = MAX_COUNT) -> int:
    """A non-negative count from Redis, at most ``most``."""
    if not text.isdigit() or len(text) > 16 or int(text) > most:  # noqa: PLR2004
        raise ValueError("a report with an implausible number")
    return int(text)


def _id(text: str) -> int | str:
    """An id as recorded: a valid id's int, or the text of an invalid one."""
    if text.isdigit() and len(text) < 20 and 0 < int(text) <= MAX_ID:  # noqa: PLR2004
        return int(text)
    if not text:
        raise ValueError("a report with an empty id")
    return text
