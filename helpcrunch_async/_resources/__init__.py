"""_resources."""
