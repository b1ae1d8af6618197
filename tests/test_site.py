"""make docs: the site builds offline (MkDocs + mkdocs-jupyter, mkdocs.yml and docs/site_hooks.py) with the README as
its home page, every docs page and every executed quick notebook rendered with its outputs, and no internal link
of it (between pages, to figures, to the theme's files) leads nowhere."""

import os
import posixpath
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    pytest.importorskip("mkdocs_jupyter", reason="the site needs the docs extra (pip install -e '.[docs]')")
    out = tmp_path_factory.mktemp("site")
    before = _checkout_state()
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert _checkout_state() == before, "building the site wrote into the checkout"
    return out


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.links.append(value)


def _checkout_state() -> str:
    done = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else ""


def test_the_site_holds_the_readme_every_docs_page_and_every_executed_notebook(site):
    home = (site / "index.html").read_text()
    assert "Expose Before You Defend" in home and "Two commands" in home  # the README, as the home page
    for page in sorted((REPO / "docs").glob("*.md")):
        assert (site / "docs" / f"{page.stem}.html").exists(), f"docs/{page.name} is not on the site"
    assert (site / "docs" / "results.html").exists()  # linked from the README, even before the report wrote it
    executed = sorted((REPO / "results" / "executed").glob("*.ipynb"))
    assert executed, "no executed notebook in results/executed/"
    for notebook in executed:
        page = site / "results" / "executed" / f"{notebook.stem}.html"
        assert page.exists(), f"{notebook.name} is not on the site"
        assert "jp-OutputArea-output" in page.read_text(), f"{notebook.name} is rendered without its outputs"
        assert f"results/executed/{notebook.stem}.html" in home, f"the navigation does not reach {notebook.name}"
    for notebook in sorted((REPO / "notebooks").glob("*.ipynb")):  # every notebook: executed, or its source
        shown = [p for p in executed if p.stem == notebook.stem or p.stem.startswith(f"{notebook.stem}_")]
        assert shown or (site / "notebooks" / f"{notebook.stem}.html").exists(), f"{notebook.name} is not on the site"
    assert (site / "figures" / "pipeline.png").exists()  # the README's figure


def test_no_internal_link_of_the_site_is_broken(site):
    broken, checked = [], 0
    for page in sorted(site.rglob("*.html")):
        parser = _Links()
        parser.feed(page.read_text(errors="replace"))
        here = page.relative_to(site).as_posix()
        for url in parser.links:
            parts = urlsplit(url)
            if parts.scheme or parts.netloc or url.startswith("#"):
                continue  # another site, or a place on this page
            path = unquote(parts.path)
            target = path.lstrip("/") if path.startswith("/") else posixpath.join(posixpath.dirname(here), path)
            target = site / posixpath.normpath(target)
            checked += 1
            if not (target / "index.html" if target.is_dir() else target).exists():
                broken.append(f"{here}: {url}")
    assert checked > 100  # the pages link each other, their figures and the theme's files
    assert not broken, "\n".join(broken[:30])
