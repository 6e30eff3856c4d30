"""Close a batch of chats with plain asyncio.gather: the client paces itself.

Runs against HELPCRUNCH_BASE_URL / HELPCRUNCH_API_KEY if set, else against an embedded
emulator with a strict 40-per-2-seconds limit.
"""

from __future__ import annotations

import asyncio
import os
import time

import helpcrunch_async as hc
from helpcrunch_async.emulator import EmulatorConfig, ServerLimit, serve


async def close_all(client: hc.HelpCrunch, ids: list[int]) -> None:
    started = time.monotonic()
    results = await asyncio.gather(
        *(client.chats.update_status(chat_id, hc.ChatStatus.CLOSED) for chat_id in ids),
        return_exceptions=True,  # one failure must not hide the others' outcomes
    )
    closed = [r for r in results if isinstance(r, hc.Chat)]
    failed = [r for r in results if isinstance(r, Exception)]
    stats = client.stats()
    print(
        f"closed {len(closed)}, failed {len(failed)} in {time.monotonic() - started:.1f} s; "
        f"{stats.requests} requests, {stats.throttled} answered 429"
    )


async def main() -> None:
    if os.environ.get("HELPCRUNCH_BASE_URL"):
        async with hc.HelpCrunch() as client:
            await close_all(client, [5215752])
        return
    config = EmulatorConfig(chats=100, rate_limit=ServerLimit(40, 2.0))
    async with serve(config) as emulator:
        limit = hc.RateLimit(requests=40, per=2.0, margin=0.1)
        async with hc.HelpCrunch(
            emulator.api_key, base_url=emulator.base_url, rate_limit=limit
        ) as client:
            await close_all(client, sorted(emulator.state.chats))


if __name__ == "__main__":
    asyncio.run(main())
