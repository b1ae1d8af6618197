"""EBYD companion utilities."""
