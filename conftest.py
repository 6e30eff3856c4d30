"""Collect the ```python blocks of README.md and docs/ (see tests/markdown_blocks.py)."""

from tests.markdown_blocks import (
    _markdown_page,
    pytest_collect_file,
    pytest_collection_modifyitems,
)

__all__ = ["_markdown_page", "pytest_collect_file", "pytest_collection_modifyitems"]
