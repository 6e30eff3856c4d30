"""The emulator's marks on a chat: the customer's rating and the read flags."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import Route

from ._webhooks import webhook_chat

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from ._app import _Handlers

__all__ = ["RATINGS", "chat_mark_routes"]

#: The ratings the rating page documents.
RATINGS = ("perfect", "great", "average", "poor", "very poor")


class _Marks:
    def __init__(self, handlers: _Handlers) -> None:
        self.h = handlers

    async def rate(self, request: Request) -> Response:
        body = await self.h.body_of(request)
        chat = self.h.find(body.get("id"))
        rating = body.get("rating")
        if rating not in RATINGS:
            raise self.h.refuse(400, "rating", f"rating must be one of {', '.join(RATINGS)}")
        # The documented preconditions: closed, not rated yet (the seeded chats all have an
        # agent's message).
        if chat["status"] != "closed":
            raise self.h.refuse(400, "invalid_request", "Chat must be closed to rate it")
        if chat["rating"] is not None:
            raise self.h.refuse(400, "invalid_request", "Chat is already rated")
        chat["rating"] = rating
        self.h.announce("chat.rated", webhook_chat(chat))
        return self.h.ok(chat)

    async def read_by_agent(self, request: Request) -> Response:
        return await self.read(request, "readByAgent")

    async def read_by_customer(self, request: Request) -> Response:
        return await self.read(request, "readByCustomer")

    async def read(self, request: Request, flag: str) -> Response:
        body = await self.h.body_of(request)
        chat = self.h.find(body.get("id"))
        if not isinstance(body.get("read"), bool):
            raise self.h.refuse(400, "read", "read must be true or false")
        chat[flag] = body["read"]
        return self.h.ok(chat)


def chat_mark_routes(handlers: _Handlers) -> list[Route]:
    """The rating and read-mark routes."""
    marks = _Marks(handlers)
    return [
        Route("/v1/chats/rate", marks.rate, methods=["PUT"]),
        Route("/v1/chats/readByAgent", marks.read_by_agent, methods=["PUT"]),
        Route("/v1/chats/readByCustomer", marks.read_by_customer, methods=["PUT"]),
    ]
