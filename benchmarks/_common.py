"""Helpers shared by the benchmarks: an emulator in a separate process, and printing."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator

API_KEY = "emulator-key"


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
        yield process.stdout.readline().split()[3]  # listening once the banner is out
    finally:
        process.terminate()
        process.wait(timeout=10)


def heading(title: str) -> None:
    print(f"\n## {title}", flush=True)


def row(*cells: object) -> None:
    print("| " + " | ".join(str(c) for c in cells) + " |", flush=True)
