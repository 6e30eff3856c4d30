"""The client's settings, resolved and validated at construction, before anything is sent.

The API key is held in a ``Secret`` from the moment it is received: a frame on the path of an
exception never has the key itself as a local variable, so tracebacks rendered with their
locals (``rich``, ``pytest -l``, ``traceback.TracebackException(capture_locals=True)``) show
``Secret(<redacted>)`` instead. Functions that hold the bare key only ever return.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import httpx

from ._config import DEFAULT_BASE_URL, RateLimit, Retry, finite_number, require_int
from ._limit._gate import PRIORITIES, Priority
from ._limit._local import LocalRateLimiter
from ._limit._protocol import RateLimiter, validate_limiter

__all__ = [
    "Secret",
    "resolve_api_key",
    "resolve_base_url",
    "resolve_limiter",
    "validate_callback",
    "validate_http_client",
    "validate_max_connections",
    "validate_max_wait",
    "validate_priority",
    "validate_retry",
    "validate_timeout",
]

#: The environment variables read when an argument is ``None``.
ENV_API_KEY = "HELPCRUNCH_API_KEY"
ENV_BASE_URL = "HELPCRUNCH_BASE_URL"
#: The largest TCP port.
MAX_PORT = 65535

T_co = TypeVar("T_co", covariant=True)


class Secret(Generic[T_co]):
    """A value whose ``repr`` never shows it; ``reveal()`` is the only way to read it."""

    __slots__ = ("_value",)

    def __init__(self, value: T_co) -> None:
        self._value = value

    def __repr__(self) -> str:
        return "Secret(<redacted>)"

    def reveal(self) -> T_co:
        """The value itself. Pass it on directly; never bind it where an exception may rise."""
        return self._value


def _key_problem(key: object) -> tuple[type[Exception], str] | None:
    """What is wrong with ``key``, in words that never repeat it; ``None`` if nothing."""
    if key is None:
        return ValueError, f"no API key: pass api_key=... or set {ENV_API_KEY}"
    if not isinstance(key, str):
        return TypeError, f"api_key must be a str, not {type(key).__name__}"
    if not key:
        return ValueError, f"the API key is empty: pass api_key=... or set {ENV_API_KEY}"
    if any(ch.isspace() for ch in key):
        return ValueError, "the API key contains whitespace; paste it exactly, with no spaces"
    # An HTTP header carries printable ASCII only; NUL or ESC would also corrupt a terminal.
    if not (key.isascii() and key.isprintable()):
        return ValueError, (
            "the API key contains control or non-ASCII characters; paste it exactly"
        )
    return None


def resolve_api_key(given: Secret[object]) -> Secret[str]:
    """The key given, else ``HELPCRUNCH_API_KEY``, checked without ever echoing it.

    Raises:
        TypeError: the key is not a string.
        ValueError: no key, an empty one, or one with whitespace or control characters.
    """
    if given.reveal() is None:
        given = Secret(os.environ.get(ENV_API_KEY))
    problem = _key_problem(given.reveal())
    if problem is not None:
        exc_type, message = problem
        raise exc_type(message)
    return Secret(str(given.reveal()))


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _has_userinfo(base_url: str) -> bool:
    """Whether the URL's authority part holds a user name or password."""
    authority = base_url.split("//", 1)[1] if "//" in base_url else base_url
    return "@" in authority.partition("/")[0]


def resolve_base_url(base_url: object) -> str:
    """The API root given, else ``HELPCRUNCH_BASE_URL``, else the public API; no trailing ``/``.

    Raises:
        TypeError: not a string.
        ValueError: not an http(s) URL; plain http to a host that is not loopback; a user
            name or password (never echoed), a query, a fragment or an invalid port.
    """
    if base_url is None:
        base_url = os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL
    if not isinstance(base_url, str):
        raise TypeError(f"base_url must be a str, not {type(base_url).__name__}")
    if _has_userinfo(base_url):
        # Checked before anything echoes the URL: the password would be in the message.
        raise ValueError(
            "base_url must not contain a user name or password (it would show in logs and "
            "reprs); pass the API key with api_key=..."
        )
    try:
        url = httpx.URL(base_url)
    except httpx.InvalidURL as exc:
        raise ValueError(f"base_url is not a valid URL: {base_url!r}") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
    if "?" in base_url or "#" in base_url:
        # A query would be glued to every request path; a fragment is never sent.
        raise ValueError(f"base_url must have no query or fragment, got {base_url!r}")
    if url.port is not None and not 1 <= url.port <= MAX_PORT:
        raise ValueError(f"base_url has an invalid port {url.port}; valid ports: 1-{MAX_PORT}")
    if url.scheme == "http" and not _is_loopback(url.host):
        raise ValueError(
            f"base_url {base_url!r} uses plain http; only https is allowed, "
            "except for loopback hosts (the emulator, tests)"
        )
    return base_url.rstrip("/")


def resolve_limiter(rate_limit: object) -> RateLimiter | None:
    """A ``RateLimit`` becomes a local limiter; a ``RateLimiter`` is checked whole, once."""
    if rate_limit is None:
        return None
    if isinstance(rate_limit, RateLimit):
        return LocalRateLimiter(rate_limit)
    return validate_limiter(rate_limit)


def validate_timeout(timeout: object) -> float:
    """Seconds one attempt may take: a positive finite number."""
    return finite_number(timeout, "timeout")


def validate_max_wait(max_wait: object) -> float | None:
    """Seconds a call may wait for its turn: ``None`` (no bound) or a finite number >= 0."""
    return None if max_wait is None else finite_number(max_wait, "max_wait", zero=True)


def validate_priority(priority: object) -> Priority:
    """A traffic class: ``"interactive"`` or ``"background"``."""
    for known in PRIORITIES:
        if priority == known and isinstance(priority, str):
            return known
    raise ValueError(f"priority must be 'interactive' or 'background', got {priority!r}")


def validate_retry(retry: object) -> Retry:
    """A ``Retry``; ``None`` is the default one."""
    if retry is None:
        return Retry()
    if not isinstance(retry, Retry):
        raise TypeError(f"retry must be a Retry or None, not {type(retry).__name__}")
    return retry


def validate_max_connections(max_connections: object) -> int:
    """Requests in flight at once: an int of at least 1."""
    return require_int(max_connections, "max_connections", minimum=1)


def validate_http_client(http_client: object) -> httpx.AsyncClient | None:
    """The caller's ``httpx.AsyncClient`` or ``None``; a synchronous ``httpx.Client`` is not one."""
    if http_client is None or isinstance(http_client, httpx.AsyncClient):
        return http_client
    raise TypeError(
        f"http_client must be an httpx.AsyncClient or None, not {type(http_client).__name__}"
    )


def validate_callback(callback: object, name: str) -> Callable[..., Any] | None:
    """A callable or ``None``, so that a wrong ``on_progress`` fails before any request."""
    if callback is None or callable(callback):
        return callback
    raise TypeError(f"{name} must be callable or None, not {type(callback).__name__}")
