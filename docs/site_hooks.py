"""MkDocs hooks of the companion's site (mkdocs.yml, `make docs`): its pages laid out as the repository is, so
that the README's and the docs' relative links work on the site as they do on GitHub (only the README moves, to
index.md).

- index.md is README.md; docs/<page>.md is docs/<page>.md (docs/results.md, which `python -m ebyd_utils.report`
  writes, is a page saying so where the checkout has none yet);
- results/executed/<name>.ipynb, the executed quick notebooks, are rendered with their outputs by mkdocs-jupyter
  (a notebook with no executed copy is shown from notebooks/<name>.ipynb, without outputs, and says so in the
  navigation);
- figures/<name>.png are the committed figures.

A relative link to a repository file that is not on the site (a CSV, a module, a folder) is pointed at that file in
the repository (`ebyd_utils.REPOSITORY`); a link to nothing is left as it is, for `mkdocs build --strict` to report.
"""

from __future__ import annotations

import ast
import json
import os
import posixpath
import re
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

REPO = Path(__file__).resolve().parents[1]
RESULTS_STUB = (
    "# Results\n\nThis page is written by `python -m ebyd_utils.report` from the CSVs in `results/`, and this checkout "
    "has no copy of it yet. The notebooks' own tables are on their pages.\n"
)
LINK = re.compile(r"(!?\[[^\]]*\]\()([^)\s]+)(\s+\"[^\"]*\")?\)")


def repository() -> str:
    """`ebyd_utils.REPOSITORY`, read from this checkout's source (building the site needs no install of it)."""
    tree = ast.parse((REPO / "ebyd_utils" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "REPOSITORY":
            return node.value.value
    raise RuntimeError("ebyd_utils/__init__.py has no REPOSITORY")


def notebook_pages(repo: Path = REPO) -> dict[str, tuple[Path, bool]]:
    """name -> (the notebook the page shows, whether it is an executed copy), in name order: every executed copy
    (variants such as 09_text_agnews included), and every source notebook that has none."""
    executed = {p.stem: p for p in (repo / "results" / "executed").glob("*.ipynb")}
    pages = {stem: (path, True) for stem, path in executed.items()}
    for path in (repo / "notebooks").glob("*.ipynb"):
        if not any(stem == path.stem or stem.startswith(f"{path.stem}_") for stem in executed):
            pages[path.stem] = (path, False)
    return dict(sorted(pages.items()))


def _title(path: Path) -> str:
    """A notebook's first level-1 heading (its title), else its name."""
    for cell in json.loads(path.read_text())["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return path.stem


def _docs_pages(repo: Path) -> list[Path]:
    """docs/*.md, those the README names first in its order, then the others by name."""
    readme = (repo / "README.md").read_text()
    pages = sorted((repo / "docs").glob("*.md"))
    return sorted(pages, key=lambda p: (readme.find(f"docs/{p.name}") % (len(readme) + 1), p.name))


def _repo_file(config, path: Path) -> File:
    """A site file at the repository path of `path`, read from there."""
    return File(path.relative_to(REPO).as_posix(), str(REPO), config["site_dir"], config["use_directory_urls"])


@event_priority(100)  # before mkdocs-jupyter's on_files, which must see the notebooks added here
def on_files(files: Files, config) -> Files:
    docs_dir = os.path.abspath(config["docs_dir"])
    site = [f for f in files if not f.src_dir or os.path.abspath(f.src_dir) != docs_dir]  # the theme's files
    site.append(File.generated(config, "index.md", abs_src_path=str(REPO / "README.md")))
    docs = _docs_pages(REPO)
    site += [_repo_file(config, p) for p in docs]
    nav_docs = [f"docs/{p.name}" for p in docs]
    if not (REPO / "docs" / "results.md").exists():
        site.append(File.generated(config, "docs/results.md", content=RESULTS_STUB))
        nav_docs.insert(0, "docs/results.md")
    sources = sorted(p.stem for p in (REPO / "notebooks").glob("*.ipynb"))
    nav_notebooks = []
    for stem, (path, executed) in notebook_pages().items():
        site.append(_repo_file(config, path))
        variant = next((stem[len(s) + 1 :] for s in sources if stem.startswith(f"{s}_")), "")
        title = (
            _title(path) + (f" ({variant})" if variant else "") + ("" if executed else " (not executed: no outputs)")
        )
        nav_notebooks.append({title: path.relative_to(REPO).as_posix()})
    site += [_repo_file(config, p) for p in sorted((REPO / "figures").glob("*.png"))]
    config["nav"] = [{"Home": "index.md"}, {"Notebooks": nav_notebooks}, {"Docs": nav_docs}]
    return Files(site)


def on_page_markdown(markdown: str, page, config, files: Files) -> str:
    """Point relative links to repository files that are not on the site at the repository."""
    here = posixpath.dirname(page.file.src_uri)
    base = repository()

    def relink(match: re.Match) -> str:
        target = match.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:|^#|^/", target):  # a URL, an anchor, an absolute path: as they are
            return match.group(0)
        path, _, anchor = target.partition("#")
        resolved = posixpath.normpath(posixpath.join(here, path))
        if files.get_file_from_path(resolved) is not None or not (REPO / resolved).exists():
            return match.group(0)  # a page of the site, or nothing (MkDocs reports it)
        kind = "tree" if (REPO / resolved).is_dir() else "blob"
        url = f"{base}/{kind}/main/{resolved}" + (f"#{anchor}" if anchor else "")
        return f"{match.group(1)}{url}{match.group(3) or ''})"

    return LINK.sub(relink, markdown)
