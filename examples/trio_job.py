"""The bulk-close job under trio: the SDK is backend-neutral (anyio), so nothing changes."""

from __future__ import annotations

import trio

import helpcrunch_async as hc
from helpcrunch_async.emulator import EmulatorConfig, ServerLimit, serve


async def main() -> None:
    async with serve(EmulatorConfig(chats=60, rate_limit=ServerLimit(30, 1.0))) as emulator:
        limit = hc.RateLimit(requests=30, per=1.0, margin=0.1)
        async with hc.HelpCrunch(
            emulator.api_key, base_url=emulator.base_url, rate_limit=limit
        ) as client:
            ids = sorted(emulator.state.chats)
            async with client.chats.stream_update_status(ids, "closed") as outcomes:
                async for outcome in outcomes:
                    if not outcome.ok:
                        print(f"chat {outcome.chat_id} failed: {outcome.error}")
            print(f"trio: {outcomes.done} chats processed, {outcomes.failed} failed;", end=" ")
            print(f"server rejected {emulator.stats()['rejected']}")


if __name__ == "__main__":
    trio.run(main)
