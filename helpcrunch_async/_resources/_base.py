"""What every resource shares: its client's send path, its view's options, and a capture."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from .._send._sender import Request

if TYPE_CHECKING:
    from collections.abc import Mapping

    import httpx

    from .._send._sender import CallOptions, Sender

__all__ = ["Capture", "Resource"]


@attrs.define
class Capture:
    """Where a ``with_raw_response`` call keeps the answer its method succeeded with."""

    response: httpx.Response | None = None


class Resource:
    """The base of ``client.chats``, ``client.messages``...: builds requests, parses answers.

    Sending is the client's ``Sender``'s job; a resource only says what to send and turns
    the answer into models.
    """

    def __init__(
        self, sender: Sender, options: CallOptions, capture: Capture | None = None
    ) -> None:
        self._sender = sender
        self._options = options
        self._capture = capture

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._sender.base_url}>"

    def _capturing(self, capture: Capture) -> Any:
        """The same resource, keeping each successful answer in ``capture``."""
        return type(self)(self._sender, self._options, capture)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotent: bool = True,
        json_answer: bool = True,
    ) -> Any:
        """Send one API call through the client's send path; return its decoded JSON.

        With ``json_answer=False`` a success that is not JSON (a plain ``Ok``) gives ``None``.
        """
        request = Request(method, path, json_body, params, idempotent, operation, json_answer)
        reply = await self._sender.send(request, self._options)
        if self._capture is not None:
            self._capture.response = reply.response
        return reply.json
