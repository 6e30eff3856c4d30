"""_bulk."""
