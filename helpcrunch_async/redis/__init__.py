"""One rate limit shared by every process and machine using an API key, through Redis.

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
``BACKGROUND_LOOKAHEAD`` seconds away, an interactive one up to an interval further, so an
interactive call from any process reaches the next slot first, however many background
callers the fleet has. When Redis loses the schedule (a restart without persistence, an
eviction, a failover), the fleet waits one window instead of bursting. When Redis cannot be
used, the limiter fails the request with ``LimiterUnavailableError`` (nothing is sent), or,
with ``on_unavailable="local"``, falls back to a local limiter at this process's share of
the rate. ``ARCHITECTURE.md`` tells why each of these was chosen.
"""

from .._errors import LimiterUnavailableError
from ._limiter import BACKGROUND_LOOKAHEAD, DEFAULT_LOCAL_SHARE, RedisRateLimiter
from ._urls import client_from_url, key_for

__all__ = [
    "BACKGROUND_LOOKAHEAD",
    "DEFAULT_LOCAL_SHARE",
    "LimiterUnavailableError",
    "RedisRateLimiter",
    "client_from_url",
    "key_for",
]

RedisRateLimiter.__module__ = __name__
