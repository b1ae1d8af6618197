"""EBYD companion utilities."""

__version__ = "0.2.0"  # recorded in every cached unit (pyproject.toml reads it from here)
# The companion's repository, named in one place: every notebook's Colab badge and install cell are written from it
# (python -m ebyd_utils.notebook_setup), notebook 02 fetches its reference log from it, the site links to it
REPOSITORY = "https://github.com/ebyd-companion/ebyd-companion"
