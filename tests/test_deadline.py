"""tests/_deadline.py: a test that pytest-timeout cannot stop still ends the run, named."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Seconds the inner run may take before this test fails instead of hanging with it.
DEADLINE = 120

HANGS = {
    # anyio's trio runner: pytest-timeout's exception leaves the host loop, the test stays.
    "trio_body": """
        import anyio
        import pytest

        @pytest.mark.anyio
        @pytest.mark.parametrize("anyio_backend", ["trio"])
        async def test_hangs(anyio_backend):
            await anyio.Event().wait()
    """,
    # A failed test: pytest-timeout cancels its timer, and the teardown waits for ever.
    "teardown_after_failure": """
        import threading
        import pytest

        @pytest.fixture
        def stuck():
            yield
            threading.Event().wait()

        def test_hangs(stuck):
            assert 1 == 2
    """,
}


@pytest.mark.parametrize("case", sorted(HANGS))
def test_a_hang_pytest_timeout_cannot_stop_ends_the_run_naming_the_test(tmp_path, case):
    """timeout 1 s + grace 1 s: the inner run ends, failed, saying which test hung and where."""
    (tmp_path / "test_hang.py").write_text(textwrap.dedent(HANGS[case]))
    (tmp_path / "pytest.ini").write_text("[pytest]\ntimeout = 1\nhard_timeout_grace = 1\n")
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    inner = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests._deadline", "-p", "no:randomly", "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        env=env,
        check=False,
    )

    assert 1 == inner.returncode, inner.stdout + inner.stderr
    assert "HARD TIMEOUT" in inner.stderr
    phase = "call" if case == "trio_body" else "teardown"
    assert (
        f"test_hang.py::test_hangs{'[trio]' if case == 'trio_body' else ''}: still in {phase}"
        in inner.stderr
    )
