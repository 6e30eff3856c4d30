"""An asyncio bot that reacts to support events by changing chat statuses.

Events arrive on a queue (in a real bot: a webhook, a message bus); each one is handled in
its own task, and every task shares one client, so the bot never trips the rate limit even
when events come in bursts.
"""

from __future__ import annotations

import asyncio

import helpcrunch_async as hc
from helpcrunch_async.emulator import EmulatorConfig, serve

RULES = {
    "customer_said_thanks": hc.ChatStatus.CLOSED,
    "waiting_for_customer": hc.ChatStatus.PENDING,
    "escalated": hc.ChatStatus.ON_HOLD,
}


async def handle(client: hc.HelpCrunch, event: str, chat_id: int) -> None:
    try:
        chat = await client.chats.update_status(chat_id, RULES[event])
    except hc.HelpCrunchError as exc:
        print(f"{event} on {chat_id}: failed: {exc}")
    else:
        print(f"{event} on {chat_id}: now {chat.status}")


async def bot(client: hc.HelpCrunch, events: asyncio.Queue[tuple[str, int] | None]) -> None:
    tasks = []
    while (item := await events.get()) is not None:
        tasks.append(asyncio.create_task(handle(client, *item)))
    await asyncio.gather(*tasks)


async def main() -> None:
    async with serve(EmulatorConfig(chats=20)) as emulator:
        async with hc.HelpCrunch(emulator.api_key, base_url=emulator.base_url) as client:
            events: asyncio.Queue[tuple[str, int] | None] = asyncio.Queue()
            ids = sorted(emulator.state.chats)
            for i, chat_id in enumerate(ids[:12]):
                events.put_nowait((list(RULES)[i % 3], chat_id))
            events.put_nowait(("customer_said_thanks", 42))  # no such chat
            events.put_nowait(None)
            await bot(client, events)


if __name__ == "__main__":
    asyncio.run(main())
