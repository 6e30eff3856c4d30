"""Project tasks: `nox -s tests`, `lint`, `typing`, `bench`, `examples`, `demo`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests", "lint", "typing"]

PYPROJECT = nox.project.load_toml("pyproject.toml")


def install(session: nox.Session, *groups: str) -> None:
    session.install("-e", ".[all]")
    for group in groups:
        session.install(*nox.project.dependency_groups(PYPROJECT, group))


def ensure_redis_server(session: nox.Session) -> None:
    """The Redis tests run real servers; install Debian's when they are missing.

    redis-server (which also runs sentinels: `redis-server --sentinel`) and redis-cli (which
    creates the test cluster), from the redis-tools package redis-server depends on.
    """
    if shutil.which("redis-server") and shutil.which("redis-cli"):
        return
    if os.name == "posix" and os.geteuid() == 0 and shutil.which("apt-get"):
        session.log("redis-server is missing: installing Debian's redis-server")
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        session.run("apt-get", "update", "-qq", external=True, env=env)
        session.run(
            "apt-get",
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "redis-server",
            "redis-tools",
            external=True,
            env=env,
        )
        return
    session.warn(
        "redis-server is not installed and cannot be installed from here "
        "(apt-get as root): the Redis tests will be skipped locally and fail in CI"
    )


#: Every Python the package supports; `nox -s tests` runs on each (.ci/run puts pyenv's
#: interpreters on PATH so that nox finds them).
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
#: The oldest and the newest run the whole suite. The ones between skip the multi-process
#: Redis fleet tests (real servers, a Cluster and Sentinel: most of the suite's time), so
#: that CI stays well under 20 minutes; they run everything else.
FULL_SUITE_PYTHONS = ("3.10", "3.13")
MIDDLE_PYTHONS_SKIP = ("-m", "not redis")
#: pytest's exit code when no test was selected: fine for a `-k` subset, not for the suite.
NO_TESTS_COLLECTED = 5


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The suite, on asyncio and trio, with a real emulator and real Redis servers.

    3.10 and 3.13 run all of it; 3.11 and 3.12 all but the Redis tests. With arguments
    (`nox -s tests -- -k cli`) only that subset runs: selecting nothing is not an error
    then, and coverage is not enforced on a subset.
    """
    install(session, "tests")
    subset = list(session.posargs)
    if not subset and session.python not in FULL_SUITE_PYTHONS:
        subset = list(MIDDLE_PYTHONS_SKIP)
    if session.python in FULL_SUITE_PYTHONS or session.posargs:
        ensure_redis_server(session)
    codes = [0, NO_TESTS_COLLECTED] if subset else [0]
    session.run("coverage", "run", "-m", "pytest", *subset, success_codes=codes)
    if not subset:
        session.run("coverage", "report", "--fail-under=85")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, lint and format."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typing(session: nox.Session) -> None:
    """mypy --strict over the package, the tests and the examples."""
    install(session, "typing")
    session.run("mypy", "helpcrunch_async", "tests", "examples")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: they print figures; copy the latest into the README."""
    install(session, "bench")
    ensure_redis_server(session)
    names = session.posargs or sorted(path.stem for path in Path("benchmarks").glob("bench_*.py"))
    for name in names:
        session.run("python", f"benchmarks/{name}.py")


@nox.session
def examples(session: nox.Session) -> None:
    """Run every example against the emulator."""
    install(session, "tests")
    ensure_redis_server(session)
    session.run("pytest", "tests/test_examples.py", "-v", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """The main job: bulk-close chats on the embedded emulator."""
    session.install("-e", ".[cli]")
    session.run("helpcrunch", "demo")
