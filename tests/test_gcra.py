"""The limiter's arithmetic with plain numbers: pace, burst, the hard bound, 429s and lessons."""

from __future__ import annotations

import random

import pytest

import helpcrunch_async as hc
from helpcrunch_async._limit._gate import BACKGROUND, INTERACTIVE, Priority
from helpcrunch_async._limit._gcra import GCRA, LEARN_HOLD_MAX, LEARN_HOLD_MIN
from tests.strict_server import most_in_any_window

#: 40 per 2 s, no margin: exact arithmetic (an interval of 0.05 s).
PLAIN = hc.RateLimit(requests=40, per=2.0, burst=10, margin=0.0)
#: The scaled limit of the scenarios (an interval of 0.0505 s).
SCALED = hc.RateLimit(requests=40, per=2.0, margin=0.02)


def greedy(
    gcra: GCRA, count: int, *, start: float = 0.0, priority: Priority = INTERACTIVE
) -> list[float]:
    """Grant ``count`` requests of ``priority`` as early as the schedule allows."""
    times = []
    now = start
    for _ in range(count):
        now = gcra.next_time(now, priority)
        gcra.take(now)
        times.append(now)
    return times


# --- pace, burst and the hard bound ---------------------------------------------------------


@pytest.mark.parametrize(
    "limit",
    [
        hc.RateLimit(),
        hc.RateLimit(requests=40, per=2.0, burst=40, margin=0.0),
        hc.RateLimit(requests=5, per=1.0, burst=1, margin=0.0),
        hc.RateLimit(requests=1, per=1.0),
    ],
)
@pytest.mark.parametrize("priority", [INTERACTIVE, BACKGROUND])
def test_no_window_ever_exceeds_the_limit(limit, priority):
    """Under greedy load no window of ``per + margin`` holds more than ``requests``, bursts too."""
    times = greedy(GCRA(limit), limit.requests * 5, priority=priority)

    assert limit.requests >= most_in_any_window(times, limit.per + limit.margin)


