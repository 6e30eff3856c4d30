"""A hard deadline for every test, behind pytest-timeout's: name the test, dump every stack, stop.

pytest-timeout (signal method, the default on POSIX) arms one SIGALRM for a test's setup, call
and teardown together and, when it fires, raises ``Failed`` once, in the main thread, wherever
that thread is. That does not end a test whose

- hang is in the test body or an async fixture under anyio's trio runner: the exception leaves
  the host loop's ``queue.get()``, but the trio guest run is still parked in the test's
  ``await``, and the runner then waits for it with no timer left;
- cleanup waits again after the one exception (``Popen.__exit__`` waiting for a child, the
  interpreter joining a worker thread that never returns at exit);
- code is blocked in C that never returns to the interpreter (the handler never runs).

pytest-timeout also cancels its timer as soon as a test has failed (in its
``pytest_exception_interact`` hook, for ``--pdb``), so the teardown of a failed test has no
deadline at all.

This plugin gives each test ``timeout + grace`` seconds in all. Past that a watchdog thread
writes which test and which phase, the stack of every thread, kills this process's children
(servers, workers, CLI runs: nothing may keep CI's pipes open) and ends the process with exit
code 1 (``os._exit``: no cleanup can hang again). If that thread cannot run (C code holding
the GIL), faulthandler's own C thread does the same ``grace`` seconds later. When the
interpreter shuts down it gets ``grace`` seconds to exit. The run then fails within
``timeout + grace`` of the hanging test's start, naming it, instead of blocking CI.

``grace`` is the ``hard_timeout_grace`` ini option (30 s). Off when pytest-timeout's
``timeout`` is 0 or unset, and once a debugger is entered.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import threading
import time
from collections.abc import Generator
from typing import IO

import pytest

#: Seconds after pytest-timeout's deadline at which a test still running ends the process.
DEFAULT_GRACE = "30"


def pytest_addoption(parser: pytest.Parser) -> None:
    """The ``hard_timeout_grace`` ini option."""
    parser.addini(
        "hard_timeout_grace",
        "seconds after pytest-timeout's deadline at which a hung test ends the run",
        default=DEFAULT_GRACE,
    )


class HardDeadline:
    """One timer per test: past ``timeout + grace`` the process ends, loudly."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.grace = float(config.getini("hard_timeout_grace"))
        self.out = _original_stderr(config)
        self.phase = "setup"
        self.started = 0.0
        self.timer: threading.Timer | None = None

    def _seconds(self, item: pytest.Item) -> float:
        """pytest-timeout's deadline for ``item``: its ``timeout`` marker, or the ini/CLI value."""
        marker = item.get_closest_marker("timeout")
        if marker is not None and (marker.args or "timeout" in marker.kwargs):
            value = marker.args[0] if marker.args else marker.kwargs["timeout"]
            return float(value or 0)
        return float(getattr(self.config, "_env_timeout", None) or 0)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, object, object]:
        """Arm the deadline for the whole of ``item``: setup, call and teardown."""
        timeout = self._seconds(item)
        if timeout <= 0:
            return (yield)
        limit = timeout + self.grace
        self.phase, self.started = "setup", time.monotonic()
        self.timer = threading.Timer(limit, self._expire, (item.nodeid, limit))
        self.timer.daemon = True
        self.timer.name = f"hard deadline {item.nodeid}"
        self.timer.start()
        # The last resort, in C: it runs even while some C code holds the GIL for ever.
        faulthandler.dump_traceback_later(limit + self.grace, exit=True, file=self.out)
        try:
            return (yield)
        finally:
            self._cancel()

    def pytest_enter_pdb(self) -> None:
        """A debugging session is no hang: no deadline for the rest of this test."""
        self._cancel()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self) -> Generator[None, object, object]:
        """Note the phase, for the message."""
        self.phase = "call"
        return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self) -> Generator[None, object, object]:
        """Note the phase, for the message."""
        self.phase = "teardown"
        return (yield)

    def _cancel(self) -> None:
        faulthandler.cancel_dump_traceback_later()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _expire(self, nodeid: str, limit: float) -> None:
        from pytest_timeout import is_debugging  # type: ignore[import-untyped]  # noqa: PLC0415

        if is_debugging():  # a breakpoint is not a hang
            return
        try:
            elapsed = time.monotonic() - self.started
            self.out.write(
                f"\n{' HARD TIMEOUT ':!^88}\n{nodeid}: still in {self.phase} after "
                f"{elapsed:.0f} s (deadline {limit:g} s = timeout + {self.grace:g} s grace); "
                "pytest-timeout could not stop it. Stacks of every thread:\n"
            )
            self.out.flush()
            faulthandler.dump_traceback(file=self.out, all_threads=True)
            killed = _kill_children()
            self.out.write(
                f"killed {killed} child process(es); ending the test process (exit 1)\n"
                f"{' HARD TIMEOUT ':!^88}\n"
            )
            self.out.flush()
        finally:
            os._exit(1)

    def arm_exit(self) -> None:
        """Give the interpreter, shutting down, ``grace`` seconds to exit; then end it."""

        def expire() -> None:
            self.out.write(
                f"\n{' HARD TIMEOUT ':!^88}\nthe test process did not exit within "
                f"{self.grace:g} s of its end (a non-daemon thread is stuck). Stacks:\n"
            )
            self.out.flush()
            faulthandler.dump_traceback(file=self.out, all_threads=True)
            _kill_children()
            self.out.flush()
            os._exit(1)

        faulthandler.dump_traceback_later(2 * self.grace, exit=True, file=self.out)
        timer = threading.Timer(self.grace, expire)
        timer.daemon = True  # it runs while the interpreter joins the non-daemon threads
        # 3.12+ starts no thread at shutdown: faulthandler's watchdog (in C) still ends it.
        with contextlib.suppress(RuntimeError):
            timer.start()


def _original_stderr(config: pytest.Config) -> IO[str]:
    """A file on the real stderr, past pytest's capture (whose buffer ``os._exit`` loses)."""
    capman = config.pluginmanager.getplugin("capturemanager")
    capturing = getattr(capman, "_global_capturing", None)
    saved = getattr(getattr(capturing, "err", None), "targetfd_save", None)
    return os.fdopen(os.dup(saved if isinstance(saved, int) else 2), "w", buffering=1)


def _kill_children() -> int:
    """Kill every descendant process (servers, workers, CLI runs); how many there were."""
    import psutil  # noqa: PLC0415 - a test dependency, needed only here

    children = psutil.Process().children(recursive=True)
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.kill()
    psutil.wait_procs(children, timeout=5)
    return len(children)


def pytest_configure(config: pytest.Config) -> None:
    """Register the deadline when pytest-timeout is there to be backed up."""
    if config.pluginmanager.has_plugin("timeout"):
        config.pluginmanager.register(HardDeadline(config), "hard-deadline")


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Bound the process's exit too (a stuck non-daemon thread would keep it alive).

    Armed when the interpreter starts shutting down, before it joins those threads; not here,
    since ``pytest.main`` may run inside a longer-lived process (mutmut does).
    """
    deadline = config.pluginmanager.get_plugin("hard-deadline")
    register = getattr(threading, "_register_atexit", None)  # runs before the joins
    if isinstance(deadline, HardDeadline) and register is not None:
        register(deadline.arm_exit)
