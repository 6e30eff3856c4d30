"""What observing costs: the SDK's own CPU per call with no observer, a no-op one, and OpenTelemetry.

The HTTP answers come from an in-process httpx.MockTransport, so the figures are the client's
CPU alone (no sockets, no server); the rounds alternate between the clients, so drift in the
machine's load hits them alike.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

import httpx
from _common import API_KEY, heading, row

import helpcrunch_async as hc
from helpcrunch_async.otel import OpenTelemetryObserver

N, ROUNDS = 1000, 15
BODY = json.dumps({"id": 1, "status": "closed"}).encode()


def answer(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=BODY, headers={"Content-Type": "application/json"})


async def raw_httpx() -> float:
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        started = time.process_time()
        for i in range(N):
            response = await http.put(
                "https://x.test/v1/chats/status", json={"id": i + 1, "status": "closed"}
            )
            json.loads(response.content)
        return (time.process_time() - started) / N


async def sdk(**kwargs: Any) -> float:
    http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    async with (
        http,
        hc.HelpCrunch(
            API_KEY, base_url="https://x.test/v1", rate_limit=None, http_client=http, **kwargs
        ) as client,
    ):
        await client.chats.update_status(1, "closed")
        started = time.process_time()
        for i in range(N):
            await client.chats.update_status(i + 1, "closed")
        return (time.process_time() - started) / N


async def main() -> None:
    clients = {
        "raw httpx": raw_httpx,
        "helpcrunch-async, no observer": sdk,
        "helpcrunch-async, a no-op observer": lambda: sdk(on_event=lambda _event: None),
        "helpcrunch-async, OpenTelemetryObserver (API only, no SDK)": lambda: sdk(
            on_event=OpenTelemetryObserver()
        ),
    }
    figures: dict[str, list[float]] = {name: [] for name in clients}
    for _ in range(ROUNDS):
        for name, run in clients.items():
            figures[name].append(await run())
    heading(
        f"CPU per call, in-process transport ({N} calls, median of {ROUNDS} alternating rounds)"
    )
    row("client", "CPU per call", "added to raw httpx")
    row("---", "---", "---")
    base = statistics.median(figures["raw httpx"])
    for name, values in figures.items():
        median = statistics.median(values)
        row(name, f"{median * 1e6:.0f} µs", f"{(median - base) * 1e6:.0f} µs")


if __name__ == "__main__":
    asyncio.run(main())