@pytest.mark.parametrize("limit", [hc.RateLimit(), SCALED, PLAIN, hc.RateLimit(5, 1.0, burst=5)])
@pytest.mark.parametrize("seed", range(5))
def test_no_window_exceeds_the_limit_whatever_the_classes_and_429s(limit, seed):
    """Random classes, random gaps, random 429s (lessons included): never more than
    ``requests`` grants in any window of ``per`` or of ``per + margin``."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    gcra = GCRA(limit)
    now, times = 0.0, [0.0]
    gcra.take(0.0)
    lessons = 0
    for _ in range(max(limit.requests * 8, 400)):
        now += rng.choice([0.0, 0.0, rng.uniform(0, limit.window / limit.requests)])
        if rng.random() < 0.05:
            pause = rng.choice([None, rng.uniform(0, limit.window)])
            gcra.penalize(now, pause, granted=rng.choice(times[-5:]))
            lessons += gcra.learned_limit(now) is not None
        t = gcra.next_time(now, rng.choice([INTERACTIVE, BACKGROUND]))
        gcra.take(t)
        times.append(t)
        now = t

    assert limit.requests >= most_in_any_window(times, limit.per)
    assert limit.requests >= most_in_any_window(times, limit.window)
    assert lessons  # the run did learn, and lower rates kept the bound too


@pytest.mark.parametrize(
    ("burst", "expected"),
    [
        (1, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]),
        (4, [0.0, 0.0, 0.0, 0.0, 4.0, 4.0, 4.0, 4.0, 8.0]),
    ],
)
def test_the_margin_widens_the_window_the_limiter_keeps(burst, expected):
    """4 per 3 s with a 1 s margin: spaced 4 s / 4 apart, and a full burst waits 4 s, not 3."""
    limit = hc.RateLimit(requests=4, per=3.0, burst=burst, margin=1.0)

    assert expected == greedy(GCRA(limit), 9)


def test_interactive_calls_have_the_burst_on_an_idle_key_then_the_steady_pace():
    """An idle key lets ``burst`` interactive requests go at once, then spaces them."""
    limit = hc.RateLimit(requests=120, per=60.0, burst=10, margin=0.0)

    times = greedy(GCRA(limit), 12)

    assert [0.0] * 10 == times[:10]
    assert [0.5, 1.0] == times[10:]


def test_background_work_never_spends_the_burst():
    """On an idle key a background request goes at once, the next one an interval later:
    the burst is for the handful of interactive calls."""
    assert [0.0, 0.05, 0.1, 0.15] == pytest.approx(greedy(GCRA(PLAIN), 4, priority=BACKGROUND))


def test_background_work_pays_for_an_interactive_burst():
    """After a burst of interactive calls, background work waits the burst's intervals while
    interactive calls keep the credit left."""
    gcra = GCRA(PLAIN)
    greedy(gcra, 9)

    assert pytest.approx(0.45) == gcra.next_time(0.0, BACKGROUND)
    assert 0.0 == gcra.next_time(0.0, INTERACTIVE)


def test_an_interactive_call_during_a_saturating_job_waits_at_most_an_interval():
    """A saturating bulk job keeps the pace within an interval of now, and its record ages
    out one send per interval: an interactive call finds a slot within one interval."""
    gcra = GCRA(SCALED)
    times = greedy(gcra, 200, priority=BACKGROUND)
    interval = SCALED.window / SCALED.requests

    for offset in (0.0, 0.01, 0.03, 0.05):
        now = times[-1] + offset
        assert interval >= gcra.next_time(now, INTERACTIVE) - now


def test_long_run_rate_is_the_configured_rate():
    """Over many windows the pace is exactly requests per (per + margin): 1,201 grants, 605 s."""
    times = greedy(GCRA(hc.RateLimit(requests=120, per=60.0, margin=0.5)), 120 * 10 + 1)

    assert pytest.approx(10 * 60.5) == times[-1] - times[0]


def test_the_grant_record_never_outgrows_the_limit():
    """However long a process runs, the limiter remembers at most ``requests`` grant times."""
    gcra = GCRA(hc.RateLimit(requests=5, per=1.0))

    greedy(gcra, 1000)

    assert 5 == len(gcra.grants)


@pytest.mark.parametrize("priority", [INTERACTIVE, BACKGROUND])
def test_calls_below_the_rate_never_wait(priority):
    """Requests that arrive slower than the rate are granted at their arrival time."""
    gcra = GCRA(hc.RateLimit(requests=120, per=60.0))
    for arrival in range(0, 300, 1):  # one per second: half the limit
        assert float(arrival) == gcra.next_time(float(arrival), priority)
        gcra.take(float(arrival))


def test_sent_within_counts_what_had_left_by_then():
    """The window the server judged: grants in (now - seconds, now], reservations excluded."""
    gcra = GCRA(PLAIN)
    for t in (0.0, 1.0, 1.5, 2.0, 2.5):
        gcra.take(t)

    assert 3 == gcra.sent_within(2.0, 2.0)  # 1.0, 1.5, 2.0: 0.0 is out, 2.5 not sent yet
    assert 4 == gcra.sent_within(2.5, 2.0)


# --- a 429 is a busy key ----------------------------------------------------------------------


def test_a_429_pauses_everyone_a_whole_window_and_teaches_nothing():
    """A busy key: who filled the window is unknown, so every caller, of both classes,
    pauses a whole window, then resumes at the rate in force."""
    gcra = GCRA(SCALED)
    times = greedy(gcra, 30, priority=BACKGROUND)
    now = times[-1] + 0.003

    pause = gcra.penalize(now, None, granted=times[-1])

    assert pytest.approx(SCALED.window) == pause
    assert SCALED.requests == gcra.capacity(now)
    assert gcra.learned_limit(now + 1.0) is None
    assert pytest.approx(now + SCALED.window) == gcra.next_time(now, INTERACTIVE)
    assert pytest.approx(now + SCALED.window) == gcra.next_time(now, BACKGROUND)


def test_a_429_for_a_window_our_own_sends_filled_pauses_until_the_record_has_room():
    """Refused with the configured rate's worth of our own sends in the server's window (one
    arrived late, past the margin): no whole window, just until the record has room again,
    and nothing learned; the next 429 of the episode is a busy key's whole window."""
    gcra = GCRA(SCALED)
    times = greedy(gcra, 100, priority=BACKGROUND)  # saturating: 40 in every 2 s
    now = times[-1] + 0.003

    pause = gcra.penalize(now, None, granted=times[-1])

    assert 40 == gcra.sent_within(times[-1], SCALED.per)
    assert pytest.approx(SCALED.window / SCALED.requests) == pause  # an interval
    assert gcra.learned_limit(now) is None
    later = gcra.until + 0.01
    assert pytest.approx(SCALED.window) == gcra.penalize(later + 0.003, None, granted=later)
    assert gcra.learned_limit(later) is None


