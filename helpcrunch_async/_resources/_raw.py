"""Raw responses: ``client.chats.with_raw_response.update_status(...)`` and friends.

The wrapped method runs unchanged; the send path hands the HTTP answer that succeeded to the
wrapper through a context variable (set only while a wrapper runs), so calls made without
it pay one ``ContextVar.get`` and resources need no second code path.
"""

from __future__ import annotations

import contextvars
import functools
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Generic, ParamSpec, TypeVar

import attrs
import httpx

if TYPE_CHECKING:
    from ._chats import Chats
    from ._messages import Messages

__all__ = [
    "ChatsWithRawResponse",
    "MessagesWithRawResponse",
    "RawResponse",
    "capture_response",
    "with_raw_response",
]

T = TypeVar("T")
P = ParamSpec("P")


@attrs.define
class _Capture:
    response: httpx.Response | None = None
    elapsed: float = 0.0


_CAPTURE: contextvars.ContextVar[_Capture | None] = contextvars.ContextVar(
    "helpcrunch_async_raw_response", default=None
)


def capture_response(response: httpx.Response, sent_at: float) -> None:
    """Keep a successful answer, sent at ``sent_at`` (``time.perf_counter()``), for a wrapper.

    Called by the send path for every successful answer; a no-op outside a wrapper.
    """
    capture = _CAPTURE.get()
    if capture is not None:
        capture.response = response
        capture.elapsed = time.perf_counter() - sent_at


@attrs.frozen
class RawResponse(Generic[T]):
    """The HTTP answer of a call, with what the SDK parsed from it.

    Example:
        >>> chats = client.chats.with_raw_response  # doctest: +SKIP
        >>> raw = await chats.update_status(5215752, "closed")  # doctest: +SKIP
        >>> raw.status_code, raw.headers.get("x-request-id"), raw.parsed.status  # doctest: +SKIP

    Attributes:
        parsed: What the method returns without ``with_raw_response`` (a ``Chat``...).
        http_response: The ``httpx.Response``, read and closed (of the attempt that succeeded,
            and for an on-hold update, of the spelling the server accepted).
        elapsed: Seconds from sending that request to reading the whole answer.
    """

    parsed: T
    http_response: httpx.Response
    elapsed: float

    @property
    def status_code(self) -> int:
        """The HTTP status."""
        return self.http_response.status_code

    @property
    def headers(self) -> httpx.Headers:
        """The response headers (case-insensitive)."""
        return self.http_response.headers


def with_raw_response(method: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[RawResponse[T]]]:
    """Wrap a resource method so that it returns a ``RawResponse`` of its result."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> RawResponse[T]:
        capture = _Capture()
        token = _CAPTURE.set(capture)
        try:
            parsed = await method(*args, **kwargs)
        finally:
            _CAPTURE.reset(token)
        if capture.response is None:  # pragma: no cover - every wrapped method sends
            raise RuntimeError(f"{method.__qualname__} returned without an HTTP answer")
        return RawResponse(parsed, capture.response, capture.elapsed)

    return wrapper


class ChatsWithRawResponse:
    """``client.chats.with_raw_response``: the chats methods, returning ``RawResponse``s.

    Example:
        >>> raw = await client.chats.with_raw_response.get(5215752)  # doctest: +SKIP
        >>> raw.headers["content-type"], raw.elapsed, raw.parsed.id  # doctest: +SKIP
    """

    def __init__(self, chats: Chats) -> None:
        self.update_status = with_raw_response(chats.update_status)
        self.get = with_raw_response(chats.get)
        self.update_assignee = with_raw_response(chats.update_assignee)
        self.update_department = with_raw_response(chats.update_department)
        self.snooze = with_raw_response(chats.snooze)
        self.create = with_raw_response(chats.create)


class MessagesWithRawResponse:
    """``client.messages.with_raw_response``: ``create`` returning a ``RawResponse``."""

    def __init__(self, messages: Messages) -> None:
        self.create = with_raw_response(messages.create)
