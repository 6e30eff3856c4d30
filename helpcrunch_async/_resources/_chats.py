"""``client.chats``: the chats resource."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from .._bulk._engine import OutcomeStream
from .._bulk._outcomes import BulkResult, ChatOutcome, Progress
from .._bulk._protocol import BulkJournal
from .._errors import BadRequestError
from .._models import ON_HOLD_SPELLINGS, Chat, ChatRating, ChatStatus, Filter, Message, validate_id
from ._base import Resource
from ._bulk_run import BulkOptions, bulk_run, collect
from ._paging import MAX_PAGE_SIZE, check_page_size, paginate
from ._query import search_body, sorting
from ._raw import ChatsWithRawResponse

if TYPE_CHECKING:
    import os


__all__ = ["Chats"]

#: Codes of a 400 that rejects the status value: the older style's, and the newer style's
#: field path.
_INVALID_STATUS = frozenset({"invalid_chat_value", "status"})

#: Who reads -> the endpoint that marks it.
_READ_BY = {"agent": "readByAgent", "customer": "readByCustomer"}

#: Fields chats can be sorted by; the ``chats.`` prefix is optional on input.
SORT_FIELDS = ("createdAt", "lastCustomerMessageAt", "lastMessageAt", "closedAt")


def _sorting(sort: object, order: object) -> dict[str, str]:
    return sorting(sort, order, prefix="chats", fields=SORT_FIELDS)


def _optional_id(value: int | None, name: str) -> int | None:
    return None if value is None else validate_id(value, name=name)


class Chats(Resource):
    """The chats resource; reach it as ``client.chats``."""

    @functools.cached_property
    def with_raw_response(self) -> ChatsWithRawResponse:
        """The same methods, returning a ``RawResponse`` (status, headers, elapsed, parsed).

        Examples:
            >>> raw = await client.chats.with_raw_response.get(5215752)  # doctest: +SKIP
            >>> raw.headers.get("x-request-id"), raw.parsed.status  # doctest: +SKIP
        """
        return ChatsWithRawResponse(self)

    async def update_status(self, chat_id: int, status: ChatStatus | str) -> Chat:
        """Set a chat's status and return the updated chat.

        ``status`` is a ``ChatStatus`` or any spelling of one (``"closed"``, ``"on hold"``,
        ``"open"``...). The documentation spells on-hold three ways; the client sends
        ``"on-hold"`` first, tries the others once each if the server rejects it with
        ``invalid_chat_value``, and remembers which one the server accepted.

        Examples:
            >>> await client.chats.update_status(5215752, ChatStatus.CLOSED)  # doctest: +SKIP

        Raises:
            TypeError, ValueError: a bad ``chat_id`` or ``status``, before anything is sent.
            HelpCrunchError: the subclass for what went wrong, after retries.
        """
        chat_id = validate_id(chat_id)
        status = ChatStatus.parse(status)
        if status is not ChatStatus.ON_HOLD:
            return await self._put_status(chat_id, status.value)

        spellings = list(ON_HOLD_SPELLINGS)
        known = self._sender.dialect.get("on_hold")
        if known is not None:
            spellings.remove(known)
            spellings.insert(0, known)
        *first, last = spellings
        for spelling in first:
            try:
                chat = await self._put_status(chat_id, spelling)
            except BadRequestError as exc:
                if not _INVALID_STATUS.intersection(exc.codes):
                    raise
            else:
                self._sender.dialect["on_hold"] = spelling
                return chat
        chat = await self._put_status(chat_id, last)
        self._sender.dialect["on_hold"] = last
        return chat

    async def _put_status(self, chat_id: int, status: str) -> Chat:
        body = await self._call(
            "PUT",
            "/chats/status",
            json_body={"id": chat_id, "status": status},
            operation="chats.update_status",
        )
        return Chat.from_json(body)

    async def get(self, chat_id: int) -> Chat:
        """Fetch one chat.

        Raises:
            NotFoundError: no such chat.
        """
        chat_id = validate_id(chat_id)
        return Chat.from_json(await self._call("GET", f"/chats/{chat_id}", operation="chats.get"))

    def list(
        self,
        *,
        sort: str | None = None,
        order: Literal["asc", "desc"] | None = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> AsyncIterator[Chat]:
        """Every chat, page by page: ``async for chat in client.chats.list(): ...``.

        ``sort`` is one of ``createdAt``, ``lastCustomerMessageAt``, ``lastMessageAt``,
        ``closedAt`` (with or without the ``chats.`` prefix); ``order`` is asc or desc.
        """
        params = _sorting(sort, order)
        size = check_page_size(page_size)

        def fetch(offset: int, limit: int) -> Awaitable[Any]:
            query = params | {"offset": offset, "limit": limit}
            return self._call("GET", "/chats", params=query, operation="chats.list")

        return paginate(fetch, size, Chat.from_json)

    def search(
        self,
        filters: Filter | Iterable[Filter],
        *,
        comparison: Literal["AND", "OR"] = "AND",
        sort: str | None = None,
        order: Literal["asc", "desc"] | None = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> AsyncIterator[Chat]:
        """Every chat matching ``filters`` (all of them with AND, any with OR), page by page.

        Examples:
            >>> stale = client.chats.search(  # doctest: +SKIP
            ...     [Filter("chats.status", "=", "pending"),
            ...      Filter("chats.lastMessageAt", "<", a_week_ago)],
            ... )
            >>> ids = [chat.id async for chat in stale]  # doctest: +SKIP
        """
        body = search_body(filters, comparison) | _sorting(sort, order)
        size = check_page_size(page_size)

        def fetch(offset: int, limit: int) -> Awaitable[Any]:
            page = body | {"offset": offset, "limit": limit}
            return self._call("POST", "/chats/search", json_body=page, operation="chats.search")

        return paginate(fetch, size, Chat.from_json)

    async def update_assignee(self, chat_id: int, agent_id: int | None) -> Chat:
        """Assign a chat to an agent; ``None`` unassigns it."""
        chat_id = validate_id(chat_id)
        body = {"id": chat_id, "assignee": _optional_id(agent_id, "agent_id")}
        return Chat.from_json(
            await self._call(
                "PUT", "/chats/assignee", json_body=body, operation="chats.update_assignee"
            )
        )

    async def update_department(self, chat_id: int, department_id: int) -> Chat:
        """Move a chat to a department."""
        chat_id = validate_id(chat_id)
        body = {"id": chat_id, "department": validate_id(department_id, name="department_id")}
        return Chat.from_json(
            await self._call(
                "PUT", "/chats/department", json_body=body, operation="chats.update_department"
            )
        )

    async def snooze(self, chat_id: int, until: datetime | None) -> Chat:
        """Snooze a chat until an aware ``datetime`` (sent as Unix seconds); ``None`` unsnoozes.

        Raises:
            ValueError: ``until`` is a naive datetime (its time zone would be a guess).
        """
        chat_id = validate_id(chat_id)
        if until is not None:
            if not isinstance(until, datetime):
                raise TypeError(f"until must be a datetime or None, not {type(until).__name__}")
            if until.tzinfo is None:
                raise ValueError(
                    f"until must be timezone-aware (e.g. tzinfo=timezone.utc), got {until!r}"
                )
        seconds = None if until is None else int(until.timestamp())
        body = {"id": chat_id, "snoozedUntil": seconds}
        return Chat.from_json(
            await self._call("PUT", "/chats/snooze", json_body=body, operation="chats.snooze")
        )

    async def rate(self, chat_id: int, rating: ChatRating | str) -> Chat:
        """Rate a chat on the customer's behalf and return it.

        ``rating`` is a ``ChatRating`` or its text: ``"perfect"``, ``"great"``,
        ``"average"``, ``"poor"`` or ``"very poor"`` (any other is refused before sending).
        The server rates only a closed chat, not rated yet, with at least one agent message.

        Sent once: a chat is rated once, so a retry of a request that may have been applied
        would be refused as already rated. Only a 429 or a connection never made is retried.

        Raises:
            TypeError, ValueError: a bad ``chat_id`` or ``rating``, before anything is sent.
            BadRequestError: the server refused (the chat is not closed, or already rated).
        """
        body = {"id": validate_id(chat_id), "rating": ChatRating.parse(rating).value}
        raw = await self._call(
            "PUT", "/chats/rate", json_body=body, idempotent=False, operation="chats.rate"
        )
        return Chat.from_json(raw)

    async def mark_read(
        self, chat_id: int, *, by: Literal["agent", "customer"], read: bool = True
    ) -> Chat:
        """Mark a chat as read (or, with ``read=False``, unread) by the agents or the customer.

        Example:
            >>> chat = await client.chats.mark_read(5215752, by="agent")  # doctest: +SKIP
            >>> chat.read_by_agent  # doctest: +SKIP
            True

        Raises:
            TypeError, ValueError: a bad ``chat_id``, ``by`` or ``read``, before sending.
        """
        chat_id = validate_id(chat_id)
        if by not in _READ_BY:
            raise ValueError(f"by must be 'agent' or 'customer', got {by!r}")
        if not isinstance(read, bool):
            raise TypeError(f"read must be a bool, not {type(read).__name__}")
        raw = await self._call(
            "PUT",
            f"/chats/{_READ_BY[by]}",
            json_body={"id": chat_id, "read": read},
            operation=f"chats.mark_read_by_{by}",
        )
        return Chat.from_json(raw)

    async def create(
        self,
        *,
        customer: int,
        application: int,
        assignee: int | None = None,
        department: int | None = None,
    ) -> Chat:
        """Create a chat for a customer in an application (widget).

        Never repeated once the request may have reached the server: creating is not
        idempotent, so only a 429 or a connection that was never made is retried.
        """
        body: dict[str, int] = {
            "customer": validate_id(customer, name="customer"),
            "application": validate_id(application, name="application"),
        }
        if assignee is not None:
            body["assignee"] = validate_id(assignee, name="assignee")
        if department is not None:
            body["department"] = validate_id(department, name="department")
        raw = await self._call(
            "POST", "/chats", json_body=body, idempotent=False, operation="chats.create"
        )
        return Chat.from_json(raw)

    def messages(self, chat_id: int, *, page_size: int = MAX_PAGE_SIZE) -> AsyncIterator[Message]:
        """Every message of a chat, page by page (at most 100 a page)."""
        chat_id = validate_id(chat_id)
        size = check_page_size(page_size)

        def fetch(offset: int, limit: int) -> Awaitable[Any]:
            query = {"offset": offset, "limit": limit}
            return self._call(
                "GET", f"/chats/{chat_id}/messages", params=query, operation="chats.messages"
            )

        return paginate(fetch, size, Message.from_json)

    def stream_update_status(
        self,
        chat_ids: Iterable[int] | AsyncIterable[int],
        status: ChatStatus | str,
        *,
        concurrency: int | None = None,
        journal: BulkJournal | str | os.PathLike[str] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        stop_after_consecutive_failures: int | None = None,
    ) -> OutcomeStream[ChatOutcome]:
        """Set the status of many chats, yielding one ``ChatOutcome`` per distinct id.

        ``chat_ids`` may be any iterable or async iterable and is read lazily: memory and
        tasks stay proportional to ``concurrency`` (plus a set of the ids seen, to update
        duplicates once). Outcomes come as they complete, not in input order. A bad id is a
        failed outcome with a ``TypeError``/``ValueError``; a failing chat never stops the
        others; a 401 stops the run and is raised.

        With a ``journal`` (a ``Journal`` or a path), outcomes are appended as they happen and
        ids it already records as done with this status are skipped: run the same call again
        to resume. A ``RedisJournal`` is shared by a fleet: workers handed the same ids
        claim each before sending it, so none is sent twice at once, and a dead worker's ids
        are taken over (see ``helpcrunch_async.redis``). ``on_progress`` is called with a
        ``Progress`` after each outcome.

        With ``stop_after_consecutive_failures=N``, the run stops once N ids in a row failed
        with ``APIConnectionError`` or ``ServerError`` (the API is unreachable or failing, so
        every other id would fail the same way): the stream raises ``BulkAbortedError`` after
        the outcomes already completed. With a journal, the same call resumes later.

        Examples:
            >>> stream = client.chats.stream_update_status(ids, "closed")
            >>> async with stream as outcomes:  # doctest: +SKIP
            ...     async for outcome in outcomes:
            ...         print(outcome.chat_id, "ok" if outcome.ok else outcome.error)

        Raises:
            TypeError, ValueError: a bad ``status``, ``concurrency``, ``chat_ids`` or
                ``journal``, at once.
            HelpCrunchError: while iterating, once, after the outcomes completed before it,
                the error that ended the run: ``AuthenticationError``, ``ClientClosedError``
                (the client was closed), ``LimiterUnavailableError``, ``JournalError`` (the
                journal cannot be written or reached: nothing more is sent) or
                ``BulkAbortedError`` (the circuit breaker tripped). Never an
                ``ExceptionGroup``.
        """
        status = ChatStatus.parse(status)
        options: BulkOptions = {
            "concurrency": concurrency,
            "journal": journal,
            "on_progress": on_progress,
            "stop_after_consecutive_failures": stop_after_consecutive_failures,
        }
        return bulk_run(
            self,
            lambda chats, chat_id: chats.update_status(chat_id, status),
            chat_ids,
            name=status.value,
            event="chats.update_status",
            outcome=ChatOutcome,
            what="chat",
            options=options,
        )

    async def bulk_update_status(
        self,
        chat_ids: Iterable[int] | AsyncIterable[int],
        status: ChatStatus | str,
        *,
        concurrency: int | None = None,
        journal: BulkJournal | str | os.PathLike[str] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        stop_after_consecutive_failures: int | None = None,
    ) -> BulkResult[Chat]:
        """Set the status of many chats and collect every outcome; see ``stream_update_status``.

        A run-ending error (see ``stream_update_status``: a tripped circuit breaker raises
        ``BulkAbortedError``, a journal that cannot be written ``JournalError``...) is
        raised by itself; the journal holds what completed.

        Examples:
            >>> result = await client.chats.bulk_update_status(ids, "closed")  # doctest: +SKIP
            >>> print(result)  # doctest: +SKIP
            4998 updated, 2 failed, 0 skipped (already done), 0 duplicates
        """
        stream = self.stream_update_status(
            chat_ids,
            status,
            concurrency=concurrency,
            journal=journal,
            on_progress=on_progress,
            stop_after_consecutive_failures=stop_after_consecutive_failures,
        )
        return await collect(stream, lambda outcome: outcome.chat)
