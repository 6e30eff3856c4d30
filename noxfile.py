"""Project tasks: `nox -s tests`, `lint`, `typing`, `docs`, `mutants`, `bench`, `examples`."""

from __future__ import annotations

import ast
import difflib
import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import nox
from nox.logger import logger

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests", "lint", "typing"]
#: A Python that is not installed is skipped, and said so, wherever nox runs (nox's own
#: default errors whenever a CI variable is set, even CI=false). `.ci/run` passes
#: --error-on-missing-interpreters: CI requires every supported Python.
nox.options.error_on_missing_interpreters = False

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


#: Every Python the package supports; `nox -s tests` runs on each it finds.
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]


def _version_key(path: Path) -> tuple[int, ...]:
    """``~/.pyenv/versions/3.10.14/bin`` -> ``(3, 10, 14)``; a pre-release sorts first."""
    parts = path.parent.name.split(".")
    return tuple(int(part) if part.isdigit() else -1 for part in parts)


def _runs(version: str) -> bool:
    """Whether ``python3.X`` on PATH starts: a pyenv shim for a version not selected fails."""
    found = shutil.which(f"python{version}")
    if found is None:
        return False
    try:
        started = subprocess.run([found, "-c", ""], capture_output=True, check=False)
    except OSError:
        return False
    return started.returncode == 0


def find_pythons() -> list[str]:
    """Put pyenv's interpreters first on PATH, and return the supported versions missing.

    nox looks for ``python3.X`` on PATH; a machine with pyenv (this project's CI and dev
    machines) has them under ``$(pyenv root)/versions/3.X.Y/bin``, and on PATH only shims
    that fail for a version not selected with ``pyenv global``. The newest patch release of
    each supported version is used.
    """
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    found: dict[str, Path] = {}
    for binary in sorted(root.glob("versions/3.*/bin"), key=_version_key):
        for version in PYTHONS:
            if binary.parent.name.startswith(version + ".") and (binary / "python3").exists():
                found[version] = binary
    os.environ["PATH"] = os.pathsep.join([*map(str, found.values()), os.environ.get("PATH", "")])
    return [version for version in PYTHONS if not _runs(version)]


MISSING_PYTHONS = find_pythons()
FOUND_PYTHONS = [version for version in PYTHONS if version not in MISSING_PYTHONS]
#: The newest Python found runs the whole suite. The others skip only the fleets of
#: processes on Redis (`@pytest.mark.fleet`: a fleet's real time each, a third of the
#: suite's time), so that CI, every Python included, stays well under 20 minutes; they run
#: everything else, Redis included. `nox -s tests-3.10 -- -m fleet` runs them there.
FLEET_PYTHON = FOUND_PYTHONS[-1] if FOUND_PYTHONS else PYTHONS[-1]
NOT_FLEETS = ("-m", "not fleet")
if MISSING_PYTHONS:
    logger.warning(
        "Python %s not found (on PATH or under pyenv): `nox -s tests` skips %s here and "
        "runs the whole suite on %s; CI (.ci/run) requires all of %s",
        ", ".join(MISSING_PYTHONS),
        "it" if len(MISSING_PYTHONS) == 1 else "them",
        FLEET_PYTHON,
        ", ".join(PYTHONS),
    )
#: pytest's exit code when no test was selected: fine for a `-k` subset, not for the suite.
NO_TESTS_COLLECTED = 5


