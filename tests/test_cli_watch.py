"""JobWatch: the limiter's share of wall time, and an API that cannot be reached, by numbers."""

from __future__ import annotations

import pytest

import helpcrunch_async as hc
from helpcrunch_async._cli._watch import MAX_SPANS, MIN_WAIT, JobWatch


class Clock:
    """A clock the test sets by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def waited(seconds: float) -> hc.LimiterWaited:
    return hc.LimiterWaited(
        operation="chats.update_status",
        call_id=1,
        attempt=1,
        seconds=seconds,
        priority="background",
    )


def refused(elapsed: float = 0.0) -> hc.TransportFailed:
    return hc.TransportFailed(
        operation="chats.update_status",
        call_id=1,
        attempt=1,
        error_type="APIConnectionError",
        request_sent=False,
        elapsed=elapsed,
    )


def answered() -> hc.ResponseReceived:
    return hc.ResponseReceived(
        operation="chats.update_status", call_id=1, attempt=1, status_code=200, elapsed=0.01
    )


def at(clock: Clock, watch: JobWatch, moments: list[tuple[float, hc.ClientEvent]]) -> None:
    for now, event in moments:
        clock.now = now
        watch(event)


def test_waits_that_overlap_count_once_on_the_wall_clock():
    """Ten workers waiting the same second are one second of waiting, not ten."""
    clock = Clock()
    watch = JobWatch(clock=clock)

    at(clock, watch, [(101.0, waited(1.0)) for _ in range(10)])

    assert pytest.approx(1.0) == watch.limiter_seconds


def test_the_union_of_waits_is_measured():
    """Overlapping, nested and separate waits: the time at least one caller waited."""
    clock = Clock()
    watch = JobWatch(clock=clock)

    at(
        clock,
        watch,
        [
            (101.0, waited(1.0)),  # [100, 101]
            (101.5, waited(1.0)),  # [100.5, 101.5]: adds 0.5
            (101.6, waited(0.05)),  # inside the last: adds nothing
            (103.0, waited(0.5)),  # [102.5, 103]: separate, adds 0.5
            (104.0, waited(3.5)),  # [100.5, 104]: covers everything since 100.5
        ],
    )

    assert pytest.approx(4.0) == watch.limiter_seconds


def test_slivers_of_waiting_are_no_wait():
    """An idle limiter's microseconds add nothing (and keep no memory)."""
    clock = Clock()
    watch = JobWatch(clock=clock)

    at(clock, watch, [(100.0 + n, waited(MIN_WAIT / 10)) for n in range(1000)])

    assert 0.0 == watch.limiter_seconds


def test_many_separate_waits_are_added_up_as_they_age():
    """Past MAX_SPANS separate stretches the oldest are settled; the total stays exact."""
    clock = Clock()
    watch = JobWatch(clock=clock)
    count = MAX_SPANS * 3

    at(clock, watch, [(100.0 + 2 * n, waited(0.5)) for n in range(1, count + 1)])

    assert pytest.approx(count * 0.5) == watch.limiter_seconds


def test_no_connection_for_the_threshold_stops_once():
    """Attempts that all fail to connect for `after` seconds, at least `min_failures`: stop."""
    clock = Clock()
    stops: list[float] = []
    watch = JobWatch(unreachable_after=10.0, min_failures=3, clock=clock)
    watch.on_unreachable = lambda: stops.append(clock.now)

    at(clock, watch, [(100.0 + n, refused()) for n in range(15)])

    assert [110.0] == stops
    assert pytest.approx(10.0) == watch.unreachable_for
    assert 15 == watch.could_not_connect


def test_a_slow_first_failure_counts_from_when_it_started():
    """A connection that timed out after 30 s has been failing for 30 s."""
    clock = Clock()
    watch = JobWatch(unreachable_after=10.0, min_failures=2, clock=clock)

    at(clock, watch, [(130.0, refused(elapsed=30.0)), (130.1, refused(elapsed=30.0))])

    assert pytest.approx(30.1) == watch.unreachable_for


@pytest.mark.parametrize(
    "contact",
    [
        answered(),
        hc.TransportFailed(
            operation="chats.update_status",
            call_id=1,
            attempt=1,
            error_type="APIConnectionError",
            request_sent=True,  # connected, then cut: a server is there
            elapsed=0.1,
        ),
    ],
    ids=["an answer", "a cut connection"],
)
def test_any_contact_with_a_server_starts_the_count_again(contact):
    """An answer, or a connection that was made and then cut, proves the API reachable."""
    clock = Clock()
    watch = JobWatch(unreachable_after=10.0, min_failures=1, clock=clock)

    at(clock, watch, [(100.0 + n, refused()) for n in range(8)])
    at(clock, watch, [(108.0, contact)])
    at(clock, watch, [(109.0 + n, refused()) for n in range(9)])

    assert watch.unreachable_for is None
    assert 17 == watch.could_not_connect


def test_too_few_attempts_do_not_stop_however_long():
    """Below `min_failures` attempts, even a minute without a connection is not enough."""
    clock = Clock()
    watch = JobWatch(unreachable_after=10.0, min_failures=10, clock=clock)

    at(clock, watch, [(100.0 + 10 * n, refused()) for n in range(9)])

    assert watch.unreachable_for is None


def test_without_a_threshold_it_never_stops():
    """unreachable_after=None (--stop-after 0): only counting."""
    clock = Clock()
    watch = JobWatch(unreachable_after=None, clock=clock)

    at(clock, watch, [(100.0 + n, refused()) for n in range(100)])

    assert (None, 100) == (watch.unreachable_for, watch.could_not_connect)
