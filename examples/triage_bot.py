"""A triage bot driven by HelpCrunch's webhooks: it reacts to events instead of polling.

The bot serves a ``WebhookEndpoint`` (an ASGI app, here under Starlette and uvicorn) and:

- when a customer writes a message mentioning the keyword in a chat, replies in the chat
  and moves it to the department that handles it;
- closes the chats it triaged once they went quiet (no event about them for a while).

Run alone, it starts an emulator whose webhooks go to the bot over loopback HTTP, plays a
few customers, and prints what the bot did::

    python examples/triage_bot.py --quiet-after 1

Against HelpCrunch, serve ``app`` on a public HTTPS URL, register that URL in Settings →
Developers → Webhooks, and give the bot the signing key shown there.
"""

from __future__ import annotations

import argparse
import socket
from datetime import datetime, timezone

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route

import helpcrunch_async as hc
from helpcrunch_async.emulator import EmulatorConfig, serve
from helpcrunch_async.webhooks import (
    ChatEventData,
    EventDeduplicator,
    MessageEventData,
    WebhookEndpoint,
    WebhookEvent,
)

KEYWORD = "refund"
DEPARTMENT = "Billing"
REPLY = "Thanks! Our billing team has your refund request and will answer here shortly."
SIGNING_KEY = "triage-bot-signing-key"
WEBHOOK_PATH = "/helpcrunch/webhooks"
#: Seconds the bot waits at most for what it should do (a bound against hangs).
DEADLINE = 30.0


class TriageBot:
    """The bot's rules; ``handle`` is the webhook handler, ``close_quiet_chats`` a task."""

    def __init__(
        self, client: hc.HelpCrunch, department: hc.Department, *, quiet_after: float
    ) -> None:
        if department.id is None or not department.agents or department.agents[0].id is None:
            raise ValueError(f"department {department.name} needs an id and an agent")
        self.client = client
        self.department_id = department.id
        self.agent_id = department.agents[0].id  # replies are signed by the department's agent
        self.quiet_after = quiet_after
        self.replied: set[int] = set()
        #: Triaged chats still open, with the time of the last event about each.
        self.active: dict[int, float] = {}
        #: Set when a chat is closed by the bot, by chat id.
        self.closed: dict[int, anyio.Event] = {}

    async def handle(self, event: WebhookEvent) -> None:
        """React to one webhook; raising makes the endpoint answer 500 and HelpCrunch retry."""
        data = event.data
        if isinstance(data, ChatEventData | MessageEventData) and data.chat_id in self.active:
            self.active[data.chat_id] = anyio.current_time()
        if event.type == "chat.closed" and isinstance(data, ChatEventData):
            self.active.pop(data.chat_id, None)
        if event.type == "message.chat.customer" and isinstance(data, MessageEventData):
            text = data.message.text if data.message else None
            if text and KEYWORD in text.lower():
                await self.triage(data.chat_id, data.message.created_at if data.message else None)

    async def triage(self, chat_id: int, written_at: datetime | None) -> None:
        # A redelivery after a failure half-way must not reply twice; moving is idempotent.
        if chat_id not in self.replied:
            await self.client.messages.create(chat_id, REPLY, agent_id=self.agent_id)
            self.replied.add(chat_id)
            delay = "" if written_at is None else f" {_since(written_at):.2f} s after the customer"
            print(f"chat {chat_id}: replied and moved to {DEPARTMENT}{delay}")
        await self.client.chats.update_department(chat_id, self.department_id)
        self.active[chat_id] = anyio.current_time()
        self.closed.setdefault(chat_id, anyio.Event())

    async def close_quiet_chats(self) -> None:
        """Every so often, close the triaged chats nothing happened in for ``quiet_after``."""
        while True:
            await anyio.sleep(self.quiet_after / 4)
            now = anyio.current_time()
            for chat_id, last in list(self.active.items()):
                if now - last >= self.quiet_after:
                    await self.client.chats.update_status(chat_id, hc.ChatStatus.CLOSED)
                    self.active.pop(chat_id, None)
                    print(f"chat {chat_id}: closed after going quiet")
                    self.closed.setdefault(chat_id, anyio.Event()).set()


def _since(moment: datetime) -> float:
    return (datetime.now(timezone.utc) - moment).total_seconds()


def webhook_app(bot: TriageBot) -> Starlette:
    """The bot's web app: one route, HelpCrunch's webhooks, each event handled once."""
    endpoint = WebhookEndpoint(
        bot.handle, signing_key=SIGNING_KEY, deduplicator=EventDeduplicator()
    )
    return Starlette(routes=[Route(WEBHOOK_PATH, endpoint, methods=["POST"])])


async def find_department(client: hc.HelpCrunch, name: str) -> hc.Department:
    # Read to the end: a listing left half-way stays open until collected (trio warns).
    departments = [department async for department in client.departments.list()]
    for department in departments:
        if department.name == name:
            return department
    raise LookupError(f"no department named {name!r}")


async def play_customers(client: hc.HelpCrunch, bot: TriageBot) -> None:
    """Three customers write in; two mention the keyword."""
    messages = {
        "Hi, I'd like a refund for order #4411": True,
        "How do I change my password?": False,
        "REFUND please, I was charged twice": True,
    }
    chats = {}
    for customer, text in enumerate(messages, start=1001):
        chat = await client.chats.create(customer=customer, application=1)
        await client.messages.create(chat.id, text)  # no agent: posted as the customer
        chats[chat.id] = messages[text]
    with anyio.fail_after(DEADLINE):
        for chat_id, mentions_keyword in chats.items():
            if mentions_keyword:
                await bot.closed.setdefault(chat_id, anyio.Event()).wait()
    for chat_id, mentions_keyword in chats.items():
        chat = await client.chats.get(chat_id)
        department = chat.department.name if chat.department else None
        print(f"chat {chat_id}: {chat.status}, department {department}, keyword {mentions_keyword}")


async def main(quiet_after: float) -> None:
    # The bot's socket first: the emulator must know where to send its webhooks.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}{WEBHOOK_PATH}"
    config = EmulatorConfig(chats=5, webhook_url=url, webhook_signing_key=SIGNING_KEY)
    async with serve(config) as emulator:
        async with hc.HelpCrunch(emulator.api_key, base_url=emulator.base_url) as client:
            bot = TriageBot(
                client, await find_department(client, DEPARTMENT), quiet_after=quiet_after
            )
            server = uvicorn.Server(
                uvicorn.Config(webhook_app(bot), log_level="warning", lifespan="off")
            )
            async with anyio.create_task_group() as web:
                web.start_soon(server.serve, [sock])
                async with anyio.create_task_group() as chores:
                    chores.start_soon(bot.close_quiet_chats)
                    await play_customers(client, bot)
                    chores.cancel_scope.cancel()
                server.should_exit = True
    sock.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A triage bot driven by HelpCrunch's webhooks.")
    parser.add_argument("--quiet-after", type=float, default=2.0, help="seconds (default 2)")
    anyio.run(main, parser.parse_args().quiet_after)
