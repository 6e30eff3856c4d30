"""Redis clients from URLs (single, Cluster, Sentinel), and the hash-tagged key names."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlsplit

import attrs
import redis as redis_sync
import redis.cluster as redis_cluster
import redis.sentinel

from .._errors import LimiterUnavailableError
from .._limit._protocol import api_key_fingerprint
from .._models._json import redact
from .._settings import Secret
from ._calls import FAILURES, RedisUnavailable, describe

__all__ = ["Problem", "client_from_url", "hash_tagged", "key_for"]

#: Prefix of every Redis key the rate limiter writes.
KEY_PREFIX = "helpcrunch-async:ratelimit:"
#: Seconds ``from_url``'s clients wait to connect and for an answer.
CONNECT_TIMEOUT = 5.0


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

    The URL may hold a password: it is wrapped in a ``Secret`` as soon as it is received,
    parsed in functions that only return, and never quoted in a message, so no traceback
    (rendered with its locals or not) and no chained exception shows it.

    Raises:
        TypeError: ``url`` is not a str.
        ValueError: not a Redis URL of a supported form (an unknown scheme, a Sentinel URL
            without a service name, a port that is no number...).
        LimiterUnavailableError: a Redis Cluster that could not be reached (redis-py asks a
            cluster for its slots at once; the other clients connect on first use).
    """
    given: Secret[object] = Secret(url)
    del url  # from here on the URL is in no local of this frame
    try:
        return connect(given)
    except RedisUnavailable as exc:
        problem = str(exc)
    raise LimiterUnavailableError(f"the shared rate limiter (Redis) is unavailable: {problem}")


def connect(url: Secret[object]) -> redis_sync.Redis | redis_cluster.RedisCluster:
    """``client_from_url`` for the SDK's own Redis users (the limiter, the journal).

    Raises:
        TypeError, ValueError: as ``client_from_url``.
        RedisUnavailable: a cluster that could not be reached (each user names itself in
            the error it raises for it).
    """
    if not isinstance(url.reveal(), str):
        raise TypeError(f"a Redis URL must be a str, not {type(url.reveal()).__name__}")
    built = _build(Secret(str(url.reveal())))
    if isinstance(built, Problem):
        raise built.kind(built.message)
    return built


@attrs.frozen
class Problem:
    """Why a URL gave no client, in words that never quote it."""

    kind: type[Exception]
    message: str


#: What a Redis URL looks like, for the messages (never the URL itself: it may hold a password).
_FORM = "a Redis URL looks like redis://[user:password@]host:6379/0"
#: A scheme shown in a message only if it looks like one (text before "://" may be a password).
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]{0,30}")


def _build(url: Secret[str]) -> redis_sync.Redis | redis_cluster.RedisCluster | Problem:
    """The client for ``url``, or why there is none; returns, never raises on a bad URL.

    Failures are turned into a ``Problem`` here, and raised by the caller, whose frame holds
    only the ``Secret``: a traceback never shows a frame with the URL, its password, or a
    redis-py or urllib exception (whose text may quote either).
    """
    kind = _kind(url)
    if isinstance(kind, Problem):
        return kind
    try:
        return _connect(url, *kind)
    except FAILURES as exc:  # a cluster asked for its slots at once
        return Problem(RedisUnavailable, _described(exc, url))
    except Exception as exc:  # noqa: BLE001 - redis-py's or urllib's text may quote the URL
        return Problem(ValueError, f"not a valid Redis URL ({type(exc).__name__}); {_FORM}")


def _kind(url: Secret[str]) -> tuple[str, str, Secret[str]] | Problem:
    """``(base scheme, topology, the rest of the URL)``: ``("rediss", "cluster", ...)``."""
    scheme, sep, rest = url.reveal().partition("://")
    if not sep:
        return Problem(ValueError, _FORM)
    base, _, topology = scheme.lower().partition("+")
    known = base in ("redis", "rediss") and topology in ("", "cluster", "sentinel")
    if not known and (base, topology) != ("unix", ""):
        shown = repr(scheme.lower()) if _SCHEME.fullmatch(scheme.lower()) else "(not shown)"
        return Problem(ValueError, f"unknown Redis URL scheme {shown}; {_FORM}")
    return base, topology, Secret(rest)


def _connect(
    url: Secret[str], base: str, topology: str, rest: Secret[str]
) -> redis_sync.Redis | redis_cluster.RedisCluster | Problem:
    timeouts: dict[str, Any] = {
        "socket_connect_timeout": CONNECT_TIMEOUT,
        "socket_timeout": CONNECT_TIMEOUT,
    }
    if not topology:
        return redis_sync.Redis.from_url(url.reveal(), **timeouts)
    if topology == "sentinel":
        return _sentinel_client(base == "rediss", rest, timeouts)
    if urlsplit(url.reveal()).path.strip("/") not in ("", "0"):
        return Problem(ValueError, "a Redis Cluster has only database 0")
    return redis_cluster.RedisCluster.from_url(
        f"{base}://{rest.reveal()}", require_full_coverage=False, **timeouts
    )


def _described(exc: BaseException, url: Secret[str]) -> str:
    """A redis-py failure in a few words, with whatever may be the URL's password redacted."""
    try:
        password = urlsplit(url.reveal()).password
    except ValueError:
        password = None
    text = describe(exc)
    for secret in (password, unquote(password or "")):
        text = redact(text, Secret(secret or ""))
    return text


def _sentinel_client(
    tls: bool, rest: Secret[str], timeouts: dict[str, Any]
) -> redis_sync.Redis | Problem:
    parts = urlsplit("//" + rest.reveal())
    if parts.query or parts.fragment:
        return Problem(ValueError, "a Sentinel URL takes no options: build the client for those")
    userinfo, _, hosts = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    sentinels = []
    for host in hosts.split(","):
        name, _, port = host.rpartition(":")
        if not name or not port.isdigit():
            return Problem(
                ValueError, "a Sentinel URL names its sentinels as host:port[,host:port...]"
            )
        sentinels.append((name.strip("[]"), int(port)))
    service, *db = [unquote(p) for p in parts.path.split("/") if p] or [""]
    if not service or len(db) > 1 or not all(d.isdigit() for d in db):
        return Problem(ValueError, "a Sentinel URL ends with /service or /service/db")
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