def test_after_a_pause_background_work_resumes_at_the_steady_pace():
    """A 429 pushes every caller back by the pause; background work then goes one by one."""
    limit = hc.RateLimit(requests=120, per=60.0, burst=10, margin=0.0)
    gcra = GCRA(limit)

    assert 4.0 == gcra.penalize(100.0, 4.0)
    assert [104.0, 104.5, 105.0] == greedy(gcra, 3, start=100.0, priority=BACKGROUND)


def test_a_retry_after_is_applied_unchanged_and_reported():
    """The sender caps Retry-After once; the limiter applies it as it is: 100 s is 100 s."""
    gcra = GCRA(hc.RateLimit())

    assert 100.0 == gcra.penalize(10.0, 100.0)
    assert 110.0 == gcra.next_time(10.0, INTERACTIVE)


def test_what_one_fresh_process_sent_is_never_a_lesson():
    """A fresh process's first 429 (its opening requests met its predecessor's window)."""
    gcra = GCRA(SCALED)
    greedy(gcra, 10)

    gcra.penalize(0.003, None, granted=0.0)

    assert gcra.learned_limit(0.003) is None
    assert SCALED.requests == gcra.capacity(1.0)


def test_429s_of_requests_sent_before_the_pause_add_nothing():
    """Requests granted before the pause began were in flight: the same episode, and the
    pause reported is what is left of it."""
    gcra = GCRA(SCALED)
    times = greedy(gcra, 30, priority=BACKGROUND)
    first = gcra.penalize(times[-1] + 0.003, None, granted=times[-3])
    before = (gcra.until, gcra.episode, gcra.base, gcra.hold)

    later = gcra.penalize(times[-1] + 0.5, None, granted=times[-1])

    assert before == (gcra.until, gcra.episode, gcra.base, gcra.hold)
    assert pytest.approx(first - 0.497) == later
    assert 0.0 == gcra.penalize(gcra.until + 0.1, None, granted=times[-1])  # the pause is over


def test_a_retry_after_in_flight_still_extends_the_pause():
    """A later 429 of the same episode carrying a longer Retry-After is obeyed."""
    gcra = GCRA(SCALED)
    gcra.penalize(1.0, 2.0, granted=1.0)

    assert 10.0 == gcra.penalize(2.0, 10.0, granted=0.5)
    assert 12.0 == gcra.next_time(2.0, INTERACTIVE)


def test_a_429_long_after_traffic_resumed_is_a_busy_key_again():
    """Not a recurrence: sent more than a window after traffic resumed."""
    gcra = GCRA(SCALED)
    gcra.penalize(1.0, None, granted=1.0)
    late = gcra.until + SCALED.window + 0.5

    assert pytest.approx(SCALED.window) == gcra.penalize(late, None, granted=late)
    assert gcra.learned_limit(late) is None


def test_a_429_within_per_of_the_episode_is_not_evidence():
    """After a short Retry-After the key's window may still hold the episode's requests;
    a request sent ``per`` after the episode began is judged on a window of its own."""
    gcra = GCRA(SCALED)
    greedy(gcra, 21, priority=BACKGROUND)
    gcra.penalize(1.0, 0.2, granted=1.0)

    gcra.penalize(1.5, 0.2, granted=1.45)  # within per of the episode: a busy key
    assert gcra.learned_limit(1.5) is None

    clean = 1.0 + SCALED.per  # the server's window starts as the episode began
    gcra.penalize(clean, None, granted=clean)
    assert gcra.learned_limit(clean) is not None


def test_a_429_exactly_a_window_after_traffic_resumed_still_recurs():
    """The recurrence window is closed: a 429 for a request sent a window after the pause
    ended is evidence; one sent later is a busy key again."""
    for extra, learned in ((0.0, True), (0.001, False)):
        gcra = GCRA(SCALED)
        gcra.penalize(1.0, None, granted=1.0)
        sent = gcra.until + SCALED.window + extra

        gcra.penalize(sent, None, granted=sent)

        assert learned == (gcra.learned_limit(sent) is not None)


# --- evidence of a lower limit, and lessons ---------------------------------------------------


def learn_20(gcra: GCRA) -> float:
    """Busy key, resume, refused again at the 21st of the window: a lesson of 20; its time."""
    times = greedy(gcra, 21, priority=BACKGROUND)
    gcra.penalize(times[-1] + 0.003, None, granted=times[-1])
    resumed = greedy(gcra, 21, start=gcra.until, priority=BACKGROUND)
    now = resumed[-1] + 0.003
    gcra.penalize(now, None, granted=resumed[-1])
    return now


