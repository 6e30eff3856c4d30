"""Rate limiting: the limiter protocol, its two implementations' shared parts, and the turn.

- ``_gate``: the priority gate of the connection slots (two classes, FIFO within each), and
  the limiters' lanes (one waiting line per class);
- ``_turn``: a call's turn, a connection slot then the limiter's grant, under one deadline;
- ``_protocol``: ``RateLimiter``, declared whole and checked once per limiter;
- ``_gcra``: the arithmetic (GCRA bounded by a record of grants), free of clock and I/O;
- ``_local``: ``LocalRateLimiter``, the arithmetic on anyio primitives;
- ``_headers``: reading ``Retry-After`` and rate-limit headers.

``helpcrunch_async.redis`` holds the fleet's limiter, which runs the same arithmetic in Redis.
"""
