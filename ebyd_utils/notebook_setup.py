"""What every notebook starts with, written from one place: its Colab badge (in the first markdown cell), its
install cell (the first code cell) and the kernel metadata ipykernel writes; and the README's Colab badges.

    python -m ebyd_utils.notebook_setup            # rewrite notebooks/*.ipynb and README.md where they differ
    python -m ebyd_utils.notebook_setup --check    # list the differences; exit 1 if any (the tests run this check)

Badges and install cells name `ebyd_utils.REPOSITORY`. The install cell installs the package only where it is
missing (Colab, a fresh environment): from the repository by default, or from EBYD_INSTALL_SOURCE, any pip URL --
`file:///path/to/ebyd_utils-0.2.0-py3-none-any.whl`, `file:///path/to/a/checkout` -- which the tests use to run it
offline. The kernel metadata is ipykernel's (`Python 3 (ipykernel)`, and the language_info its kernel reports on the
Python the results were made with), so that opening a notebook in JupyterLab does not mark it modified.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from . import REPOSITORY

BRANCH = "main"
EXTRAS = {"09_text": "text"}  # notebook stem -> the extra its install cell asks for
INSTALL_MARK = "# Installs the companion's package"  # the first line of every install cell
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
BADGE_URL = re.compile(r"https://colab\.research\.google\.com/github/[^/\s)]+/[^/\s)]+/blob/[^/\s)]+/notebooks/")
# what ipykernel's kernelspec (ipykernel.kernelspec.get_kernel_dict) and kernel (IPythonKernel.language_info) say;
# JupyterLab rewrites both when a kernel starts, and marks the notebook modified where they differ
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
LANGUAGE_INFO = {
    "codemirror_mode": {"name": "ipython", "version": 3},
    "file_extension": ".py",
    "mimetype": "text/x-python",
    "name": "python",
    "nbconvert_exporter": "python",
    "pygments_lexer": "ipython3",
    "version": "3.11.7",  # the Python of the committed results (results/executed); another Python reports its own
}


def colab_url(stem: str = "") -> str:
    """The notebook's page on Colab, which opens a GitHub repository's notebook by its path (no stem: the folder's)."""
    repo, name = REPOSITORY.split("github.com/", 1)[1], f"{stem}.ipynb" if stem else ""
    return f"https://colab.research.google.com/github/{repo}/blob/{BRANCH}/notebooks/{name}"


def badge(stem: str) -> str:
    return f"[![Open In Colab]({BADGE_IMAGE})]({colab_url(stem)})"


def install_cell(stem: str) -> str:
    """The notebook's first code cell: installs the package where it is missing (a local checkout has it)."""
    extra = f"[{EXTRAS[stem]}]" if stem in EXTRAS else ""
    return (
        f"{INSTALL_MARK} when it is missing (Colab); a local checkout has it already.\n"
        "# EBYD_INSTALL_SOURCE, a pip URL, overrides where from (file:///path/to/a.whl, a checkout).\n"
        "import importlib.util\n"
        "import os\n"
        "\n"
        'if importlib.util.find_spec("ebyd_utils") is None:\n'
        f'    install_source = os.environ.get("EBYD_INSTALL_SOURCE", "git+{REPOSITORY}")\n'
        f'    %pip install -q "ebyd-utils{extra} @ {{install_source}}"\n'
        "    importlib.invalidate_caches()   # so that this kernel finds the package it has just installed"
    )


def fix_notebook(nb, stem: str) -> list[str]:
    """Bring one notebook (an nbformat node) in line, in place; returns what was changed (empty: nothing)."""
    changes = []
    first_md = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    if first_md is None:
        raise ValueError(f"{stem}: no markdown cell to carry the Colab badge")
    lines = first_md.source.split("\n")
    at = next((i for i, line in enumerate(lines) if line.startswith("[![Open In Colab]")), None)
    if at is None:  # below the title, a blank line between
        lines[1:1] = ["", badge(stem)]
        changes.append("badge added")
    elif lines[at] != badge(stem):
        lines[at] = badge(stem)
        changes.append("badge")
    first_md.source = "\n".join(lines)

    first_code = next((c for c in nb.cells if c.cell_type == "code"), None)
    if first_code is None or not first_code.source.startswith(INSTALL_MARK):
        raise ValueError(f"{stem}: the first code cell is not the install cell ({INSTALL_MARK!r} ...)")
    if first_code.source != install_cell(stem):
        first_code.source = install_cell(stem)
        changes.append("install cell")

    for key, value in (("kernelspec", KERNELSPEC), ("language_info", LANGUAGE_INFO)):
        if nb.metadata.get(key) != value:
            nb.metadata[key] = value
            changes.append(key)
    return changes


def fix_readme(text: str) -> str:
    """Every Colab link of the README points at REPOSITORY's notebook of the same name."""
    return BADGE_URL.sub(colab_url(), text)


def sync(root: Path, write: bool) -> list[str]:
    """Check (write=False) or rewrite every notebook under root/notebooks and root/README.md; returns the
    differences found, one line each."""
    import nbformat

    found = []
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        changes = fix_notebook(nb, path.stem)
        if changes:
            found.append(f"{path.relative_to(root)}: {', '.join(changes)}")
            if write:
                nbformat.write(nb, path)
    readme = root / "README.md"
    if readme.exists():
        text = readme.read_text()
        if fix_readme(text) != text:
            found.append("README.md: Colab links")
            if write:
                readme.write_text(fix_readme(text))
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only list the differences (exit 1 if any)")
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1], help="the checkout")
    args = parser.parse_args(argv)
    found = sync(args.root, write=not args.check)
    for line in found:
        print(("differs: " if args.check else "rewrote: ") + line)
    if args.check and found:
        print(f"run `python -m ebyd_utils.notebook_setup` to write them from REPOSITORY = {REPOSITORY!r}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