def test_a_429_that_recurs_after_resuming_is_evidence_of_a_lower_limit():
    """Paused a whole window, resumed, refused again within a window: the key's window held
    only what the record counts, so the limit is what was sent minus one; the pause is only
    until the record has room at it."""
    gcra = GCRA(SCALED)

    now = learn_20(gcra)

    assert 20 == gcra.learned_limit(now) == gcra.capacity(now)
    assert LEARN_HOLD_MIN == gcra.hold
    assert SCALED.window > gcra.until - now
    assert gcra.until == gcra.next_time(now, BACKGROUND)


def test_the_lesson_counts_the_window_the_server_judged():
    """Requests sent after the refused one (still in flight when its 429 came) are not
    counted in the lesson."""
    gcra = GCRA(SCALED)
    gcra.penalize(1.0, None, granted=1.0)
    resumed = greedy(gcra, 24, start=gcra.until, priority=BACKGROUND)

    gcra.penalize(resumed[-1] + 0.003, None, granted=resumed[20])

    assert 20 == gcra.learned_limit(resumed[-1] + 0.003)


def test_without_the_grant_time_a_429_is_dated_now():
    """A limiter told nothing of when the refused request left takes it as sent now."""
    gcra = GCRA(SCALED)
    gcra.penalize(1.0, None)
    resumed = greedy(gcra, 21, start=gcra.until, priority=BACKGROUND)

    gcra.penalize(resumed[-1], None)

    assert 20 == gcra.learned_limit(resumed[-1])


def test_a_lesson_is_held_then_the_configured_rate_is_tried_then_it_is_forgotten():
    """Held ``hold`` windows, then a window at the configured rate; quiet: forgotten."""
    gcra = GCRA(SCALED)
    gcra.base, gcra.hold, gcra.episode = 20, 1, 10.0  # a lesson taken at t = 10
    w = SCALED.window

    assert 20 == gcra.capacity(10.0 + 0.99 * w)  # held one window
    assert 40 == gcra.capacity(10.0 + 1 * w)  # tried from that very moment
    assert 40 == gcra.capacity(10.0 + 1.01 * w)  # tried: the configured rate, at once
    assert 20 == gcra.learned_limit(10.0 + 1.99 * w)  # still the lesson while tried
    assert gcra.learned_limit(10.0 + (1 + 1) * w) is None  # a quiet window: forgotten


def test_each_refusal_while_a_lesson_holds_doubles_the_hold_up_to_the_longest():
    """A limit confirmed again and again is tried less often: 1, 2, 4 windows, no more."""
    gcra = GCRA(SCALED)
    gcra.base, gcra.hold, gcra.episode, gcra.until = 20, 1, 0.0, 0.1
    holds = []
    for _ in range(5):
        now = gcra.episode + gcra.hold * SCALED.window + 0.1  # refused while tried
        gcra.take(now - 0.01)
        gcra.penalize(now, None, granted=now - 0.003)
        holds.append(gcra.hold)

    assert [2, 4, 4, 4, 4] == holds
    assert 4 == LEARN_HOLD_MAX


def test_a_refusal_after_a_quiet_try_is_a_fresh_start():
    """A 429 after the lesson was forgotten is a busy key again: a whole window, nothing
    learned, the hold back at its shortest."""
    gcra = GCRA(SCALED)
    gcra.base, gcra.hold, gcra.episode = 20, 4, 0.0
    later = 5 * SCALED.window + 1.0  # past the hold and the try

    pause = gcra.penalize(later, None, granted=later)

    assert pytest.approx(SCALED.window) == pause
    assert gcra.learned_limit(later) is None
    assert (40, LEARN_HOLD_MIN) == (gcra.base, gcra.hold)


def test_a_refusal_while_tried_measures_the_lesson_again():
    """Refused while trying the configured rate with 31 sent in the window: the limit had
    risen, and the lesson becomes 30."""
    gcra = GCRA(PLAIN)
    gcra.base, gcra.hold, gcra.episode = 20, 1, 0.0
    tried = greedy(gcra, 31, start=PLAIN.window, priority=BACKGROUND)

    gcra.penalize(tried[-1] + 0.003, None, granted=tried[-1])

    assert 30 == gcra.learned_limit(tried[-1] + 0.003)
    assert 30 == gcra.capacity(tried[-1] + 0.003)


def test_a_lesson_never_drops_below_the_floor():
    """However many 429s recur with nothing sent, a tenth of the rate is kept."""
    limit = hc.RateLimit(requests=100, per=10.0, margin=0.0)
    gcra = GCRA(limit)
    for i in range(100):
        gcra.penalize(i * 10.5, 1.0, granted=i * 10.5)

    assert 10 == gcra.capacity(99 * 10.5)
    assert 10 == gcra.learned_limit(99 * 10.5)


