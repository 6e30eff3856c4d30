"""The limiter's arithmetic: GCRA bounded by a record of recent grants, free of clock and I/O.

- **Pace.** GCRA spaces grants ``interval = window / cap`` apart (``tat``, the "theoretical
  arrival time"). Only an *interactive* grant may run ahead of ``tat``, by the burst
  (``burst - 1`` intervals), so a web handler's few calls never wait on an idle key. A
  *background* grant never runs ahead: a bulk job never spends the burst, and its record of
  sends ages out one per interval, never in a clump that would hold everyone back. While a
  lesson holds there is no burst at all: a try of the configured rate then costs the one
  request the key refuses, not a burst of them.
- **Hard bound.** A record of the last ``requests`` grants: a grant at ``t`` needs the
  ``cap``-th latest grant to be a window old, so no window of ``per + margin`` seconds ever
  holds more than ``cap``, whatever the class, the order of reservations or a change of
  rate.
- **Pause.** ``until``: nothing at all is granted before it. A 429 sets it once, to the
  server's ``Retry-After`` (already capped by the sender) or to the limiter's estimate.
- **A busy key is not a lower limit.** A 429 says the key's window is full, not who filled it
  (the previous run of a killed job, another program, a second worker). So a 429 first pauses
  every caller one whole window, the only wait that surely empties a window someone else
  filled (when the record shows our own sends alone filled it, one arriving late past the
  margin, only until the record has room), and traffic resumes at the rate in force. It is
  *evidence* of a lower limit only when the refused request was sent at least ``per`` after
  the previous episode began (the server's window then held only what the record counts)
  and the refusal recurs: within a window of traffic resuming, or while a lesson holds.
  What one fresh process sent is never a lesson: its first 429 has no episode before it.
- **Lessons.** Evidence sets the rate to what was sent in the window the server judged, minus
  one (never below ``ADAPT_FLOOR`` of the configured rate), and pauses only until the record
  has room at that rate. The lesson is held ``hold`` windows, then the configured rate is
  tried again for one window: a refusal then is evidence again and doubles ``hold`` (up to
  ``LEARN_HOLD_MAX``); a trial window without one forgets the lesson. So a false lesson is
  gone one window after the 429s stop, and the full rate is back at most ``LEARN_HOLD_MAX``
  windows after a real limit returns (see ``LEARN_HOLD_MAX`` for the trade-off).

Rate-limit headers, when a server sends them (``_headers``), set the rate and the pause
directly; nothing depends on them. ``redis/_script.lua`` mirrors this class decision by
decision (``tests/test_redis.py`` checks it).
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from typing import TYPE_CHECKING

import attrs

from ._gate import BACKGROUND, INTERACTIVE

if TYPE_CHECKING:
    from .._config import RateLimit
    from ._gate import Priority
    from ._headers import RateLimitHeaders

__all__ = ["ADAPT_FLOOR", "GCRA", "LEARN_HOLD_MAX", "LEARN_HOLD_MIN"]

#: A learned rate never drops below this share of the configured rate.
ADAPT_FLOOR = 0.1
#: Windows a fresh lesson is held before the configured rate is tried again...
LEARN_HOLD_MIN = 1
#: ...and the longest hold, reached by doubling at each refusal while a lesson holds. It
#: bounds how long the limiter stays below the configured rate after the key's real limit
#: came back: at most this many windows. Shorter costs more 429s while the limit stays low
#: (each try of the configured rate at a lower limit costs one): with 2, the full rate would
#: be back within two windows wherever the limit returns, but at half the limit 2.6 % of
#: requests would be answered 429; with 4, 1.6 % (``benchmarks/README.md``).
LEARN_HOLD_MAX = 4


@attrs.define
class GCRA:
    """The limiter's arithmetic, free of any clock or I/O, so it can be tested with numbers.

    ``next_time(now, priority)`` is the earliest time a grant may be made; ``take(t)``
    records one; ``penalize(now, pause, granted)`` is a 429; ``observe(now, info)`` applies
    rate-limit headers. Times are seconds on any monotonic clock (Redis's ``TIME`` for a
    fleet).
    """

    limit: RateLimit
    #: GCRA's theoretical arrival time: the steady pace's next slot.
    tat: float = -math.inf
    #: The last ``limit.requests`` grant times, in time order (Redis: a sorted set).
    grants: deque[float] = attrs.field(factory=deque)
    #: Nothing is granted before this: the pause of the last 429 (or of headers).
    until: float = -math.inf
    #: When the current 429 episode began (its first 429); a lesson dates from it.
    episode: float = -math.inf
    #: Requests per window learned from evidence (``limit.requests``: nothing learned).
    base: int = attrs.field()
    #: Windows the lesson is held before the configured rate is tried again.
    hold: int = LEARN_HOLD_MIN
    #: Requests per window a server's headers stated, when below the configured rate.
    stated: int | None = None
    #: The last (limit, window) pair read from headers, to act on changes only.
    stated_seen: tuple[int, float | None] | None = None

    @base.default
    def _base(self) -> int:
        return self.limit.requests

    # --- the rate in force -----------------------------------------------------------------

    def top(self) -> int:
        """The most the limiter ever allows per window: configured, or less if headers say so."""
        return self.limit.requests if self.stated is None else min(self.limit.requests, self.stated)

    def floor(self) -> int:
        """The least a lesson may hold to."""
        return max(1, math.floor(self.limit.requests * ADAPT_FLOOR))

    def lesson_holds(self, now: float) -> bool:
        """Whether a lesson holds: ``hold`` windows from its episode, then one of probing."""
        window = self.limit.window
        return self.base < self.top() and now < self.episode + (self.hold + 1) * window

    def capacity(self, now: float) -> int:
        """Requests allowed per window at ``now``: the lesson while held, else the top."""
        if self.base < self.top() and now < self.episode + self.hold * self.limit.window:
            return self.base
        return self.top()

    def learned_limit(self, now: float) -> int | None:
        """What the key was shown to allow below the configured rate, else ``None``.

        The lesson while it holds (its trial window included), learned from evidence; else
        the limit a server's headers stated, if lower than configured.
        """
        return self.base if self.lesson_holds(now) else self.stated

    def interval(self, now: float) -> float:
        """Seconds between two grants at the rate in force at ``now``."""
        return self.limit.window / self.capacity(now)

    # --- granting --------------------------------------------------------------------------

    def credit(self, cap: int, priority: Priority) -> float:
        """How far ahead of the steady pace a grant may go: the burst, interactive only."""
        if priority != INTERACTIVE:
            return 0.0
        return (min(self.limit.effective_burst, cap) - 1) * (self.limit.window / cap)

    def next_time(self, now: float, priority: Priority) -> float:
        """Earliest time >= ``now`` at which a grant of ``priority`` may be made."""
        cap = self.capacity(now)
        # No burst while a lesson holds: the key is not idle, and its limit is in doubt.
        credit = 0.0 if self.lesson_holds(now) else self.credit(cap, priority)
        t = max(now, self.until, self.tat - credit)
        if len(self.grants) >= cap:
            t = max(t, self.grants[-cap] + self.limit.window)
        return t

    def take(self, t: float) -> None:
        """Record a grant at ``t`` (every grant costs one interval, whatever its class)."""
        self.tat = max(self.tat, t) + self.limit.window / self.capacity(t)
        # Kept in time order (as Redis's sorted set is): a reservation may come before one
        # made earlier, when the rate changed in between.
        bisect.insort(self.grants, t)
        while len(self.grants) > self.limit.requests:
            self.grants.popleft()

    def sent_within(self, now: float, seconds: float) -> int:
        """Grants in ``(now - seconds, now]`` (reservations after ``now`` were not sent yet)."""
        count = 0
        for t in reversed(self.grants):
            if t <= now - seconds:
                break
            count += t <= now
        return count

    # --- 429s and headers ------------------------------------------------------------------

    def penalize(self, now: float, pause: float | None, granted: float | None = None) -> float:
        """Apply a 429 at ``now``; return the pause in force for every caller from ``now``.

        ``pause`` is the server's ``Retry-After`` as the sender capped it (``None``: none);
        it is applied unchanged. Without it the pause is the limiter's estimate: a whole
        window for a busy key; for evidence of a lower limit, until the record has room at
        the new rate. ``granted`` is when the refused request was granted (``None``:
        unknown, taken as ``now``): it tells a request sent before the pause (in flight, the
        same episode) from one sent after it, and which window the server judged.
        """
        window = self.limit.window
        sent_at = now if granted is None else min(granted, now)
        if sent_at < self.until:  # sent before the pause in force began: nothing new
            return self._pause(now, pause)
        if self.base < self.top() and not self.lesson_holds(sent_at):
            self.base, self.hold = self.top(), LEARN_HOLD_MIN  # a quiet trial window: forgotten
        held = self.base < self.top()
        # The server's window of the refused request starts after the last episode began, so
        # it holds only what was sent since: what the record counts, plus others' requests.
        clean = sent_at >= self.episode + self.limit.per
        recurring = held or sent_at <= self.until + window  # within a window of resuming
        sent = self.sent_within(sent_at, self.limit.per)  # in the window the server judged
        if clean and recurring:  # evidence: the key refused the rate the record counts
            self.hold = min(2 * self.hold, LEARN_HOLD_MAX) if held else LEARN_HOLD_MIN
            self.base = min(self.top(), max(self.floor(), sent - 1))
            self.episode = now
            estimate = self._room(now)
        elif clean and sent >= self.capacity(sent_at):
            # A busy key that our own sends filled (one arrived late, past the margin): the
            # window has room when the record does. Nothing is learned.
            self.episode = now
            estimate = self._room(now)
        else:  # a busy key: someone filled the window; only a whole window surely empties it
            if clean:
                self.episode = now
            estimate = window
        return self._pause(now, estimate if pause is None else pause)

    def _room(self, now: float) -> float:
        """Seconds until the record has room for one more at the rate in force (>= an interval).

        That is when the key's window can have room, if it holds only what the record counts.
        """
        return max(self.next_time(now, BACKGROUND) - now, self.interval(now))

    def _pause(self, now: float, pause: float | None) -> float:
        """Hold every caller back ``pause`` seconds from ``now`` (``None``: no new pause).

        Returns the pause in force from ``now``: ``pause`` itself when it is the longest.
        """
        if pause is not None and now + pause >= self.until:
            self.until = now + pause
            return pause
        return max(0.0, self.until - now)

    def observe(self, now: float, info: RateLimitHeaders) -> float:
        """Apply what rate-limit headers said at ``now``; return the pause applied (0: none).

        A stated limit (converted to this limiter's ``per``) caps the rate and replaces
        anything learned, when it changes; ``remaining == 0`` with a ``reset`` pauses every
        caller until the reset (at most a window), without lowering the rate.
        """
        if info.limit is not None and info.limit > 0:
            seen = (info.limit, info.window)
            if seen != self.stated_seen:
                self.stated_seen = seen
                per = self.limit.per if info.window is None else info.window
                stated = max(1, math.floor(info.limit * self.limit.per / per))
                self.stated = stated if stated < self.limit.requests else None
                self.base, self.hold = self.top(), LEARN_HOLD_MIN
        if info.remaining is not None and info.remaining <= 0 and info.reset is not None:
            pause = min(info.reset, self.limit.window)
            self.until = max(self.until, now + pause)
            return pause
        return 0.0
