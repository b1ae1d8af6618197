"""Install anywhere: the notebooks' badges and install cells come from ebyd_utils.REPOSITORY; `python -m build --wheel`
makes a wheel holding the whole package; a fresh virtual environment outside the checkout, without the package,
runs notebook 00 at smoke, its install cell installing that wheel offline (EBYD_INSTALL_SOURCE); and a run at a
profile other than quick writes under results/<profile>/ and figures/<profile>/, never over the committed files."""

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import nbformat
import pytest

from ebyd_utils import REPOSITORY, notebook_setup
from ebyd_utils.core.store import output_dirs

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------ one place for the repository
def test_every_badge_install_cell_and_kernelspec_is_written_from_the_constant():
    assert notebook_setup.sync(REPO, write=False) == [], "run `python -m ebyd_utils.notebook_setup`"
    assert REPOSITORY == "https://github.com/ebyd-companion/ebyd-companion"
    readme = (REPO / "README.md").read_text()
    assert "REPOSITORY" in readme, "the README names the constant the repository URL is taken from"
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        text = path.read_text()
        assert notebook_setup.colab_url(path.stem) in text and f"git+{REPOSITORY}" in text
        assert notebook_setup.colab_url(path.stem) in readme, f"the README has no Colab badge for {path.stem}"


def test_the_check_finds_and_mends_a_stale_notebook(tmp_path):
    (tmp_path / "notebooks").mkdir()
    nb = nbformat.read(REPO / "notebooks" / "09_text.ipynb", as_version=4)
    nb.cells[0].source = nb.cells[0].source.replace("ebyd-companion/ebyd-companion", "someone/fork")
    nb.cells[1].source = nb.cells[1].source.replace("git+https://github.com/ebyd-companion", "git+https://example")
    nb.metadata["kernelspec"]["display_name"] = "Python 3"
    nbformat.write(nb, tmp_path / "notebooks" / "09_text.ipynb")
    assert notebook_setup.main(["--check", "--root", str(tmp_path)]) == 1
    assert notebook_setup.main(["--root", str(tmp_path)]) == 0
    assert notebook_setup.sync(tmp_path, write=False) == []
    cell = nbformat.read(tmp_path / "notebooks" / "09_text.ipynb", as_version=4).cells[1].source
    assert '"ebyd-utils[text] @ {install_source}"' in cell  # notebook 09 asks for the text extra


def test_the_kernel_metadata_is_what_ipykernel_writes():
    from ipykernel.ipkernel import IPythonKernel
    from ipykernel.kernelspec import get_kernel_dict

    spec = get_kernel_dict()
    assert {k: spec[k] for k in ("display_name", "language")} == {
        k: notebook_setup.KERNELSPEC[k] for k in ("display_name", "language")
    }
    assert notebook_setup.KERNELSPEC["name"] == "python3"  # ipykernel's NATIVE_KERNEL_NAME
    info = dict(IPythonKernel.language_info)
    assert {**info, "version": None} == {**notebook_setup.LANGUAGE_INFO, "version": None}


# ------------------------------------------------------------------------------ a reader's first run
def test_outputs_go_to_the_profiles_folder_unless_given():
    assert output_dirs("quick") == (Path("../results"), Path("../figures"))  # the committed folders
    assert output_dirs("smoke") == (Path("../results/smoke"), Path("../figures/smoke"))
    assert output_dirs("paper", base="/r") == (Path("/r/results/paper"), Path("/r/figures/paper"))
    assert output_dirs("smoke", "/tmp/a", "/tmp/b") == (Path("/tmp/a"), Path("/tmp/b"))  # given: as it is
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        parameters = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        assert 'RESULTS_DIR = "auto"' in parameters.source and 'FIGURES_DIR = "auto"' in parameters.source, path.name
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        assert "RESULTS_DIR, FIGURES_DIR = output_dirs(PROFILE, RESULTS_DIR, FIGURES_DIR)" in code, path.name


# ------------------------------------------------------------------------------ the wheel, outside the checkout
def _build_wheel(tmp_path: Path) -> Path:
    """`python -m build --wheel` on a copy of the sources (the build writes build/ and *.egg-info beside them)."""
    pytest.importorskip("build", reason="the `build` package (the dev extra) makes the wheel")
    src = tmp_path / "src"
    for name in ("pyproject.toml", "README.md"):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes((REPO / name).read_bytes())
    for path in _package_files():
        (src / path).parent.mkdir(parents=True, exist_ok=True)
        (src / path).write_bytes((REPO / path).read_bytes())
    done = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path / "dist"), str(src)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # setuptools deprecates the `license` TOML table (`license = { text = ... }`); the SPDX string is current
    warned = [
        line
        for line in (done.stdout + done.stderr).splitlines()
        if "license" in line.lower() and "deprecat" in line.lower()
    ]
    assert not warned, warned
    (wheel,) = (tmp_path / "dist").glob("ebyd_utils-*.whl")
    return wheel


