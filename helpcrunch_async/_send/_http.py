"""One HTTP exchange, bounded in size: the request out, the whole answer in."""

from __future__ import annotations

import contextlib
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx

from .._errors import ClientClosedError, ResponseValidationError
from ._decode import error_from_transport

if TYPE_CHECKING:
    from collections.abc import Generator, Mapping

    from .._settings import Secret

__all__ = ["Exchange"]

#: Longest Content-Length value read as a number (beyond is surely past any cap).
_MAX_LENGTH_DIGITS = 18


class _BearerAuth(httpx.Auth):
    """Adds the key per request, so it lives in one object whose ``repr`` hides it."""

    def __init__(self, api_key: str) -> None:
        self._header = f"Bearer {api_key}"

    def __repr__(self) -> str:
        return "_BearerAuth(<redacted>)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


class Exchange:
    """Sends one request on an ``httpx.AsyncClient`` and reads its whole answer, bounded.

    The body is read as a stream and never past ``max_response_bytes``. Time is the
    caller's to bound: the sender runs the whole exchange under the attempt's deadline,
    since httpx's timeouts are per socket operation (a server trickling a byte at a time
    never trips them).

    Args:
        http: The connection pool.
        api_key: Sent as a bearer token; redacted from every text an error keeps.
        max_response_bytes: The largest body read.
    """

    def __init__(
        self, http: httpx.AsyncClient, *, api_key: Secret[str], max_response_bytes: int
    ) -> None:
        self.http = http
        self.max_response_bytes = max_response_bytes
        self._key = api_key
        self._auth = _BearerAuth(api_key.reveal())

    def __repr__(self) -> str:
        return f"Exchange(max_response_bytes={self.max_response_bytes})"

    async def send(
        self, method: str, url: str, *, json_body: Any, params: Mapping[str, Any] | None
    ) -> httpx.Response:
        """The answer, read whole (``.content``), closed, with ``.elapsed`` always set.

        The caller bounds it in time (the sender's attempt deadline, a cancel scope).

        Raises:
            APIConnectionError: no answer.
            ResponseValidationError: a success larger than ``max_response_bytes``.
            ClientClosedError: the ``httpx.AsyncClient`` was closed (one given as
                ``http_client`` and closed by its owner).
        """
        if self.http.is_closed:  # httpx would raise a bare RuntimeError
            raise ClientClosedError("the httpx.AsyncClient of this HelpCrunch client is closed")
        # The attempt's deadline is the one timer: httpx's own would start later and never
        # fire first. None also sets aside a given http_client's own (what httpx's
        # ``timeout=None`` gives, without building a Timeout each time).
        timeouts = {"connect": None, "read": None, "write": None, "pool": None}
        request = self.http.build_request(
            method, url, json=json_body, params=params, extensions={"timeout": timeouts}
        )
        sent_at = time.perf_counter()
        try:
            response = await self.http.send(request, auth=self._auth, stream=True)
            try:
                if _declared_within(response.headers, self.max_response_bytes):
                    # The common case, read by httpx itself: the framing bounds it.
                    await response.aread()
                    complete = response
                else:
                    complete = _detached(response, await self._read_capped(response), request)
            finally:
                await response.aclose()
        except httpx.TransportError as exc:
            raise error_from_transport(exc, secret=self._key) from exc
        # Timed here, always: httpx leaves ``elapsed`` unset for answers a custom transport
        # built already read, and perf_counter is the cheapest clock.
        complete.elapsed = timedelta(seconds=time.perf_counter() - sent_at)
        return complete

    async def _read_capped(self, response: httpx.Response) -> bytes:
        """The body, never more than ``max_response_bytes`` of it in memory.

        A success past the cap is an error (its model would be wrong); an error answer is
        cut at the cap, since only its status and an excerpt are kept.
        """
        chunks: list[bytes] = []
        size = 0
        # aclosing: leaving early must finalize httpx's generators now, not at GC time.
        async with contextlib.aclosing(response.aiter_bytes()) as body:  # type: ignore[type-var]
            async for chunk in body:
                size += len(chunk)
                if size > self.max_response_bytes:
                    if not response.is_success:
                        chunks.append(chunk[: len(chunk) - (size - self.max_response_bytes)])
                        break
                    raise ResponseValidationError(
                        f"HTTP {response.status_code} answer is larger than "
                        f"max_response_bytes={self.max_response_bytes}"
                    )
                chunks.append(chunk)
        return b"".join(chunks)


def _detached(response: httpx.Response, body: bytes, request: httpx.Request) -> httpx.Response:
    """A complete, closed response holding ``body``, which httpx already decoded.

    Built with the received headers, httpx would decode a compressed body a second time
    (and fail): they are given once it is built, as on any response httpx has read.
    """
    complete = httpx.Response(
        response.status_code, content=body, request=request, extensions=response.extensions
    )
    complete.headers = response.headers
    return complete


def _declared_within(headers: httpx.Headers, cap: int) -> bool:
    """Whether the answer says, in a way the HTTP framing enforces, that it fits the cap.

    Only an uncompressed body with a ``Content-Length`` qualifies: a compressed one may
    decode to far more than it declares.
    """
    length = headers.get("content-length")
    encoding = headers.get("content-encoding", "identity").strip().lower()
    return (
        length is not None
        and encoding == "identity"
        and length.isascii()
        and length.isdigit()
        and len(length) <= _MAX_LENGTH_DIGITS
        and int(length) <= cap
    )