#: Coverage is measured once, on the fastest interpreter: the suite is the same on each.
COVERAGE_PYTHON = "3.11" if "3.11" in FOUND_PYTHONS or not FOUND_PYTHONS else FOUND_PYTHONS[-1]
#: pytest-xdist workers: two per core, at most 8 (each starts its own emulators and Redis
#: servers). Most tests wait on sockets, subprocesses and rate limits rather than the CPU,
#: and every test holds under that load (the suite passes beside a second copy of itself).
#: A file's tests stay on one worker: a docs page shares its files and emulator between
#: blocks, a module its servers.
WORKERS = ("-n", str(min(2 * (os.cpu_count() or 1), 8)), "--dist", "loadfile")


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The suite, on asyncio and trio, with a real emulator and real Redis servers.

    The newest Python runs all of it, the others all but the fleets of processes (see
    FLEET_PYTHON). Coverage is measured on 3.11. With arguments (`nox -s tests -- -k cli`)
    only that subset runs: selecting nothing is not an error then, and coverage is not
    measured on a subset.
    """
    install(session, "tests")
    subset = list(session.posargs)
    if not subset and session.python != FLEET_PYTHON:
        subset = list(NOT_FLEETS)
    ensure_redis_server(session)
    codes = [0, NO_TESTS_COLLECTED] if session.posargs else [0]
    if session.python != COVERAGE_PYTHON or session.posargs:
        session.run("pytest", *WORKERS, *subset, success_codes=codes)
        return
    session.run("coverage", "erase")
    session.run("coverage", "run", "-m", "pytest", *WORKERS, *subset)
    session.run("coverage", "combine", "--quiet")
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


@nox.session(python="3.13")
def docs(session: nox.Session) -> None:
    """The docs site, into site/: every warning (a broken link, a missing reference) is an error.

    mkdocstrings reads the package's source; the package is installed for the CLI reference,
    which mkdocs-click generates from the click commands. Nothing is fetched while building
    (no inventories, no social or privacy plugin). `nox -s docs -- serve` serves it instead.
    """
    session.install("-e", ".[cli]")
    session.install(*nox.project.dependency_groups(PYPROJECT, "docs"))
    # Material's notice about MkDocs 2 is no warning of ours (and no failure of --strict).
    env = {"NO_MKDOCS_2_WARNING": "1"}
    if session.posargs[:1] == ["serve"]:
        session.run("mkdocs", "serve", *session.posargs[1:], env=env)
    else:
        session.run("mkdocs", "build", "--strict", *session.posargs, env=env)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: they print figures; copy the latest, dated, into docs/benchmarks.md."""
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


# --- mutation testing ----------------------------------------------------------------------

MUTMUT = "mutmut>=3.8,<4"
#: `nox -s mutants` fails when the score of any core module falls below this (percent).
MUTATION_FAIL_UNDER = 90.0
#: Surviving mutants that no test can kill, each with the reason (see the README).
EQUIVALENT_MUTANTS = Path("tests/equivalent_mutants.toml")
#: mutmut's exit codes per mutant (mutmut/stats.py): killed by a failing test, or by a hang.
_KILLED = {1, 3}
_TIMEOUT = {24, -24, 36, 152, 255}


@nox.session
def mutants(session: nox.Session) -> None:
    """Mutation testing of the core modules (mutmut) against their fast tests; score per module.

    `nox -s mutants` starts afresh; `nox -s mutants -- --continue` goes on with an
    interrupted run (only the mutants not yet checked); `nox -s mutants --
    "helpcrunch_async._limit*"` reruns the named mutants only, keeping the other results.
    """
    install(session, "tests")
    session.install(MUTMUT)
    names = [arg for arg in session.posargs if arg != "--continue"]
    if not session.posargs:
        # mutmut keeps results per function between runs; a full run must not reuse them.
        shutil.rmtree("mutants", ignore_errors=True)
    else:
        refresh_unmutated(Path("helpcrunch_async"), Path("mutants"))
    session.run("mutmut", "run", "--max-children", str(os.cpu_count() or 2), *names)
    lines, scores = mutation_report(Path("mutants"), EQUIVALENT_MUTANTS)
    print("\n".join(lines))
    low = [f"{module} {s:.1f} %" for module, s in scores.items() if s < MUTATION_FAIL_UNDER]
    if low:
        session.error(f"mutation score below {MUTATION_FAIL_UNDER:g} %: {', '.join(low)}")


def refresh_unmutated(package: Path, root: Path) -> None:
    """Bring ``root``'s copy of the package's unmutated files up to date.

    mutmut regenerates a mutated module when its source changes and copies the other
    Python modules on every run, but copies a non-Python file (the Lua scripts) once only
    and never removes a file whose source was deleted: a rerun would test new Python
    against the old Lua. It keeps the verdicts it already has (it warns that a non-Python
    file changed): rerun by name what the change could affect.
    """
    mutated = {
        Path(name)
        for name in nox.project.load_toml("pyproject.toml")["tool"]["mutmut"]["only_mutate"]
    }
    for source in package.rglob("*"):
        if source.is_dir() or "__pycache__" in source.parts or source in mutated:
            continue
        copy = root / source
        if not copy.exists() or copy.read_bytes() != source.read_bytes():
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy)
    for copy in (root / package).rglob("*"):
        source = copy.relative_to(root)
        stale = copy.suffix not in (".meta", ".spans", ".pyc") and "__pycache__" not in copy.parts
        if stale and copy.is_file() and not source.exists():
            copy.unlink()  # its source was deleted


