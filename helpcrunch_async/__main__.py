"""``python -m helpcrunch_async``: the ``helpcrunch`` command."""

from ._cli import main

main()
