"""``helpcrunch demo``: the main job, end to end, against an in-process emulator."""

from __future__ import annotations

from rich.console import Console

from .._client import HelpCrunch
from .._config import RateLimit
from .._models import ChatStatus
from ..emulator import EmulatorConfig, EmulatorState, Faults, ServerLimit, serve
from ._job import exit_code, print_summary, run_set_status

#: Seconds of margin the demo's client keeps; loopback jitter is far below it.
DEMO_MARGIN = 0.1


async def run_demo(chat_count: int, limit: RateLimit) -> int:
    """Start an emulator with a strict limit, close ``chat_count`` chats, show what happened."""
    console = Console(stderr=True, soft_wrap=True)
    out = Console(soft_wrap=True, highlight=False)
    config = EmulatorConfig(
        chats=chat_count,
        rate_limit=ServerLimit(limit.requests, limit.per),
        # A little trouble, as on a real network: the SDK retries it away.
        faults=Faults(server_errors=0.01, dropped=0.01, latency=0.005, jitter=0.02),
        seed=42,
    )
    async with serve(config) as emulator:
        console.print(
            f"[bold]HelpCrunch emulator[/] on {emulator.base_url}: {chat_count} chats, "
            f"at most {limit.requests} requests per {limit.per:g} s (sliding window; "
            "rejected requests count too).",
            highlight=False,
        )
        ids = sorted(emulator.state.chats)
        client_limit = RateLimit(requests=limit.requests, per=limit.per, margin=DEMO_MARGIN)
        async with HelpCrunch(
            emulator.api_key, base_url=emulator.base_url, rate_limit=client_limit
        ) as client:
            result = await run_set_status(
                client,
                ids,
                ChatStatus.CLOSED,
                console=console,
                journal=None,
                report=None,
                concurrency=None,
            )
            print_summary(out, client, result, ChatStatus.CLOSED.value, None)
        _server_view(out, emulator.state, limit, result.seconds)
    return exit_code(result)


def _server_view(console: Console, state: EmulatorState, limit: RateLimit, seconds: float) -> None:
    stats = state.stats()
    closed = sum(chat["status"] == "closed" for chat in state.chats.values())
    pace = stats["requests"] * limit.per / limit.requests
    console.print(
        f"Server side: {closed}/{len(state.chats)} chats closed; {stats['requests']} requests, "
        f"[bold]{stats['rejected']} rejected with 429[/]; busiest {limit.per:g} s window: "
        f"{stats['max_in_window']} of {limit.requests} allowed.",
        highlight=False,
    )
    console.print(
        f"The SDK waited for its turn instead of being rejected: {seconds:.1f} s for "
        f"{stats['requests']} requests, which take {pace:.1f} s at the limit's own pace.",
        highlight=False,
    )
