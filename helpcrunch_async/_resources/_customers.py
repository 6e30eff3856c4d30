"""``client.customers``: find, create, change, tag and delete customers, one or many."""

from __future__ import annotations

import builtins
import functools
import hashlib
import json
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from .._bulk._outcomes import CustomerOutcome
from .._errors import ResponseValidationError
from .._models import Customer, Filter, Tag, validate_id
from .._models._wire import is_mapping
from ._base import Resource
from ._bulk_run import BulkOptions, bulk_run, collect
from ._customer_fields import CustomerFields, customer_body, some_fields, tags_body
from ._paging import MAX_PAGE_SIZE, check_page_size, paginate
from ._query import search_body, sorting
from ._raw import CustomersWithRawResponse

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .._bulk._engine import OutcomeStream
    from .._bulk._outcomes import BulkResult

__all__ = ["Customers"]

#: Fields customers can be sorted by; the ``customers.`` prefix is optional on input.
SORT_FIELDS = ("firstSeen", "lastSeen")
#: Most customers one batch update request may carry, as documented.
MAX_BATCH = 10
#: Longest operation name a journal takes (``Journal`` refuses longer ones).
_MAX_OP_NAME = 200


def _op_name(operation: str, argument: Any) -> str:
    """The journal's name of a bulk operation with its argument: the same call, the same name.

    An argument too long for a journal line is named by its digest instead.
    """
    text = json.dumps(argument, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    name = f"{operation} {text}"
    if len(name) <= _MAX_OP_NAME:
        return name
    return f"{operation} sha256:{hashlib.sha256(text.encode()).hexdigest()}"


class Customers(Resource):
    """The customers resource; reach it as ``client.customers``.

    Python names are snake_case (``user_id``, ``first_seen``, ``custom_data``); see
    ``CustomerFields`` for what can be written.
    """

    @functools.cached_property
    def with_raw_response(self) -> CustomersWithRawResponse:
        """The same calls, returning a ``RawResponse`` (status, headers, elapsed, parsed).

        Example:
            >>> raw = await client.customers.with_raw_response.get(542335)  # doctest: +SKIP
            >>> raw.status_code, raw.parsed.user_id  # doctest: +SKIP
        """
        return CustomersWithRawResponse(self)

    def list(
        self,
        *,
        sort: str | None = None,
        order: Literal["asc", "desc"] | None = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> AsyncIterator[Customer]:
        """Every customer, page by page: ``async for customer in client.customers.list(): ...``.

        ``sort`` is ``firstSeen`` or ``lastSeen`` (with or without the ``customers.``
        prefix); ``order`` is asc or desc.
        """
        params = sorting(sort, order, prefix="customers", fields=SORT_FIELDS)
        size = check_page_size(page_size)

        def fetch(offset: int, limit: int) -> Awaitable[Any]:
            query = params | {"offset": offset, "limit": limit}
            return self._call("GET", "/customers", params=query, operation="customers.list")

        return paginate(fetch, size, Customer.from_json)

    async def get(self, customer_id: int) -> Customer:
        """Fetch one customer by HelpCrunch's id (to find one by email or your own id, search).

        Raises:
            NotFoundError: no such customer.
        """
        customer_id = validate_id(customer_id, name="customer_id")
        body = await self._call("GET", f"/customers/{customer_id}", operation="customers.get")
        return Customer.from_json(body)

    def search(
        self,
        filters: Filter | Iterable[Filter],
        *,
        comparison: Literal["AND", "OR"] = "AND",
        sort: str | None = None,
        order: Literal["asc", "desc"] | None = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> AsyncIterator[Customer]:
        """Every customer matching ``filters`` (all of them with AND, any with OR), page by page.

        Fields are ``customers.id``, ``.name``, ``.email``, ``.userId``, ``.company``,
        ``.phone``, ``.city``, ``.regionCode``, ``.countryCode``, ``.firstSeen``,
        ``.lastSeen``, ``.telegramId`` (and the other messengers' ids) and ``.tagsData``,
        which takes a list of tag names and matches customers with all of them. A value
        must have the field's type: numbers and aware datetimes for ids and dates.

        Example:
            >>> vips = client.customers.search(Filter("customers.tagsData", "=", ["vip"]))
            >>> ids = [customer.id async for customer in vips]  # doctest: +SKIP
        """
        body = search_body(filters, comparison)
        body |= sorting(sort, order, prefix="customers", fields=SORT_FIELDS)
        size = check_page_size(page_size)

        def fetch(offset: int, limit: int) -> Awaitable[Any]:
            page = body | {"offset": offset, "limit": limit}
            return self._call(
                "POST", "/customers/search", json_body=page, operation="customers.search"
            )

        return paginate(fetch, size, Customer.from_json)

    async def find(
        self, *, email: str | None = None, user_id: str | None = None
    ) -> Customer | None:
        """The customer with this email, or with this id of yours (``userId``); ``None`` if none.

        One search request for one customer. Give exactly one of ``email`` and ``user_id``.

        Example:
            >>> customer = await client.customers.find(user_id="u-42")  # doctest: +SKIP

        Raises:
            TypeError, ValueError: neither or both given, or not a string, before sending.
        """
        given: dict[str, object] = {"customers.email": email, "customers.userId": user_id}
        wanted = {field: value for field, value in given.items() if value is not None}
        if len(wanted) != 1:
            raise ValueError("give exactly one of email and user_id")
        [(field, value)] = wanted.items()
        if not isinstance(value, str) or not value.strip():
            raise TypeError(f"{field.split('.')[1]} must be a non-empty str, not {value!r}")
        conditions = [Filter(field, "=", value)]
        body = search_body(conditions, "AND") | {"offset": 0, "limit": 1}
        answer = await self._call(
            "POST", "/customers/search", json_body=body, operation="customers.find"
        )
        found = answer.get("data") if is_mapping(answer) else None
        if not isinstance(found, builtins.list):
            raise ResponseValidationError("expected a page with a 'data' list")
        return Customer.from_json(found[0]) if found else None

    async def create(self, **fields: Unpack[CustomerFields]) -> Customer:
        """Create a customer and return it, with the id HelpCrunch gave it.

        No field is required; ``name``, ``email`` and ``user_id`` (your own id) are
        recommended. Unknown tags are created. Never repeated once the request may have
        reached the server: only a 429 or a connection never made is retried.

        Example:
            >>> ann = await client.customers.create(  # doctest: +SKIP
            ...     name="Ann", email="ann@example.com", user_id="u-1", tags=["vip"],
            ...     custom_data={"plan": "pro"},
            ... )

        Raises:
            TypeError, ValueError: an unknown field or a bad value, before anything is sent.
            BadRequestError: the server refused (``invalid_userId_value``: the ``user_id``
                belongs to another customer).
        """
        body = customer_body(fields)
        raw = await self._call(
            "POST", "/customers", json_body=body, idempotent=False, operation="customers.create"
        )
        return Customer.from_json(raw)

    async def update(self, customer_id: int, **fields: Unpack[CustomerFields]) -> Customer:
        """Change only the fields given (PATCH) and return the customer.

        ``None`` clears a field; the fields left out keep their values. For tags prefer
        ``tag`` and ``untag``, which add and remove instead of replacing the list.

        Raises:
            TypeError, ValueError: no field, an unknown one or a bad value, before sending.
            NotFoundError: no such customer.
        """
        return await self._write("PATCH", customer_id, fields, "customers.update")

    async def replace(self, customer_id: int, **fields: Unpack[CustomerFields]) -> Customer:
        """Replace the customer with the fields given (PUT) and return it.

        Fields left out become null: HelpCrunch's PUT sets every field not in the body to
        ``null``. To change some fields and keep the others, use ``update`` (PATCH).

        Raises:
            TypeError, ValueError: no field, an unknown one or a bad value, before sending.
            NotFoundError: no such customer.
        """
        return await self._write("PUT", customer_id, fields, "customers.replace")

    async def _write(
        self, method: str, customer_id: int, fields: Mapping[str, Any], operation: str
    ) -> Customer:
        customer_id = validate_id(customer_id, name="customer_id")
        body = customer_body(some_fields(fields, operation))
        path = f"/customers/{customer_id}"
        return Customer.from_json(
            await self._call(method, path, json_body=body, operation=operation)
        )

    async def delete(self, customer_id: int) -> None:
        """Delete a customer (the server answers a plain ``Ok``).

        To clear some fields instead, ``update`` them to ``None``. A retry after an attempt
        whose answer was lost may find the customer already deleted: ``NotFoundError``.

        Raises:
            NotFoundError: no such customer.
        """
        customer_id = validate_id(customer_id, name="customer_id")
        await self._call(
            "DELETE", f"/customers/{customer_id}", json_answer=False, operation="customers.delete"
        )

    async def batch_update(self, updates: Mapping[int, CustomerFields]) -> builtins.list[Customer]:
        """Update several customers, each with its own fields: ``{customer_id: fields}``.

        Sent as requests of at most 10 customers (the API's limit), one after another, in
        the mapping's order. Every item is checked before the first request. The API
        documents no answer for this call: the customers it sends back are returned (often
        none). Never repeated once a request may have reached the server. If a request
        fails, its error is raised: the customers of the earlier requests were updated, and
        those of the later ones were not sent. To update many customers with a journal to
        resume from, use ``bulk_update``.

        Example:
            >>> await client.customers.batch_update(  # doctest: +SKIP
            ...     {8740917: {"name": "Jason Mason", "city": "London"},
            ...      8740928: {"phone": "+13195942443"}}
            ... )

        Raises:
            TypeError, ValueError: a bad id, no fields for one, or a bad value, before sending.
        """
        if not isinstance(updates, Mapping):
            raise TypeError(f"updates must be a mapping of ids to fields, not {updates!r}")
        if not updates:
            raise ValueError("batch_update needs at least one customer")
        items = []
        for customer_id, fields in updates.items():
            item = {"customer": validate_id(customer_id, name="customer_id")}
            items.append(item | customer_body(some_fields(fields, f"customer {customer_id}")))
        updated: builtins.list[Customer] = []
        for start in range(0, len(items), MAX_BATCH):
            body = await self._call(
                "PUT",
                "/customers/batch",
                json_body=items[start : start + MAX_BATCH],
                idempotent=False,
                json_answer=False,
                operation="customers.batch_update",
            )
            if is_mapping(body):
                body = body.get("data")
            if isinstance(body, list):
                updated.extend(Customer.from_json(item) for item in body)
        return updated

    async def tag(self, customer_id: int, tags: Tag | str | Iterable[Tag | str]) -> Customer:
        """Add tags to a customer (its other tags stay) and return it.

        ``tags`` are names or ``Tag(name, color)``; a tag the account does not have yet is
        created, with the colour given or the server's default.

        Example:
            >>> tags = [Tag("vip", "#ff0000"), "lead"]
            >>> await client.customers.tag(542335, tags)  # doctest: +SKIP
        """
        body = {"tags": tags_body(tags)}
        return await self._tags("PUT", customer_id, body, "customers.tag")

    async def untag(self, customer_id: int, tags: Tag | str | Iterable[Tag | str]) -> Customer:
        """Remove tags (by name) from a customer and return it."""
        body = {"tags": tags_body(tags, names_only=True)}
        return await self._tags("DELETE", customer_id, body, "customers.untag")

    async def _tags(
        self, method: str, customer_id: int, body: dict[str, Any], operation: str
    ) -> Customer:
        customer_id = validate_id(customer_id, name="customer_id")
        path = f"/customers/{customer_id}/tags"
        return Customer.from_json(
            await self._call(method, path, json_body=body, operation=operation)
        )

    def stream_tag(
        self,
        customer_ids: Iterable[int] | AsyncIterable[int],
        tags: Tag | str | Iterable[Tag | str],
        **options: Unpack[BulkOptions],
    ) -> OutcomeStream[CustomerOutcome]:
        """Tag many customers, yielding one ``CustomerOutcome`` per distinct id.

        Works as ``client.chats.stream_update_status`` does: lazy input, outcomes as they
        complete, a journal to resume from (it records the tags, so a resume skips the ids
        done with the same ones), progress, and the circuit breaker (see ``BulkOptions``).

        Example:
            >>> async with client.customers.stream_tag(ids, "vip", journal="vip.jsonl") as out:
            ...     async for outcome in out:  # doctest: +SKIP
            ...         print(outcome.customer_id, outcome.ok)
        """
        # Read once: ``tags`` may be an iterator, and every id needs them.
        chosen = [Tag(t["name"], t.get("color")) for t in tags_body(tags)]
        names = sorted(tag.name for tag in chosen)
        return self._bulk(
            lambda customers, cid: customers.tag(cid, chosen),
            customer_ids,
            _op_name("customers.tag", names),
            "customers.tag",
            options,
        )

    async def bulk_tag(
        self,
        customer_ids: Iterable[int] | AsyncIterable[int],
        tags: Tag | str | Iterable[Tag | str],
        **options: Unpack[BulkOptions],
    ) -> BulkResult[Customer]:
        """Tag many customers and collect every outcome; see ``stream_tag``.

        Example:
            >>> result = await client.customers.bulk_tag(ids, "vip", journal="vip.jsonl")
            >>> print(result)  # doctest: +SKIP
            998 updated, 2 failed, 0 skipped (already done), 0 duplicates
        """
        return await collect(self.stream_tag(customer_ids, tags, **options), _result)

    def stream_untag(
        self,
        customer_ids: Iterable[int] | AsyncIterable[int],
        tags: Tag | str | Iterable[Tag | str],
        **options: Unpack[BulkOptions],
    ) -> OutcomeStream[CustomerOutcome]:
        """Remove tags from many customers, one ``CustomerOutcome`` per id; see ``stream_tag``."""
        names = sorted(tag["name"] for tag in tags_body(tags, names_only=True))
        return self._bulk(
            lambda customers, cid: customers.untag(cid, names),
            customer_ids,
            _op_name("customers.untag", names),
            "customers.untag",
            options,
        )

    async def bulk_untag(
        self,
        customer_ids: Iterable[int] | AsyncIterable[int],
        tags: Tag | str | Iterable[Tag | str],
        **options: Unpack[BulkOptions],
    ) -> BulkResult[Customer]:
        """Remove tags from many customers and collect every outcome; see ``stream_tag``."""
        return await collect(self.stream_untag(customer_ids, tags, **options), _result)

    def stream_update(
        self,
        customer_ids: Iterable[int] | AsyncIterable[int],
        fields: CustomerFields,
        **options: Unpack[BulkOptions],
    ) -> OutcomeStream[CustomerOutcome]:
        """Set the same ``fields`` on many customers (a PATCH each); see ``stream_tag``.

        The journal records the fields, so a resume skips the ids done with the same ones.
        For different fields per customer, ``batch_update`` sends 10 customers a request.
        """
        body = customer_body(some_fields(fields, "stream_update"))
        return self._bulk(
            lambda customers, cid: customers.update(cid, **fields),
            customer_ids,
            _op_name("customers.update", body),
            "customers.update",
            options,
        )

    async def bulk_update(
        self,
        customer_ids: Iterable[int] | AsyncIterable[int],
        fields: CustomerFields,
        **options: Unpack[BulkOptions],
    ) -> BulkResult[Customer]:
        """Set the same ``fields`` on many customers and collect every outcome.

        Example:
            >>> pro = {"custom_data": {"plan": "pro"}}
            >>> await client.customers.bulk_update(ids, pro)  # doctest: +SKIP
        """
        return await collect(self.stream_update(customer_ids, fields, **options), _result)

    def _bulk(
        self,
        operation: Callable[[Customers, int], Awaitable[Customer]],
        customer_ids: Iterable[int] | AsyncIterable[int],
        name: str,
        event: str,
        options: BulkOptions,
    ) -> OutcomeStream[CustomerOutcome]:
        return bulk_run(
            self,
            operation,
            customer_ids,
            name=name,
            event=event,
            outcome=CustomerOutcome,
            what="customer",
            options=options,
        )


def _result(outcome: CustomerOutcome) -> Customer | None:
    return outcome.customer
