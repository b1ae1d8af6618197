"""make lab: JupyterLab starts through `python -m ebyd_utils.lab` as root or as a user, prints its URL and answers
with its token; in a real browser (headless Chromium driven by Playwright), notebook 03 at smoke opens unmodified,
runs every cell and shows its detection table. Skipped, with the reason, where no Chromium or Playwright exists.

This file sorts after test_notebooks.py on purpose: both use the session's unit cache, so after the smoke notebooks
have run, notebook 03 in the browser only reads its models (seconds); alone, it first trains the smoke zoo it reads
(10 small suspects and 2 references with their CUL runs, about 3 minutes on 2 cores) unless EBYD_SMOKE_CACHE names
a cache folder that holds them (e.g. one that `make zoo PROFILE=smoke` filled): its units are copied into the
session's cache first."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest

from ebyd_utils import lab

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RUN_TIMEOUT_S = float(os.environ.get("EBYD_LAB_TEST_TIMEOUT", 1200))  # a cold cache trains the smoke zoo first


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return 0


@pytest.fixture
def start_lab(tmp_path):
    """Start `python -m ebyd_utils.lab` on a free port with a token, in its own process group (stopped whole at
    the end), its home, settings and runtime files in tmp_path; returns (base URL, token, the line it printed)."""
    started = []

    def start(root_dir: Path, timeout: float = 120):
        port, token = _free_port(), "ebyd-test-token"
        home = tmp_path / "home"
        home.mkdir(exist_ok=True)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")},
            "HOME": str(home),
            "MPLCONFIGDIR": str(home / "mpl"),
            "IPYTHONDIR": str(home / "ipython"),
        }
        log = open(tmp_path / f"lab-{port}.log", "w+")  # closed at the end
        proc = subprocess.Popen(
            [sys.executable, "-m", "ebyd_utils.lab", "--port", str(port), "--token", token]
            + ["--root-dir", str(root_dir), "--no-browser"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
            start_new_session=True,
        )
        started.append((proc, log))
        base = f"http://localhost:{port}"
        deadline = time.monotonic() + timeout
        while _status(f"{base}/api/status?token={token}") != 200:
            assert proc.poll() is None, Path(log.name).read_text()[-3000:]
            assert time.monotonic() < deadline, "JupyterLab did not answer: " + Path(log.name).read_text()[-3000:]
            time.sleep(0.5)
        return base, token, Path(log.name).read_text().splitlines()[0]

    yield start
    for proc, log in started:  # the server and the kernels it started: its process group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # what is left of it
        proc.wait()
        log.close()


def test_lab_adds_allow_root_only_as_root_and_keeps_its_port():
    as_root = lab.lab_command(8888, "localhost", "t", "/nb", as_root=True)
    as_user = lab.lab_command(8888, "localhost", "t", "/nb", as_root=False)
    assert "--allow-root" in as_root and "--allow-root" not in as_user
    assert "--ServerApp.port_retries=0" in as_user and "--IdentityProvider.token=t" in as_user
    assert lab.lab_url(8888, "0.0.0.0", "t") == "http://localhost:8888/lab?token=t"


def test_make_lab_starts_prints_its_url_and_answers_only_with_its_token(start_lab, tmp_path):
    pytest.importorskip("jupyterlab", reason="JupyterLab is the lab extra (make lab installs it)")
    base, token, first_line = start_lab(tmp_path)
    assert f"{base}/lab?token={token}" in first_line
    assert ("--allow-root" in first_line) == lab.is_root()  # as root here, it says so (and Lab started)
    assert _status(f"{base}/api/status") == 403  # no token, no entry
    assert _status(f"{base}/lab?token={token}") == 200


def with_parameters(notebook: Path, folder: Path, parameters: dict) -> Path:
    """A copy of `notebook` in `folder` with its parameters set as papermill sets them: a cell tagged
    injected-parameters right after the one tagged parameters."""
    nb = nbformat.read(notebook, as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    code = "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell(code, metadata={"tags": ["injected-parameters"]}))
    nbformat.write(nb, folder / notebook.name)
    return folder / notebook.name


@pytest.mark.slow
def test_notebook_03_runs_at_smoke_in_jupyterlab_in_a_browser(start_lab, tmp_path, cache_dir):
    pytest.importorskip("jupyterlab", reason="JupyterLab is the lab extra (make lab installs it)")
    pytest.importorskip("playwright.sync_api", reason="Playwright (the dev extra) drives the browser")
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no Chromium on this machine (Debian: apt-get install chromium; .ci/run installs it)")
    folder, out = tmp_path / "lab", tmp_path / "out"
    folder.mkdir()
    prebuilt = os.environ.get("EBYD_SMOKE_CACHE")
    if prebuilt:  # a smoke cache built before: copied, never written to
        shutil.copytree(prebuilt, cache_dir, dirs_exist_ok=True)
    # the parameters test_notebooks.py gives notebook 03, so that its units are found in the session's cache
    parameters = {"PROFILE": "smoke", "DEVICE": "cpu", "DATA_DIR": str(REPO / "data"), "CACHE_DIR": str(cache_dir)}
    parameters.update(RESULTS_DIR=str(out / "results"), FIGURES_DIR=str(out / "figures"), PROGRESS=False)
    with_parameters(REPO / "notebooks" / "03_label_detection.ipynb", folder, parameters)
    before = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout
    base, token, _ = start_lab(folder)

    headers, text = run_in_browser(
        chromium, f"{base}/lab/tree/03_label_detection.ipynb?token={token}", "detected_label"
    )
    assert "Traceback" not in text, text[-3000:]
    assert {"true_target", "detected_label", "score", "verdict"} <= set(headers), headers
    assert (out / "results" / "03_label_detection.csv").stat().st_size > 0
    assert (out / "figures" / "03_detection_scores.png").stat().st_size > 0
    assert subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout == before


def run_in_browser(chromium: str, url: str, header: str, timeout_s: float = RUN_TIMEOUT_S) -> tuple[list, str]:
    """Open a notebook in JupyterLab in headless Chromium, check that opening it did not mark it modified, run all
    its cells (Run > Run All Cells) and wait for a rendered table with a `header` column and for every code cell to
    have run; returns that table's headers and the notebook's text."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url, timeout=120_000)
            status = page.locator(".jp-StatusBar-Widget", has_text="| Idle").first
            status.wait_for(timeout=120_000)  # its kernel has started ("Python 3 (ipykernel) | Idle")
            page.wait_for_timeout(2000)  # Lab writes the kernel's metadata into the notebook, where it differs
            tab = page.locator(".lm-TabBar-tab.jp-mod-current").first
            assert "jp-mod-dirty" not in (tab.get_attribute("class") or ""), (
                "opening the notebook marked it modified: its kernelspec or language_info is not the kernel's"
            )
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
            table = page.locator(".jp-OutputArea-output table", has=page.locator("th", has_text=header)).first
            table.wait_for(timeout=timeout_s * 1000)  # the table, rendered
            page.wait_for_function(
                "() => { const p = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')];"
                " return p.length > 0 && p.every(e => /\\[\\d+\\]/.test(e.textContent)); }",
                timeout=timeout_s * 1000,
            )  # every code cell has run: its prompt shows an execution count
            return table.locator("th").all_text_contents(), page.locator(".jp-NotebookPanel").first.text_content()
        finally:
            browser.close()
