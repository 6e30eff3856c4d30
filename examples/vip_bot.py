"""A bot that knows its customers: it tags a VIP on the first message, and hands the chat to a
person only when the team is online.

The bot serves a ``WebhookEndpoint`` and, on the first message a customer writes in a chat:

- looks the customer up (``client.customers.get``) and records the chat on the customer's
  profile (``client.events.create``);
- tags an enterprise customer ``vip`` (``client.customers.tag``);
- hands a VIP's chat to a person (``client.chats.update_assignee``) when
  ``client.organization.get().team_online``; when the team is away, it answers itself and
  marks the chat read (``client.chats.mark_read``), so nobody thinks it is unanswered.

Run alone, it starts an emulator whose webhooks go to the bot over loopback HTTP, plays three
customers (the team leaves before the third writes), and prints what the bot did::

    python examples/vip_bot.py

Against HelpCrunch, serve ``app`` on a public HTTPS URL, register that URL in Settings →
Developers → Webhooks, and give the bot the signing key shown there.
"""

from __future__ import annotations

import socket

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route

import helpcrunch_async as hc
from helpcrunch_async.emulator import EmulatorConfig, EmulatorState, serve
from helpcrunch_async.webhooks import (
    EventDeduplicator,
    MessageEventData,
    WebhookEndpoint,
    WebhookEvent,
)

VIP = hc.Tag("vip", "#ff0000")
AWAY = "Thanks for writing! Our team is away right now; a person will answer here first thing."
SIGNING_KEY = "vip-bot-signing-key"
WEBHOOK_PATH = "/helpcrunch/webhooks"
#: Seconds the demo waits at most for the bot (a bound against hangs).
DEADLINE = 30.0


def is_vip(customer: hc.Customer) -> bool:
    """The bot's rule: enterprise customers are VIPs."""
    return customer.custom_data.get("plan") == "enterprise"


class VipBot:
    """The bot's rules; ``handle`` is the webhook handler."""

    def __init__(self, client: hc.HelpCrunch, agent: hc.Agent) -> None:
        if agent.id is None:
            raise ValueError("the agent to hand chats to needs an id")
        self.client = client
        self.agent_id = agent.id
        self.agent_name = agent.name
        self.seen: set[int] = set()
        #: Set once the bot has dealt with a chat, by chat id.
        self.done: dict[int, anyio.Event] = {}

    async def handle(self, event: WebhookEvent) -> None:
        """React to one webhook; raising makes the endpoint answer 500 and HelpCrunch retry."""
        data = event.data
        if event.type != "message.chat.customer" or not isinstance(data, MessageEventData):
            return
        if data.chat_id in self.seen or data.customer is None:
            return  # only the first message of a chat
        await self.first_message(data.chat_id, data.customer.id)
        self.seen.add(data.chat_id)
        self.done.setdefault(data.chat_id, anyio.Event()).set()

    async def first_message(self, chat_id: int, customer_id: int) -> None:
        customer = await self.client.customers.get(customer_id)
        await self.client.events.create(customer_id, "Chat started", data={"chat": chat_id})
        if not is_vip(customer):
            print(f"chat {chat_id}: {customer.name} is not a VIP, the bot carries on")
            return
        # Tagging is idempotent: a redelivered webhook tags again, harmlessly.
        if VIP.name not in customer.tag_names:
            await self.client.customers.tag(customer_id, VIP)
        print(f"chat {chat_id}: {customer.name} tagged {VIP.name}")
        if (await self.client.organization.get()).team_online:
            await self.client.chats.update_assignee(chat_id, self.agent_id)
            print(f"chat {chat_id}: handed to {self.agent_name}")
        else:
            await self.client.messages.create(chat_id, AWAY, agent_id=self.agent_id)
            await self.client.chats.mark_read(chat_id, by="agent")
            print(f"chat {chat_id}: team away, the bot answered")


def webhook_app(bot: VipBot) -> Starlette:
    """The bot's web app: one route, HelpCrunch's webhooks, each event handled once."""
    endpoint = WebhookEndpoint(
        bot.handle, signing_key=SIGNING_KEY, deduplicator=EventDeduplicator()
    )
    return Starlette(routes=[Route(WEBHOOK_PATH, endpoint, methods=["POST"])])


async def first_agent(client: hc.HelpCrunch) -> hc.Agent:
    async for agent in client.agents.list():
        if agent.role is hc.AgentRole.AGENT:
            return agent
    raise LookupError("no agent to hand chats to")


async def an_application(client: hc.HelpCrunch) -> int:
    """The id of the first active application: ``chats.create`` needs one."""
    async for application in client.applications.list():
        if application.active and application.id is not None:
            return application.id
    raise LookupError("no active application")


async def play_customers(client: hc.HelpCrunch, bot: VipBot, emulator: EmulatorState) -> None:
    """Three customers write in; the team goes away before the third one does."""
    application = await an_application(client)
    people = [
        ("Dana Okafor", {"plan": "enterprise"}, "Our SSO stopped working for everyone."),
        ("Eli Novak", {"plan": "free"}, "How do I export my data?"),
        ("Fatima Ali", {"plan": "enterprise"}, "We need 40 more seats today."),
    ]
    for number, (name, custom_data, text) in enumerate(people):
        if number == len(people) - 1:
            emulator.organization["teamOnline"] = False  # the team leaves for the day
        customer = await client.customers.create(name=name, custom_data=custom_data)
        chat = await client.chats.create(customer=customer.id, application=application)
        await client.messages.create(chat.id, text)  # no agent: posted as the customer
        with anyio.fail_after(DEADLINE):
            await bot.done.setdefault(chat.id, anyio.Event()).wait()
    ours = {name for name, _, _ in people}
    vips = client.customers.search(hc.Filter("customers.tagsData", "=", [VIP.name]))
    tagged = sorted(c.name for c in [c async for c in vips] if c.name in ours)
    print(f"VIPs tagged by the bot: {', '.join(n or '' for n in tagged)}")


async def main() -> None:
    # The bot's socket first: the emulator must know where to send its webhooks.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}{WEBHOOK_PATH}"
    config = EmulatorConfig(chats=5, webhook_url=url, webhook_signing_key=SIGNING_KEY)
    async with serve(config) as emulator:
        async with hc.HelpCrunch(emulator.api_key, base_url=emulator.base_url) as client:
            bot = VipBot(client, await first_agent(client))
            server = uvicorn.Server(
                uvicorn.Config(webhook_app(bot), log_level="warning", lifespan="off")
            )
            async with anyio.create_task_group() as web:
                web.start_soon(server.serve, [sock])
                await play_customers(client, bot, emulator.state)
                server.should_exit = True
    sock.close()


if __name__ == "__main__":
    anyio.run(main)
