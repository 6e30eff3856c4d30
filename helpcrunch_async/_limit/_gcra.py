"""The limiter's arithmetic: GCRA bounded by a record of recent grants, free of clock and I/O.

The schedule is GCRA (one "theoretical arrival time", ``tat``, per bucket) bounded by a
record of the last ``requests`` grant times:

- GCRA spaces requests ``interval = window / requests`` apart and lets ``burst`` leave at
  once on an idle key, so interactive callers below the rate never wait;
- the record makes the guarantee hard: a request is granted only when the request
  ``requests`` grants ago is at least ``window`` old, so no window ever holds more than
  ``requests``, bursts included.

A 429 pushes ``tat`` forward for everybody (all callers pause together, then resume at the
steady pace without a burst) and teaches the limiter the key's real limit, as TCP keeps its
slow-start threshold:

- the rate that was punished is what this client actually sent in the last ``per``
  seconds (never more than the rate in force); the limiter holds one request per window
  under it, so a limit lower than configured is learned in one or a few 429 episodes;
- it holds there for ``LEARN_PROBE_MIN`` quiet windows, then probes gently: one request
  more per window, then two, four... (a probe that survives a whole window means the limit
  went up, so the growth doubles until the configured rate: full recovery in bounded time);
- a probe punished at once puts the rate back under the punished one and doubles the hold
  before the next probe (up to ``LEARN_PROBE_MAX`` windows), so a client that found its
  limit spends almost all its time just under it and rarely pays a 429.

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

if TYPE_CHECKING:
    from .._config import RateLimit
    from ._headers import RateLimitHeaders

__all__ = ["ADAPT_FLOOR", "GCRA", "LEARN_PROBE_MAX", "LEARN_PROBE_MIN"]

#: The learned rate never drops below this share of the configured rate.
ADAPT_FLOOR = 0.1
#: Quiet windows the learned rate is held before the first probe upward...
LEARN_PROBE_MIN = 3
#: ...and the longest hold, reached by doubling after each probe punished at once. It bounds
#: the time to full recovery when the real limit goes back up: this many windows plus the
#: doubling climb (log2 of the configured rate, in windows).
LEARN_PROBE_MAX = 6


@attrs.define
class GCRA:
    """The limiter's arithmetic, free of any clock or I/O, so it can be tested with numbers.

    ``next_time(now)`` is the earliest time a request may go; ``take(t)`` records a grant at
    ``t``; ``penalize(now, pause)`` is a 429; ``observe(now, info)`` applies rate-limit
    headers. Times are seconds on any monotonic clock.
    """

    limit: RateLimit
    tat: float = -math.inf
    grants: deque[float] = attrs.field(factory=deque)
    #: Requests per window held since the last lesson (``limit.requests``: nothing learned).
    base: int = attrs.field()
    #: When the current hold began (the last 429 episode or header change).
    since: float = -math.inf
    #: Quiet windows to hold ``base`` before probing upward.
    probe_wait: int = LEARN_PROBE_MIN
    #: No second lesson before this time: the 429s of requests already in flight when the
    #: first one came are the same episode.
    hold_until: float = -math.inf
    #: The rate at which the last 429 came (requests per ``per``), ``None`` before any.
    punished: int | None = None
    #: Requests per window a server's headers stated, when below the configured rate.
    stated: int | None = None
    #: The last (limit, window) pair read from headers, to act on changes only.
    stated_seen: tuple[int, float | None] | None = None

    @base.default
    def _base(self) -> int:
        return self.limit.requests

    def top(self) -> int:
        """The most the limiter ever allows per window: configured, or less if headers say so."""
        return self.limit.requests if self.stated is None else min(self.limit.requests, self.stated)

    def floor(self) -> int:
        """The least the learned rate may fall to."""
        return max(1, math.floor(self.limit.requests * ADAPT_FLOOR))

    def probing_windows(self, now: float) -> int:
        """How many windows of probing have begun at ``now`` (0 while holding ``base``)."""
        windows = math.floor(max(0.0, now - self.since) / self.limit.window)
        return max(0, windows - self.probe_wait + 1)

    def capacity(self, now: float) -> int:
        """Requests allowed per window at ``now`` (lower than configured once one is learned)."""
        top = self.top()
        if self.base >= top:
            return top
        probes = self.probing_windows(now)
        if not probes:
            return self.base
        # One more request in the first probing window (gentle: it is the rate punished last
        # time); once that survives a whole window the limit has risen, so double each window.
        return min(top, (self.base + 1) << min(probes - 1, 40))

    def learned_limit(self, now: float) -> int | None:
        """Requests per window the limiter holds to below the configured rate, or ``None``."""
        if self.capacity(now) >= self.limit.requests:
            return None
        return min(self.base, self.top())

    def _tau(self, cap: int) -> float:
        return (min(self.limit.effective_burst, cap) - 1) * (self.limit.window / cap)

    def next_time(self, now: float) -> float:
        """Earliest time >= ``now`` at which a request may be granted."""
        cap = self.capacity(now)
        t = max(now, self.tat - self._tau(cap))
        if len(self.grants) >= cap:
            t = max(t, self.grants[-cap] + self.limit.window)
        return t

    def interval(self, now: float) -> float:
        """Seconds between two requests at the rate in force at ``now``."""
        return self.limit.window / self.capacity(now)

    def take(self, t: float) -> None:
        """Record a request granted at ``t``."""
        cap = self.capacity(t)
        self.tat = max(self.tat, t) + self.limit.window / cap
        # Kept in time order (as Redis's sorted set is): when the rate changes, a slot may
        # come before one reserved earlier.
        bisect.insort(self.grants, t)
        while len(self.grants) > self.limit.requests:
            self.grants.popleft()

    def sent_within(self, now: float, seconds: float) -> int:
        """Grants in the last ``seconds`` up to ``now`` (the server's window holds as many)."""
        count = 0
        for t in reversed(self.grants):
            if t <= now - seconds:
                break
            count += t <= now
        return count

    def _pause_all(self, now: float, pause: float) -> None:
        # Resume at the steady pace, without a burst, once the pause is over.
        self.tat = max(self.tat, now + pause + self._tau(self.capacity(now)))

    def penalize(self, now: float, pause: float | None) -> float:
        """Apply a 429 at ``now``; return the pause applied to every caller.

        Without a ``Retry-After``, the pause is one interval at the new rate. The first 429
        of an episode is a lesson: the rate that was punished (what was sent in the last
        ``per`` seconds, at most the rate in force) is remembered, the rate drops to one
        request per window under it and is held there (see the module docstring); later
        429s of requests already in flight teach nothing more.
        """
        if now >= self.hold_until:
            cap = self.capacity(now)
            punished = max(1, min(cap, self.sent_within(now, self.limit.per)))
            if self.punished is None or self.base >= self.top():
                self.probe_wait = LEARN_PROBE_MIN  # a first lesson
            elif cap > self.base:  # punished while probing
                if punished <= self.punished:  # at the rate punished before: wait longer
                    self.probe_wait = min(LEARN_PROBE_MAX, 2 * self.probe_wait)
                else:  # more got through than last time: the limit had risen
                    self.probe_wait = LEARN_PROBE_MIN
            self.punished = punished
            self.base = max(self.floor(), punished - 1)
            self.since = now
        cap = self.capacity(now)
        if pause is None:
            # One interval stops the callers queued right now; the grant record already
            # keeps the next window under the learned rate, rejected requests included.
            pause = self.limit.window / cap
        self._pause_all(now, pause)
        if now >= self.hold_until:
            self.hold_until = max(now + pause, self.next_time(now))
        return pause

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
                self.base = self.top()
                self.since = now
                self.probe_wait = LEARN_PROBE_MIN
        if info.remaining is not None and info.remaining <= 0 and info.reset is not None:
            pause = min(info.reset, self.limit.window)
            self._pause_all(now, pause)
            return pause
        return 0.0