def mutation_report(root: Path, equivalents_file: Path) -> tuple[list[str], dict[str, float]]:
    """The per-module table, every survivor with its diff, and the score of each module.

    score = (killed + timed out) / (mutants - explained equivalents). A mutant no test
    runs counts as a survivor. Equivalents are matched on their diff, not on mutmut's
    numbering, so a listed one comes back as a survivor as soon as its line changes.
    """
    listed = nox.project.load_toml(equivalents_file).get("equivalent", [])
    known = {(e["function"], e["from"].strip(), e["to"].strip()) for e in listed}
    used: set[tuple[str, str, str]] = set()
    rows: list[tuple[str, dict[str, int]]] = []
    survivors: list[str] = []
    for meta in sorted(root.glob("**/*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if codes:
            # The path inside the package ("_send._sender"): stems repeat across subpackages.
            module = _module_name(meta, root)
            diffs = _mutant_diffs(meta.with_suffix(""))
            counts = dict.fromkeys(_COLUMNS, 0)
            for key, code in codes.items():
                function, before, after = diffs[key.rpartition(".")[2]]
                entry = (f"{module}.{function}", before, after)
                verdict = _verdict(code, entry in known)
                counts["mutants"] += 1
                counts[verdict] += 1
                if verdict == "equivalent":
                    used.add(entry)
                elif verdict == "survived":
                    status = _STATUS.get(code, f"exit code {code}")
                    survivors.append(
                        f"  {key} ({status})\n{_sign('-', before)}\n{_sign('+', after)}"
                    )
            rows.append((module, counts))
    rows.append(("total", {c: sum(counts[c] for _, counts in rows) for c in _COLUMNS}))
    width = max(len(module) for module, _ in rows)
    lines = [" ".join([f"{'module':<{width}}", *(f"{c:>10}" for c in (*_COLUMNS, "score"))])]
    for module, counts in rows:
        cells = (*counts.values(), f"{_score(counts):.1f}%")
        lines.append(" ".join([f"{module:<{width}}", *(f"{v:>10}" for v in cells)]))
    if survivors:
        lines += ["", "surviving mutants:", *survivors]
    stale = [f"  {f}: {b!r} -> {a!r}" for f, b, a in sorted(known - used)]
    if stale:
        lines += ["", "listed as equivalent but not found among the survivors:", *stale]
    return lines, {module: _score(counts) for module, counts in rows}


_STATUS = {0: "survived", 5: "no tests", 33: "no tests", None: "not checked"}
_COLUMNS = ("mutants", "killed", "timeout", "equivalent", "survived")


def _module_name(meta: Path, root: Path) -> str:
    """``mutants/helpcrunch_async/_send/_sender.py.meta`` -> ``_send._sender``."""
    parts = meta.relative_to(root).with_name(meta.name.removesuffix(".py.meta")).parts
    return ".".join(parts[1:] if len(parts) > 1 else parts)


def _verdict(code: int | None, listed: bool) -> str:
    if code in _KILLED:
        return "killed"
    if code in _TIMEOUT:
        return "timeout"
    return "equivalent" if listed else "survived"


def _score(counts: dict[str, int]) -> float:
    relevant = counts["mutants"] - counts["equivalent"]
    return 100.0 * (counts["killed"] + counts["timeout"]) / relevant if relevant else 100.0


def _sign(sign: str, text: str) -> str:
    return "\n".join(f"      {sign} {line}" for line in text.splitlines())


def _mutant_diffs(mutated: Path) -> dict[str, tuple[str, str, str]]:
    """For each mutant in mutmut's copy of a module: (qualname, lines removed, lines added)."""
    source = mutated.read_text(encoding="utf-8")
    lines = source.splitlines()
    # Whole lines by line numbers: ast.get_source_segment re-splits the file on each call.
    bodies = {
        node.name: textwrap.dedent("\n".join(lines[node.lineno - 1 : node.end_lineno]))
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and "__mutmut_" in node.name
    }
    diffs = {}
    for name, body in bodies.items():
        base, _, number = name.rpartition("__mutmut_")
        if not base or not number.isdigit():
            continue
        original = bodies[f"{base}__mutmut_orig"].splitlines()
        mutant = body.replace(name, f"{base}__mutmut_orig", 1).splitlines()
        changed = list(difflib.unified_diff(original, mutant, lineterm="", n=0))[2:]
        # x_name (a function) or xǁClassǁname (a method) -> name / Class.name
        qualname = base[2:] if base.startswith("x_") else base[1:].strip("ǁ").replace("ǁ", ".")
        lines = [
            line.replace(f"{base}__mutmut_orig", qualname.rpartition(".")[2]) for line in changed
        ]
        before = "\n".join(line[1:].strip() for line in lines if line.startswith("-"))
        after = "\n".join(line[1:].strip() for line in lines if line.startswith("+"))
        diffs[name] = (qualname, before, after)
    return diffs
