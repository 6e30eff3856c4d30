"""SIGINT, SIGTERM and a closed pipe as a clean stop: cancel the work, let it clean up, exit.

Why a signal receiver and not ``KeyboardInterrupt``: a ``KeyboardInterrupt`` lands wherever
the main thread happens to be, and on Python 3.10 asyncio turns it into a ``CancelledError``
traceback. A receiver turns the signal into an ordinary cancellation of one scope, so every
``finally`` and ``__aexit__`` (workers, journal, report, progress bar) runs as usual. SIGTERM
is what systemd, Kubernetes, ``timeout`` and ``kill`` send; it gets the same treatment.

A closed pipe (``helpcrunch chats list --ids | head -1``: ``head`` exits after one line) is
the third way to be told to stop. Python ignores SIGPIPE, so the next write raises
``BrokenPipeError``; the command stops as cleanly as for a signal, says nothing more (there
is nobody to read it) and exits 141, what a shell reports for ``cat`` or ``seq`` killed by
SIGPIPE: with ``set -o pipefail`` a script sees that the output was cut short, as with any
other tool, where 0 would claim the output was whole.
"""

from __future__ import annotations

import os
import signal
import sys
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio
import attrs

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from anyio.abc import TaskStatus

__all__ = [
    "EXIT_OUTPUT_CLOSED",
    "STOP_SIGNALS",
    "Interrupt",
    "exit_code_for",
    "silence_closed_output",
    "stop_on_signals",
]

#: The signals that stop a run cleanly.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: The exit code when the reader of the output went away: 128 + SIGPIPE (13), as a shell
#: reports for a tool killed by SIGPIPE (``signal.SIGPIPE`` does not exist on Windows).
EXIT_OUTPUT_CLOSED = 128 + 13


def exit_code_for(signum: int) -> int:
    """The shell's convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
    return 128 + signum


def silence_closed_output() -> None:
    """Point stdout and stderr at the null device once a reader has closed one of them.

    Python flushes both when it exits; a flush into the closed pipe would print "Exception
    ignored ... BrokenPipeError" and change the exit code to 120.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for stream in (sys.stdout, sys.stderr):
            try:
                os.dup2(devnull, stream.fileno())
            except (AttributeError, OSError, ValueError):
                continue  # not a file descriptor (click's test runner): nothing to flush there
    finally:
        os.close(devnull)


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
