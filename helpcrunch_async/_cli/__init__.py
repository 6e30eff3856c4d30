"""The ``helpcrunch`` command line (needs the ``cli`` extra)."""

from __future__ import annotations

import sys


def main() -> None:
    """Entry point of the ``helpcrunch`` command."""
    try:
        from ._commands import run_cli  # noqa: PLC0415 - optional dependencies
    except ImportError as exc:
        sys.stderr.write(
            f"The helpcrunch command needs the cli extra ({exc.name} is missing):\n"
            '    pip install "helpcrunch-async[cli]"\n'
        )
        sys.exit(2)
    run_cli()
