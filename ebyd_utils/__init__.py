"""EBYD companion utilities."""

__version__ = "0.2.0"  # recorded in every cached unit (pyproject.toml reads it from here)
