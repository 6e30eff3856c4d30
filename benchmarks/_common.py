"""Helpers shared by the benchmarks: an emulator in a separate process, and printing."""

from __future__ import annotations

import contextlib
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import IO

API_KEY = "emulator-key"
#: Seconds the emulator may take to print its banner before the benchmark gives up.
STARTUP_DEADLINE = 30.0


def first_line(stream: IO[str], timeout: float = STARTUP_DEADLINE) -> str:
    """The first line of a pipe, or ``TimeoutError`` after ``timeout``: never a silent hang."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        raise TimeoutError(f"no line from the emulator within {timeout} s") from None


@contextlib.contextmanager
def emulator_process(*args: str) -> Iterator[str]:
    """Run `helpcrunch emulator` in its own process (so its CPU is not ours); yield its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "helpcrunch_async", "emulator", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield first_line(process.stdout).split()[3]  # listening once the banner is out
    finally:
        process.terminate()
        process.wait(timeout=10)


def heading(title: str) -> None:
    print(f"\n## {title}", flush=True)


def row(*cells: object) -> None:
    print("| " + " | ".join(str(c) for c in cells) + " |", flush=True)
