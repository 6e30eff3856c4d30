"""Every ```python block of README.md and docs/ runs, collected by Sybil.

The top-level ``conftest.py`` imports ``pytest_collect_file`` and ``_markdown_page`` from
here: a conftest's hooks and fixtures only reach files under its own folder, and README.md
sits above ``tests/``.

Each Markdown file is a page with a fresh emulator of its own (the seed ``helpcrunch
emulator`` serves: chats 5215700 to 5216199, agents 1 to 5, departments 1 and 2) and a
folder of its own. A block is one of four kinds, told apart by what it is:

- **A complete program** (a top-level ``asyncio.run``/``anyio.run``/``trio.run`` call, or an
  ``if __name__ == "__main__":`` block) runs as ``python file.py`` in the page's folder with
  the environment a newcomer has: this process's, less every ``HELPCRUNCH_*``, ``REDIS_URL``
  and ``PYTEST_*`` variable, plus ``HELPCRUNCH_API_KEY`` and ``HELPCRUNCH_BASE_URL`` of the
  page's emulator, and ``REDIS_URL`` of a private redis-server on a page that mentions
  ``REDIS_URL``. ``python title="close.py"`` names the file.
- **A test file** (``python title="test_app.py"``) runs as ``python -m pytest test_app.py``
  in the page's folder, with the same environment; a warning fails it, as in the suite.
- **A file of the reader's project** (any other ``python title="name.py"``, or a path such
  as ``"mysite/urls.py"``) is written to the page's folder for the programs, tests and
  fragments after it to import; it must compile.
- **A fragment** (anything else) runs in the page's namespace, as in ``python -m asyncio``:
  top-level ``await`` allowed, one event loop per page, names flowing to the blocks after it.
  Nothing is in the namespace before the page's first block: a page with fragments starts
  with a visible setup block (``client = hc.HelpCrunch()``). The two variables are set for
  the page, and every ``HelpCrunch`` left in the namespace is closed after it.

Skip a block with an HTML comment right above it, visible in the Markdown source only:
``<!-- skip: next "why" -->``, or ``<!-- skip: next if(missing("arq"), reason="needs arq")
-->`` to run it wherever ``arq`` is installed.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import inspect
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import attrs
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from sybil import Document, Example, Region, Sybil
from sybil.evaluators.python import pad
from sybil.evaluators.skip import Skipper
from sybil.parsers.markdown import CodeBlockParser, SkipParser

import helpcrunch_async as hc
from helpcrunch_async.emulator import EmulatorConfig, RunningEmulator, serve
from tests.redis_server import redis_server

ROOT = Path(__file__).resolve().parent.parent
#: Calls that make a block a program of its own.
RUNNERS = frozenset({"asyncio.run", "anyio.run", "trio.run"})
#: What a program may not inherit from the test process: it gets the page's values only.
PRIVATE_ENV = ("HELPCRUNCH_", "REDIS_URL", "PYTEST_")
#: Seconds a program or a test file may run (the suite's own per-test timeout is 120 s).
PROGRAM_TIMEOUT = 100
#: How a page's test files run: a warning is an error, as in the suite; pytest-asyncio (in
#: the suite's environment, maybe not in a reader's) is told the loop scope it warns about.
PYTEST_ARGS = (
    "-q",
    "-W",
    "error",
    "-p",
    "no:cacheprovider",
    "-o",
    "asyncio_default_fixture_loop_scope=function",
)
#: ``title="..."`` in a fence's info string.
TITLE = re.compile(r'title="([^"]+)"')


def is_program(source: str) -> bool:
    """A block with a top-level runner call or a ``__main__`` guard: a program of its own."""
    for node in ast.parse(source).body:
        call = node.value if isinstance(node, ast.Expr) else None
        if isinstance(call, ast.Call) and ast.unparse(call.func) in RUNNERS:
            return True
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            return True
    return False


def missing(module: str) -> bool:
    """For skip conditions: ``if(missing("arq"), reason="needs arq")``."""
    return importlib.util.find_spec(module) is None


@attrs.frozen
class Page:
    """What the blocks of one Markdown file share."""

    portal: BlockingPortal  # the page's event loop, in a thread of its own
    emulator: RunningEmulator  # a fresh one per page: no page sees another's changes
    folder: Path  # where the page's files and programs are written
    redis_url: str | None = None  # for a page where Redis is the point
    no_redis: str | None = None  # why a Redis page has no redis-server

    @property
    def env(self) -> dict[str, str]:
        """The variables the page's code finds, as a newcomer would set them."""
        env = {
            "HELPCRUNCH_API_KEY": self.emulator.api_key,
            "HELPCRUNCH_BASE_URL": self.emulator.base_url,
        }
        if self.redis_url is not None:
            env["REDIS_URL"] = self.redis_url
        return env

    def write(self, example: Example, name: str) -> Path:
        """Write the block to ``name`` in the page's folder, padded so that a traceback's
        line numbers are the Markdown file's."""
        path = self.folder.joinpath(*PurePosixPath(name).parts)
        if not path.resolve().is_relative_to(self.folder.resolve()):
            raise ValueError(f"{example.path}:{example.line}: title {name!r} leaves the page")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(pad(example.parsed, example.line + example.parsed.line_offset))
        return path

    def run(self, example: Example, *args: str) -> None:
        """Run ``python *args`` in the page's folder with the page's environment only."""
        __tracebackhide__ = True
        env = {k: v for k, v in os.environ.items() if not k.startswith(PRIVATE_ENV)}
        done = subprocess.run(  # noqa: S603 - the docs' own code
            [sys.executable, *args],
            env=env | self.env,
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=PROGRAM_TIMEOUT,
            check=False,
        )
        sys.stdout.write(done.stdout)  # shown by pytest for a failure, or with -s
        if done.returncode != 0:
            raise AssertionError(
                f"{example.path}:{example.line}: `python {' '.join(args)}` exited with "
                f"{done.returncode}\n{done.stdout}\n{done.stderr}"
            )


