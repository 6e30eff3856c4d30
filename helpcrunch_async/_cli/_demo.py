"""``helpcrunch demo``: the main job, end to end, against an in-process emulator."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from .._client import HelpCrunch
from .._config import RateLimit
from .._models import ChatStatus
from ..emulator import EmulatorConfig, EmulatorState, Faults, ServerLimit, serve
from ._job import exit_code, run_set_status
from ._options import err_console, out_console
from ._summary import print_summary, summary_document
from ._watch import JobWatch

if TYPE_CHECKING:
    from rich.console import Console

#: Seconds of margin the demo's client keeps. The emulator stamps a request when its thread
#: handles it: on a busy machine a tenth of a second or so after the client's grant, by
#: amounts that vary (0.13 s at worst measured, with four busy loops beside two test suites).
#: Twice that keeps the demo's "0 rejected" true there too, for about 7 % more time.
DEMO_MARGIN = 0.25
#: A little trouble, as on a real network: the SDK retries it away, and the banner says so.
DEMO_FAULTS = Faults(server_errors=0.01, dropped=0.01, latency=0.005, jitter=0.02)


async def run_demo(chat_count: int, limit: RateLimit, *, as_json: bool = False) -> int:
    """Start an emulator with a strict limit, close ``chat_count`` chats, show what happened."""
    console = err_console(markup=True)
    out = out_console(markup=True)
    config = EmulatorConfig(
        chats=chat_count,
        rate_limit=ServerLimit(limit.requests, limit.per),
        faults=DEMO_FAULTS,
        seed=42,
    )
    async with serve(config) as emulator:
        console.print(
            f"[bold]HelpCrunch emulator[/] on {emulator.base_url}: {chat_count} chats, "
            f"at most {limit.requests} requests per {limit.per:g} s (sliding window; "
            "rejected requests count too).",
        )
        console.print(
            f"Faults injected, as on a real network: {DEMO_FAULTS}. The SDK retries the "
            "5xx answers and the dropped connections: they are the summary's retries.",
        )
        ids = sorted(emulator.state.chats)
        client_limit = RateLimit(requests=limit.requests, per=limit.per, margin=DEMO_MARGIN)
        watch = JobWatch()
        async with HelpCrunch(
            emulator.api_key, base_url=emulator.base_url, rate_limit=client_limit, on_event=watch
        ) as client:
            result = await run_set_status(
                client,
                ids,
                ChatStatus.CLOSED,
                console=console,
                journal=None,
                report=None,
                concurrency=None,
                watch=watch,
            )
        if as_json:
            summary = summary_document(client, result, ChatStatus.CLOSED.value, None)
            server = emulator.state.stats() | {"closed": _closed(emulator.state)}
            click.echo(json.dumps(summary | {"server": server}))
        else:
            print_summary(out, client, result, ChatStatus.CLOSED.value, None)
            _server_view(out, emulator.state, limit, result.seconds)
    return exit_code(result)


def _closed(state: EmulatorState) -> int:
    return sum(chat["status"] == "closed" for chat in state.chats.values())


def _server_view(console: Console, state: EmulatorState, limit: RateLimit, seconds: float) -> None:
    stats = state.stats()
    pace = stats["requests"] * limit.per / limit.requests
    console.print(
        f"Server side: {_closed(state)}/{len(state.chats)} chats closed; "
        f"{stats['requests']} requests, [bold]{stats['rejected']} rejected with 429[/]; "
        f"busiest {limit.per:g} s window: {stats['max_in_window']} of {limit.requests} allowed.",
    )
    console.print(
        f"The SDK waited for its turn instead of being rejected: {seconds:.1f} s for "
        f"{stats['requests']} requests, which take {pace:.1f} s at the limit's own pace.",
    )
