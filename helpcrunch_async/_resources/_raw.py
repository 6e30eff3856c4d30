"""Raw responses: ``client.chats.with_raw_response.update_status(...)`` and friends.

The wrapped method runs unchanged on a copy of its resource that keeps each successful
answer in a ``Capture`` made for that one call: nothing is shared between calls, and calls
made without a wrapper pay nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Concatenate, Generic, ParamSpec, TypeVar

import attrs
import httpx

from ._base import Capture, Resource

if TYPE_CHECKING:
    from ._chats import Chats
    from ._customers import Customers
    from ._messages import Messages

__all__ = [
    "ChatsWithRawResponse",
    "CustomersWithRawResponse",
    "MessagesWithRawResponse",
    "RawResponse",
    "with_raw_response",
]

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R", bound=Resource)


@attrs.frozen
class RawResponse(Generic[T]):
    """The HTTP answer of a call, with what the SDK parsed from it.

    Examples:
        >>> chats = client.chats.with_raw_response  # doctest: +SKIP
        >>> raw = await chats.update_status(5215752, "closed")  # doctest: +SKIP
        >>> raw.status_code, raw.headers.get("x-request-id"), raw.parsed.status  # doctest: +SKIP

    Attributes:
        parsed: What the method returns without ``with_raw_response`` (a ``Chat``...).
        http_response: The ``httpx.Response``, read and closed (of the attempt that succeeded,
            and for an on-hold update, of the spelling the server accepted).
    """

    parsed: T
    http_response: httpx.Response

    @property
    def status_code(self) -> int:
        """The HTTP status."""
        return self.http_response.status_code

    @property
    def headers(self) -> httpx.Headers:
        """The response headers (case-insensitive)."""
        return self.http_response.headers

    @property
    def elapsed(self) -> float:
        """Seconds from sending that request to reading the whole answer."""
        return self.http_response.elapsed.total_seconds()


def with_raw_response(
    function: Callable[Concatenate[R, P], Awaitable[T]], resource: R
) -> Callable[P, Awaitable[RawResponse[T]]]:
    """``function`` (a method of ``resource``'s class) returning a ``RawResponse`` instead."""

    @functools.wraps(function)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> RawResponse[T]:
        capture = Capture()
        parsed = await function(resource._capturing(capture), *args, **kwargs)  # noqa: SLF001
        if capture.response is None:  # pragma: no cover - every wrapped method sends
            raise RuntimeError(f"{function.__qualname__} returned without an HTTP answer")
        return RawResponse(parsed, capture.response)

    return wrapper


class ChatsWithRawResponse:
    """``client.chats.with_raw_response``: the chats methods, returning ``RawResponse``s.

    Examples:
        >>> raw = await client.chats.with_raw_response.get(5215752)  # doctest: +SKIP
        >>> raw.headers["content-type"], raw.elapsed, raw.parsed.id  # doctest: +SKIP
    """

    def __init__(self, chats: Chats) -> None:
        cls = type(chats)
        self.update_status = with_raw_response(cls.update_status, chats)
        self.get = with_raw_response(cls.get, chats)
        self.update_assignee = with_raw_response(cls.update_assignee, chats)
        self.update_department = with_raw_response(cls.update_department, chats)
        self.snooze = with_raw_response(cls.snooze, chats)
        self.create = with_raw_response(cls.create, chats)
        self.rate = with_raw_response(cls.rate, chats)
        self.mark_read = with_raw_response(cls.mark_read, chats)


class MessagesWithRawResponse:
    """``client.messages.with_raw_response``: ``create`` returning a ``RawResponse``."""

    def __init__(self, messages: Messages) -> None:
        self.create = with_raw_response(type(messages).create, messages)


class CustomersWithRawResponse:
    """``client.customers.with_raw_response``: the single-customer calls, as ``RawResponse``s.

    ``batch_update`` keeps the answer of its last request.
    """

    def __init__(self, customers: Customers) -> None:
        cls = type(customers)
        self.get = with_raw_response(cls.get, customers)
        self.find = with_raw_response(cls.find, customers)
        self.create = with_raw_response(cls.create, customers)
        self.update = with_raw_response(cls.update, customers)
        self.replace = with_raw_response(cls.replace, customers)
        self.delete = with_raw_response(cls.delete, customers)
        self.batch_update = with_raw_response(cls.batch_update, customers)
        self.tag = with_raw_response(cls.tag, customers)
        self.untag = with_raw_response(cls.untag, customers)
