"""_limit."""
