"""Helpers shared by the benchmarks: an emulator in a separate process, and printing."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx

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
        banner = process.stdout.readline()
        url = banner.split()[3]
        for _ in range(500):  # until it answers
            try:
                httpx.get(url + "/chats/1", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.02)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def heading(title: str) -> None:
    print(f"\n## {title}", flush=True)


def row(*cells: object) -> None:
    print("| " + " | ".join(str(c) for c in cells) + " |", flush=True)
