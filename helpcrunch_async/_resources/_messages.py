"""``client.messages``: posting messages and internal notes into chats."""

from __future__ import annotations

import functools
from typing import Any

from .._models import Message, validate_id
from ._base import Resource
from ._raw import MessagesWithRawResponse

__all__ = ["Messages"]

#: ``type`` of a message everyone in the chat sees, and of an internal note.
MESSAGE_TYPE, PRIVATE_TYPE = "message", "private"


def _text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name} must not be empty")
    return value


class Messages(Resource):
    """The messages resource; reach it as ``client.messages``."""

    @functools.cached_property
    def with_raw_response(self) -> MessagesWithRawResponse:
        """The same methods, returning a ``RawResponse`` (status, headers, elapsed, parsed)."""
        return MessagesWithRawResponse(self)

    async def create(
        self,
        chat_id: int,
        text: str,
        *,
        markdown: str | None = None,
        agent_id: int | None = None,
        private: bool = False,
    ) -> Message:
        """Post a message into a chat and return it.

        Without ``agent_id`` the message is posted as the chat's customer, as the API
        documents; with it, as that agent. ``private=True`` makes it an internal note that
        only agents see. ``markdown`` is sent as ``markdownText`` next to the plain ``text``.
        Email messages are not supported by the API.

        Posting is not idempotent: it is retried only when the request surely never reached
        the server (a 429, a connection never made), never after a timeout or a 5xx, so a
        message is never posted twice by the SDK.

        Examples:
            >>> await client.messages.create(5215752, "On it!", agent_id=12)  # doctest: +SKIP

        Raises:
            TypeError, ValueError: a bad argument, before anything is sent.
            NotFoundError: no such chat (``chat_not_found``) or agent (``entity_not_found``).
            BadRequestError: the server refused the chat id (``invalid_chat_value``).
        """
        body: dict[str, Any] = {"chat": validate_id(chat_id), "text": _text(text, "text")}
        if markdown is not None:
            body["markdownText"] = _text(markdown, "markdown")
        if agent_id is not None:
            body["agent"] = validate_id(agent_id, name="agent_id")
        if not isinstance(private, bool):
            raise TypeError(f"private must be a bool, not {type(private).__name__}")
        body["type"] = PRIVATE_TYPE if private else MESSAGE_TYPE
        raw = await self._call(
            "POST", "/messages", json_body=body, idempotent=False, operation="messages.create"
        )
        return Message.from_json(raw)