#: The one name the harness puts in a page's namespace: Sybil re-inserts the requested
#: fixtures before every block, so a block that rebound a fixture's name would see it reset.
PAGE = "_markdown_page"


def run_fragment(example: Example, page: Page) -> None:
    """Run the block in the page's namespace, on the page's event loop."""
    __tracebackhide__ = True
    source = pad(example.parsed, example.line + example.parsed.line_offset)
    code = compile(
        source, example.path, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
    )

    async def run() -> None:
        result = eval(code, example.namespace)  # noqa: S307 - the docs' own code
        if inspect.iscoroutine(result):  # the block had a top-level await
            await result

    try:
        page.portal.call(run)
    finally:
        example.namespace.pop("__builtins__", None)


def evaluate(example: Example) -> None:
    """Run one block as what it is (see the module docstring)."""
    __tracebackhide__ = True
    page: Page = example.namespace[PAGE]
    if page.no_redis is not None and needs_redis(example.parsed):
        if os.environ.get("CI"):
            pytest.fail(page.no_redis)
        pytest.skip(page.no_redis)
    title: str | None = example.region.lexemes.get("title")
    if title is not None and PurePosixPath(title).name.startswith("test_"):
        path = page.write(example, title)
        page.run(example, "-m", "pytest", *PYTEST_ARGS, str(path))
    elif is_program(example.parsed):
        stem = Path(example.path).stem
        path = page.write(example, title or f"{stem}_line{example.line}.py")
        page.run(example, str(path))
    elif title is not None:
        path = page.write(example, title)
        compile(path.read_text(), str(path), "exec", dont_inherit=True)
    else:
        run_fragment(example, page)


@pytest.fixture(scope="module")
def _markdown_page(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Page]:
    """Set up one Markdown file (a module-scoped fixture is one per file under Sybil)."""
    with (
        start_blocking_portal("asyncio") as portal,
        portal.wrap_async_context_manager(serve(EmulatorConfig())) as emulator,
        pytest.MonkeyPatch.context() as patch,
        contextlib.ExitStack() as stack,
    ):
        redis_url = no_redis = None
        if needs_redis(request.node.path.read_text(encoding="utf-8")):
            try:
                redis_url = stack.enter_context(redis_server())
            except FileNotFoundError as exc:  # no redis-server: `nox -s tests` installs it
                no_redis = str(exc)
        folder = tmp_path_factory.mktemp("page")
        page = Page(portal, emulator, folder, redis_url=redis_url, no_redis=no_redis)
        for name in [k for k in os.environ if k.startswith(PRIVATE_ENV)]:
            patch.delenv(name)
        for name, value in page.env.items():
            patch.setenv(name, value)
        patch.syspath_prepend(str(page.folder))  # fragments import the page's files
        # For a module-scoped fixture, request.node is Sybil's node of the Markdown file.
        documents: list[Document] = request.node.documents
        try:
            yield page
        finally:
            for document in documents:
                for value in list(document.namespace.values()):
                    if isinstance(value, hc.HelpCrunch):
                        with contextlib.suppress(TypeError):  # a with_options() view
                            portal.call(value.aclose)  # closing twice is harmless
            forget_modules(page.folder)


def needs_redis(text: str) -> bool:
    """A page or a block where Redis is the point: it mentions ``REDIS_URL``."""
    return "REDIS_URL" in text


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the blocks that need Redis ``redis``, as the suite's own Redis tests are, so that
    ``-m "not redis"`` leaves them out too; with the skip directive right above such a block,
    which would otherwise stay pending and clash with the next one."""
    previous: pytest.Item | None = None
    for item in items:
        example = getattr(item, "example", None)
        if isinstance(example, Example) and needs_redis(str(example.parsed)):
            item.add_marker(pytest.mark.redis)
            above = getattr(previous, "example", None)
            if isinstance(above, Example) and isinstance(above.region.evaluator, Skipper):
                assert previous is not None
                previous.add_marker(pytest.mark.redis)
        previous = item


def forget_modules(folder: Path) -> None:
    """Unload the modules a page's fragments imported from its folder: another page may
    have files of the same name."""
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file is not None and Path(file).resolve().is_relative_to(folder.resolve()):
            del sys.modules[name]
    importlib.invalidate_caches()


def setup(namespace: dict[str, Any]) -> None:
    namespace["missing"] = missing


class PythonBlocks(CodeBlockParser):
    """```python blocks, with attributes after the language (```python title="close.py").

    Sybil's own parsers take a fence only when its info string is exactly the language: a
    block with a title would silently not run.
    """

    def __init__(self) -> None:
        super().__init__(language="python", evaluator=evaluate)

    def __call__(self, document: Document) -> Iterator[Region]:
        for region in self.lexers(document):
            info = region.lexemes["arguments"]
            words = info.split()
            if words and words[0] == "python":
                title = TITLE.search(info)
                if title is not None:
                    region.lexemes["title"] = title.group(1)
                region.parsed = region.lexemes["source"]
                region.evaluator = evaluate
                yield region


pytest_collect_file = Sybil(
    parsers=[PythonBlocks(), SkipParser()],
    path=str(ROOT),
    # Path.match: "**" is not recursive before Python 3.13, and patterns match from the
    # right, so "README.md" would be any README.md pytest walks into: testpaths keeps it to
    # the top one and docs/.
    patterns=["README.md", "docs/*.md", "docs/**/*.md"],
    setup=setup,
    fixtures=[PAGE],
    name="markdown",
).pytest()
