"""_models."""
