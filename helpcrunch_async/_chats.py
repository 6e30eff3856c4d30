"""``client.chats``: the chats resource."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._errors import BadRequestError
from ._models import ON_HOLD_SPELLINGS, Chat, ChatStatus, validate_chat_id

if TYPE_CHECKING:
    from ._client import HelpCrunch

__all__ = ["Chats"]

#: Codes of a 400 that rejects the status value: the older style's, and the newer style's
#: field path.
_INVALID_STATUS = frozenset({"invalid_chat_value", "status"})


class Chats:
    """The chats resource; reach it as ``client.chats``."""

    def __init__(self, client: HelpCrunch) -> None:
        self._client = client
        # The on-hold spelling this server accepted, once known (the docs disagree).
        self._on_hold: str | None = None

    async def update_status(self, chat_id: int, status: ChatStatus | str) -> Chat:
        """Set a chat's status and return the updated chat.

        ``status`` is a ``ChatStatus`` or any spelling of one (``"closed"``, ``"on hold"``,
        ``"open"``...). The documentation spells on-hold three ways; the client sends
        ``"on-hold"`` first, tries the others once each if the server rejects it with
        ``invalid_chat_value``, and remembers which one the server accepted.

        Example:
            >>> await client.chats.update_status(5215752, ChatStatus.CLOSED)  # doctest: +SKIP

        Raises:
            TypeError, ValueError: a bad ``chat_id`` or ``status``, before anything is sent.
            HelpCrunchError: the subclass for what went wrong, after retries.
        """
        chat_id = validate_chat_id(chat_id)
        status = ChatStatus.parse(status)
        if status is not ChatStatus.ON_HOLD:
            return await self._put_status(chat_id, status.value)

        spellings = list(ON_HOLD_SPELLINGS)
        if self._on_hold is not None:
            spellings.remove(self._on_hold)
            spellings.insert(0, self._on_hold)
        *first, last = spellings
        for spelling in first:
            try:
                chat = await self._put_status(chat_id, spelling)
            except BadRequestError as exc:
                if not _INVALID_STATUS.intersection(exc.codes):
                    raise
            else:
                self._on_hold = spelling
                return chat
        chat = await self._put_status(chat_id, last)
        self._on_hold = last
        return chat

    async def _put_status(self, chat_id: int, status: str) -> Chat:
        body = await self._client.request(
            "PUT", "/chats/status", json_body={"id": chat_id, "status": status}
        )
        return Chat.from_json(body)