def test_a_tiny_limit_keeps_one_request_per_window_after_many_429s():
    """A limit of 3 per second, after fifty 429s in a row, still grants one request a second."""
    gcra = GCRA(hc.RateLimit(requests=3, per=1.0, margin=0.0))
    for i in range(50):
        gcra.penalize(i * 0.5, 0.5)  # each one as the previous pause ends

    assert 1 == gcra.capacity(25.0)
    assert [25.0, 26.0, 27.0] == greedy(gcra, 3, start=25.0)


# --- rate-limit headers -----------------------------------------------------------------------


def test_stated_limit_caps_the_rate_and_stated_recovery_lifts_it():
    """Headers stating a lower limit set the rate at once; stating the full one restores it."""
    limit = hc.RateLimit(requests=120, per=60.0, margin=0.0)
    gcra = GCRA(limit)

    gcra.observe(0.0, hc.RateLimitHeaders(limit=1, window=1.0))  # 1 per second: 60 per minute
    lowered = gcra.capacity(1000.0), gcra.learned_limit(1000.0)  # nothing above it is tried
    gcra.observe(5.0, hc.RateLimitHeaders(limit=120))

    assert (60, 60) == lowered
    assert 120 == gcra.capacity(5.0)
    assert gcra.learned_limit(5.0) is None


def test_the_same_stated_limit_again_keeps_what_was_learned_since():
    """Headers repeating a limit already seen change nothing: a lesson learned since holds."""
    gcra = GCRA(SCALED)
    gcra.observe(0.0, hc.RateLimitHeaders(limit=30, window=2.0))
    gcra.base, gcra.hold, gcra.episode = 20, 4, 1.0

    gcra.observe(2.0, hc.RateLimitHeaders(limit=30, window=2.0))

    assert (20, 4) == (gcra.base, gcra.hold)
    assert 20 == gcra.learned_limit(2.0)


def test_a_stated_limit_replaces_a_lesson():
    """What a server states wins over what 429s taught."""
    gcra = GCRA(SCALED)
    gcra.base, gcra.hold, gcra.episode = 20, 4, 0.0

    gcra.observe(1.0, hc.RateLimitHeaders(limit=30, window=2.0))

    assert 30 == gcra.capacity(1.0)
    assert 30 == gcra.learned_limit(1.0)  # what the server says it allows
    assert LEARN_HOLD_MIN == gcra.hold


def test_no_requests_remaining_pauses_until_the_reset():
    """remaining=0 with a reset pauses every caller until then, without lowering the rate."""
    limit = hc.RateLimit(requests=120, per=60.0, margin=0.0)
    gcra = GCRA(limit)

    assert 0.0 == gcra.observe(0.0, hc.RateLimitHeaders(remaining=3, reset=7.0))
    assert 7.0 == gcra.observe(0.0, hc.RateLimitHeaders(remaining=0, reset=7.0))
    assert 7.0 == gcra.next_time(0.0, INTERACTIVE)
    assert 7.0 == gcra.next_time(0.0, BACKGROUND)
    assert 120 == gcra.capacity(0.0)


@pytest.mark.parametrize(
    ("info", "capacity"),
    [
        (hc.RateLimitHeaders(limit=1, window=1.0), 60),  # 1 a second: 60 a minute
        (hc.RateLimitHeaders(limit=2, window=2.0), 60),
        (hc.RateLimitHeaders(limit=1, window=60.0), 1),
        (hc.RateLimitHeaders(limit=0), 120),  # a limit of 0 is no limit we can keep: ignored
        (hc.RateLimitHeaders(limit=500), 120),  # never above the configured rate
    ],
)
def test_a_stated_limit_sets_the_rate(info, capacity):
    """A limit the server states, per its window, becomes the rate (never above configured)."""
    gcra = GCRA(hc.RateLimit(requests=120, per=60.0, margin=0.0))

    gcra.observe(0.0, info)

    assert capacity == gcra.capacity(0.0)


def test_one_request_remaining_is_no_pause():
    """remaining=1 still allows a request: no pause until the server says none are left."""
    gcra = GCRA(hc.RateLimit(requests=120, per=60.0, margin=0.0))

    assert 0.0 == gcra.observe(0.0, hc.RateLimitHeaders(remaining=1, reset=7.0))
    assert 0.0 == gcra.next_time(0.0, INTERACTIVE)
