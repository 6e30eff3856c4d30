"""The emulator's account: the organization, its applications, agents' newsletters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from starlette.requests import Request

    from ._app import _Handlers

__all__ = ["account_routes", "seed_account"]


def seed_account() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The organization (the team online, the chat on) and its applications.

    The seeded chats come through application 1. Tests and examples flip the switches
    through the state: ``emulator.state.organization["teamOnline"] = False``.
    """
    organization = {"id": 1, "domain": "emulator", "teamOnline": True, "chatEnabled": True}
    applications = [
        {"id": 1, "name": "website", "displayName": "Website", "type": "widget", "active": True},
        {"id": 2, "name": "ios", "displayName": "iOS app", "type": "ios", "active": True},
        {
            "id": 3,
            "name": "telegram",
            "displayName": "Telegram",
            "type": "telegram",
            "active": False,
        },
    ]
    return organization, applications


class _Account:
    def __init__(self, handlers: _Handlers) -> None:
        self.h = handlers
        self.state = handlers.state

    async def organization(self, _: Request) -> Response:
        return JSONResponse({"data": self.state.organization})

    async def applications(self, _: Request) -> Response:
        items = self.state.applications
        # Undocumented: shown as departments are, in their two envelopes.
        return JSONResponse(items if self.h.config.payload_style == "legacy" else {"data": items})

    async def unsubscribe(self, request: Request) -> Response:
        agent = self.h.agent(int(request.path_params["agent_id"]))
        if agent is None:
            raise self.h.refuse(404, "entity_not_found", "Agent not found")
        self.state.unsubscribed_agents.add(agent["id"])
        return PlainTextResponse("Ok")


def account_routes(handlers: _Handlers) -> list[Route]:
    """The organization, application and agent-newsletter routes."""
    account = _Account(handlers)
    return [
        Route("/v1/organization", account.organization, methods=["GET"]),
        Route("/v1/applications", account.applications, methods=["GET"]),
        Route("/v1/agents/{agent_id:int}/unsubscribe", account.unsubscribe, methods=["GET"]),
    ]