def _package_files() -> list[str]:
    """Every file of the package (data files included), as the checkout has them."""
    return sorted(
        p.relative_to(REPO).as_posix()
        for p in (REPO / "ebyd_utils").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )


def _fresh_venv(tmp_path: Path) -> Path:
    """A virtual environment without ebyd_utils whose other packages are this one's, seen through a .pth file
    (torch is not installed again): a folder of links to every entry of this site-packages but the package's.
    Without a pip of its own: venv's older pip and setuptools would shadow these (torch asks for setuptools>=77)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
    deps = tmp_path / "deps"
    deps.mkdir()
    ours = ("ebyd_utils", "ebyd_utils-", "__editable__", "_ebyd")
    for folder in dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]):
        for entry in Path(folder).iterdir():
            if not entry.name.startswith(ours) and entry.suffix != ".pth" and not (deps / entry.name).exists():
                (deps / entry.name).symlink_to(entry)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(site) / "_companion_deps.pth").write_text(f"{deps}\n")
    return python


def _clean_env(tmp_path: Path, **extra) -> dict:
    """An environment that keeps every write inside tmp_path and pip offline (no index, no config files)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_", "JUPYTER", "VIRTUAL_ENV"))}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {
        **env,
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "MPLCONFIGDIR": str(home / "mpl"),
        "IPYTHONDIR": str(home / "ipython"),
        "JUPYTER_PREFER_ENV_PATH": "1",
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",  # no __pycache__ beside the linked packages, outside tmp_path
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_NO_INDEX": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        **extra,
    }


@pytest.mark.slow
def test_the_wheel_installs_by_the_install_cell_and_runs_notebook_00_outside_the_checkout(tmp_path):
    if not hasattr(os, "symlink"):
        pytest.skip("needs symbolic links to share this environment's packages with the fresh one")
    wheel = _build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        missing = [p for p in _package_files() if p not in names]
        assert not missing, f"the wheel lacks package files: {missing}"
        assert not [n for n in names if not n.startswith(("ebyd_utils/", "ebyd_utils-"))], "the wheel holds more"
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: Apache-2.0" in metadata

    python = _fresh_venv(tmp_path)
    env = _clean_env(tmp_path, EBYD_INSTALL_SOURCE=wheel.as_uri())
    missing = subprocess.run([python, "-c", "import ebyd_utils"], cwd=tmp_path, env=env, capture_output=True)
    assert missing.returncode != 0, "the fresh environment has the package before its install cell ran"
    subprocess.run([python, "-m", "ipykernel", "install", "--sys-prefix"], env=env, check=True, capture_output=True)
    run = tmp_path / "reader"  # a reader's folder: notebooks/ and, beside it, what the notebook writes
    (run / "notebooks").mkdir(parents=True)
    (run / "notebooks" / "00_overview.ipynb").write_bytes((REPO / "notebooks" / "00_overview.ipynb").read_bytes())
    before = _checkout_state()
    done = subprocess.run(
        [python, "-m", "papermill", "00_overview.ipynb", "executed.ipynb", "--no-progress-bar", "--kernel", "python3"]
        + ["-p", "PROFILE", "smoke", "-p", "DEVICE", "cpu", "-p", "PROGRESS", "False"],
        cwd=run / "notebooks",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # the wheel's copy, in the fresh venv; and its scanner reads the committed results a checkout's does: the
    # calibration, notebook 03's misses and notebook 12's limit (copies packaged in scan/measured/)
    code = "import ebyd_utils; from ebyd_utils.scan import readings as r; print(ebyd_utils.__file__, r.blind_spots())"
    where = subprocess.run([python, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert where.returncode == 0 and where.stdout.startswith(str(tmp_path / "venv")), where.stdout + where.stderr
    assert "'lines': [" in where.stdout and "not packaged" not in where.stdout, where.stdout
    executed = nbformat.read(run / "notebooks" / "executed.ipynb", as_version=4)
    install = executed.cells[1]
    assert install.source.startswith(notebook_setup.INSTALL_MARK) and install.get("execution_count")
    # the defaults ("auto") put a smoke run's files under results/smoke/ and figures/smoke/, inside the folder
    for name in ("results/smoke/00_environment.csv", "results/smoke/zoo_smoke.csv", "figures/smoke/pipeline.png"):
        assert (run / name).stat().st_size > 0, name
    assert not list((run / "results").glob("*.csv")) and not list((run / "figures").glob("*.png"))
    assert _checkout_state() == before, "the run wrote into the checkout"


def _checkout_state() -> str:
    """What git sees changed in the checkout ('' outside git)."""
    done = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else ""
