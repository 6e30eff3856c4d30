"""SIGINT and SIGTERM as a clean stop: cancel the work, let it clean up, report the signal.

Why a signal receiver and not ``KeyboardInterrupt``: a ``KeyboardInterrupt`` lands wherever
the main thread happens to be, and on Python 3.10 asyncio turns it into a ``CancelledError``
traceback. A receiver turns the signal into an ordinary cancellation of one scope, so every
``finally`` and ``__aexit__`` (workers, journal, report, progress bar) runs as usual. SIGTERM
is what systemd, Kubernetes, ``timeout`` and ``kill`` send; it gets the same treatment.
"""

from __future__ import annotations

import signal
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio
import attrs

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from anyio.abc import TaskStatus

__all__ = ["STOP_SIGNALS", "Interrupt", "exit_code_for", "stop_on_signals"]

#: The signals that stop a run cleanly.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def exit_code_for(signum: int) -> int:
    """The shell's convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
    return 128 + signum


@attrs.define
class Interrupt:
    """Which signal stopped the block, if any (``signum``), and the scope it cancels.

    With ``on_signal`` set, the first signal calls it instead (a gentler stop, such as
    letting a bulk stream hand over its completed outcomes); a second one cancels anyway.
    """

    scope: anyio.CancelScope = attrs.field(factory=anyio.CancelScope)
    signum: int | None = None
    on_signal: Callable[[], None] | None = None

    @property
    def name(self) -> str:
        """``"SIGINT"`` or ``"SIGTERM"``."""
        return "" if self.signum is None else signal.Signals(self.signum).name


async def _watch(interrupt: Interrupt, *, task_status: TaskStatus[None]) -> None:
    with anyio.open_signal_receiver(*STOP_SIGNALS) as signals:
        task_status.started()
        # Keep receiving after the first one: a second Ctrl-C during the cleanup must not
        # become a KeyboardInterrupt in the middle of closing the journal.
        async for signum in signals:
            if interrupt.signum is None and interrupt.on_signal is not None:
                interrupt.signum = signum
                interrupt.on_signal()
            else:
                interrupt.signum = interrupt.signum or signum
                interrupt.scope.cancel()


@asynccontextmanager
async def stop_on_signals() -> AsyncIterator[Interrupt]:
    """Run the block until it ends or SIGINT/SIGTERM arrives; then ``interrupt.signum`` is set.

    The block is cancelled, not killed: its cleanup runs, and the signal is not re-raised.
    """
    interrupt = Interrupt()
    async with anyio.create_task_group() as tg:
        await tg.start(_watch, interrupt)
        try:
            with interrupt.scope:
                yield interrupt
        finally:
            tg.cancel_scope.cancel()
