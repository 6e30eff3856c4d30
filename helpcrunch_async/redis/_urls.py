"""Redis clients from URLs (single, Cluster, Sentinel), and the hash-tagged key names."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

import redis as redis_sync
import redis.asyncio as redis_asyncio
import redis.asyncio.cluster as redis_asyncio_cluster
import redis.cluster as redis_cluster
import redis.sentinel

from .._limit._protocol import api_key_fingerprint

__all__ = ["ASYNC_CLIENTS", "CLIENTS", "RedisClient", "client_from_url", "hash_tagged", "key_for"]

#: Prefix of every Redis key the rate limiter writes.
KEY_PREFIX = "helpcrunch-async:ratelimit:"
#: Seconds ``from_url``'s clients wait to connect and for an answer.
CONNECT_TIMEOUT = 5.0

CLIENTS = (
    redis_sync.Redis,
    redis_asyncio.Redis,
    redis_cluster.RedisCluster,
    redis_asyncio_cluster.RedisCluster,
)
ASYNC_CLIENTS = (redis_asyncio.Redis, redis_asyncio_cluster.RedisCluster)
#: The clients the SDK takes (a Sentinel's ``master_for()`` is a ``Redis``).
RedisClient = (
    redis_sync.Redis
    | redis_asyncio.Redis
    | redis_cluster.RedisCluster
    | redis_asyncio_cluster.RedisCluster
)


def key_for(api_key: str) -> str:
    """The Redis key for an API key: a prefix and a SHA-256 fingerprint as a hash tag.

    The fingerprint is never the key; the braces make every key derived from this one live
    in one Redis Cluster hash slot.
    """
    return f"{KEY_PREFIX}{{{api_key_fingerprint(api_key)}}}"


def hash_tagged(key: str) -> str:
    """``key`` if it already holds a Redis Cluster hash tag (``{...}``), else ``{key}``."""
    opening = key.find("{")
    closing = key.find("}", opening + 1)
    if opening >= 0 and closing > opening + 1:
        return key
    return "{" + key + "}"


def client_from_url(url: str) -> redis_sync.Redis | redis_cluster.RedisCluster:
    """A synchronous redis-py client for a URL (schemes: see the module's docstring).

    Raises:
        ValueError: an unknown scheme, or a Sentinel URL without a service name.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError("a Redis URL looks like redis://host:6379/0")
    timeouts: dict[str, Any] = {
        "socket_connect_timeout": CONNECT_TIMEOUT,
        "socket_timeout": CONNECT_TIMEOUT,
    }
    base, _, topology = scheme.lower().partition("+")
    if base not in ("redis", "rediss", "unix") or (base == "unix" and topology):
        raise ValueError(f"unknown Redis URL scheme {scheme!r}")
    if not topology:
        return redis_sync.Redis.from_url(url, **timeouts)
    if topology == "cluster":
        if urlsplit(url).path.strip("/") not in ("", "0"):
            raise ValueError("a Redis Cluster has only database 0")
        return redis_cluster.RedisCluster.from_url(
            f"{base}://{rest}", require_full_coverage=False, **timeouts
        )
    if topology == "sentinel":
        return _sentinel_client(base == "rediss", rest, timeouts)
    raise ValueError(f"unknown Redis URL scheme {scheme!r}")


def _sentinel_client(tls: bool, rest: str, timeouts: dict[str, Any]) -> redis_sync.Redis:
    parts = urlsplit("//" + rest)
    if parts.query or parts.fragment:
        raise ValueError("a Sentinel URL takes no options: build the client for those")
    userinfo, _, hosts = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    sentinels = []
    for host in hosts.split(","):
        name, _, port = host.rpartition(":")
        if not name or not port.isdigit():
            raise ValueError("a Sentinel URL names its sentinels as host:port[,host:port...]")
        sentinels.append((name.strip("[]"), int(port)))
    service, *db = [unquote(p) for p in parts.path.split("/") if p] or [""]
    if not service or len(db) > 1 or not all(d.isdigit() for d in db):
        raise ValueError("a Sentinel URL ends with /service or /service/db")
    sentinel = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
        sentinels, sentinel_kwargs=dict(timeouts), **timeouts
    )
    client: redis_sync.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
        service,
        db=int(db[0]) if db else 0,
        username=unquote(user) or None,
        password=unquote(password) or None,
        ssl=tls,
    )
    return client
