"""A fleet's shared state in Redis: one rate limit per API key, and bulk journals shared by workers.

Needs the ``redis`` extra (``pip install "helpcrunch-async[redis]"``):

```python
from helpcrunch_async.redis import RedisRateLimiter

limiter = RedisRateLimiter.from_url("redis://localhost:6379/0")
async with HelpCrunch(rate_limit=limiter) as client:
    ...
```

A single Redis, a Redis Cluster and a Sentinel-managed primary are all supported: pass a
``redis.Redis``, ``redis.cluster.RedisCluster`` or ``Sentinel(...).master_for(...)`` client
(or their ``redis.asyncio`` twins, asyncio only), or a URL to ``from_url``:

- ``redis://[user:password@]host:6379/0``, ``rediss://...`` (TLS), ``unix:///path.sock``;
- ``redis+cluster://[user:password@]host:port`` (``rediss+cluster://`` for TLS): any one node
  of the cluster, the others are discovered;
- ``redis+sentinel://[user:password@]host:port[,host:port...]/service[/db]``
  (``rediss+sentinel://`` for TLS): the sentinels and the service name they watch; the user
  and password are the primary's (sentinels themselves without auth: pass a client for more).

The arithmetic is the local limiter's (``_limit/_gcra.py``), run in one atomic Lua script
(``_script.lua``) with Redis's clock; learning, 429 pauses and rate-limit headers are shared
by the fleet. Keys are hash-tagged with a fingerprint of the API key (never the key), so they
share one Cluster slot, and expire when idle.

Traffic classes across processes: a background caller reserves only a slot at most
``BACKGROUND_LOOKAHEAD`` seconds away (and at most ``BACKGROUND_LOOKAHEAD_SHARE`` of an
interval), an interactive one up to an interval further, so an interactive call from any
process reaches the next slot first, however many background callers the fleet has. When
Redis loses the schedule (a restart without persistence, an eviction, a failover), the
fleet waits one window instead of bursting; a schedule that expired while the key was idle
is no loss. When Redis cannot be used, the limiter fails
the request with ``LimiterUnavailableError`` (nothing is sent), or, with
``on_unavailable="local"``, falls back to a local limiter at this process's share of the
rate. ``ARCHITECTURE.md`` tells why each of these was chosen.

``RedisJournal`` is the bulk helpers' journal for a job spread over several workers (the
same URLs)::

    journal = RedisJournal.from_url("redis://localhost:6379/0", "close-stale-2026-12")
    await client.chats.bulk_update_status(ids, "closed", journal=journal)

Workers handed the same ids claim each before sending it (a lease, renewed while the call is
in flight), so none is sent by two at once and a dead worker's ids are taken over once its
lease lapses; ``await journal.report()`` tells the job's state across the fleet.
"""

from .._errors import JournalError, LimiterUnavailableError
from ._journal import DEFAULT_LEASE, RedisJournal
from ._limiter import (
    BACKGROUND_LOOKAHEAD,
    BACKGROUND_LOOKAHEAD_SHARE,
    DEFAULT_LOCAL_SHARE,
    RedisRateLimiter,
)
from ._report import JournalReport
from ._session import RedisSession
from ._urls import client_from_url, key_for

__all__ = [
    "BACKGROUND_LOOKAHEAD",
    "BACKGROUND_LOOKAHEAD_SHARE",
    "DEFAULT_LEASE",
    "DEFAULT_LOCAL_SHARE",
    "JournalError",
    "JournalReport",
    "LimiterUnavailableError",
    "RedisJournal",
    "RedisRateLimiter",
    "RedisSession",
    "client_from_url",
    "key_for",
]

RedisRateLimiter.__module__ = __name__
for _public in (RedisJournal, RedisSession, JournalReport):
    _public.__module__ = __name__
del _public
