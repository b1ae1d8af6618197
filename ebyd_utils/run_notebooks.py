"""Run the companion's notebooks end to end with papermill, and time each one.

    python -m ebyd_utils.run_notebooks --profile quick --device auto --data-dir data [--only 02] [--workers 4]
                                       [--no-variants]

Notebooks run in name order from notebooks/ (cwd = notebooks/, kernel python3) with the parameters PROFILE,
DEVICE, DATA_DIR, CACHE_DIR, RESULTS_DIR, FIGURES_DIR and PROGRESS; every path is passed absolute (relative ones
are resolved against the repository root), so a notebook writes to the same place wherever it runs. Progress
bars are off unless --progress is given: each bar update would be stored in the executed copy.

Where a run writes (`core.store.output_dirs`): the committed folders results/ and figures/ hold the quick profile;
a run at any other profile writes to results/<profile>/ and figures/<profile>/, so a reader's first `smoke` run
never overwrites the committed quick files. Executed copies go to <results>/executed/<name>.ipynb, and
<results>/notebook_times.csv keeps one row per (notebook, profile, hardware): a re-run replaces its row, other
rows stay. A notebook may have more runs at a profile with
parameters of their own (NOTEBOOK_VARIANTS: notebook 09 on OffensEval, AG's News and IMDB at quick);
--no-variants skips them, and --only takes name prefixes (09_text selects all four runs, 09_text.ipynb SST-2's).

A full run (no --only) first builds the profile's zoo -- every model, attack component and CUL run the
notebooks ask for (`zoo.build`) -- in this process, or as Ray tasks with --workers N (or --address of a Ray
cluster); its time is recorded as the row "zoo build", and the notebooks then only read those units. With
--only (or --no-prebuild) a notebook computes what it misses in its kernel, and Ray is never imported.

What the terminal shows: a line per notebook, a bar over its cells, and a line per unit the kernel computes
(sent through `progress`'s side channel, so the executed notebooks hold no bar updates). Kernels talk over
IPC sockets, not TCP: local-only, and without ipykernel's warning about unencrypted TCP.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

from .config import PROFILES
from .core.notebook_times import record_run, unit_files
from .core.progress import PROGRESS_ENV, Follower
from .core.store import hardware_name, output_dirs
from .train import pick_device

TEXT_PROFILE_NAMES = ("smoke", "quick", "paper")  # text.config.TEXT_PROFILES (not imported: it needs the attacks)
# More runs of a notebook at a profile, each with its own parameters: (notebook stem, profile) -> ((suffix,
# parameters), ...). The executed copy is results/executed/<stem>_<suffix>.ipynb; the notebook names its own
# outputs (09: <stem>_<dataset>.csv). Notebook 09 on the other text datasets: each drops the attacks whose
# released paraphrases do not cover that dataset (StyleBkd: no OffensEval rewrites; SynBkd: 12 AG train rows).
NOTEBOOK_VARIANTS = {
    ("09_text", "quick"): (
        ("offenseval", {"DATASET": "offenseval", "ATTACKS": "badnets_word,addsent,synbkd,bite,lwp"}),
        ("agnews", {"DATASET": "agnews", "ATTACKS": "badnets_word,addsent,stylebkd,bite,lwp"}),
        ("imdb", {"DATASET": "imdb", "ATTACKS": "badnets_word,addsent,bite,lwp"}),
    )
}


def repo_root() -> Path:
    """The checkout this package lives in (editable install); else the current directory."""
    here = Path(__file__).resolve().parents[1]
    return here if (here / "notebooks").is_dir() else Path.cwd()


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="quick", help=f"one of {sorted(PROFILES)}")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("--data-dir", default="data", help="dataset folder (relative to the repository root)")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help="run only notebooks whose name starts with this (repeatable), e.g. --only 02; a "
        "variant run by its name, e.g. --only 09_text_offenseval",
    )
    parser.add_argument("--progress", action="store_true", help="keep the notebooks' progress bars on")
    parser.add_argument("--root", type=Path, default=None, help="repository root (default: this checkout)")
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="build the zoo first with this many Ray workers on this machine (0: no Ray)",
    )
    parser.add_argument("--address", default=None, help="build the zoo first on this Ray cluster (e.g. auto)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per Ray task")
    parser.add_argument("--gpus-per-task", type=float, default=0.0, help="GPU share per Ray task, e.g. 0.33")
    parser.add_argument(
        "--no-variants",
        action="store_true",
        help="skip the notebooks' extra runs (NOTEBOOK_VARIANTS: 09 on the other text datasets)",
    )
    parser.add_argument(
        "--no-prebuild",
        action="store_true",
        help="do not build the zoo first (default for --only runs without --workers/--address)",
    )
    args = parser.parse_args(argv)
    if args.workers < 0:
        parser.error(f"--workers must be >= 0; got {args.workers}")
    if args.profile not in PROFILES:  # fail before starting a kernel, with the choices spelled out
        parser.error(f"unknown profile {args.profile!r}; choose one of {sorted(PROFILES)}")
    return args


def select_notebooks(notebooks_dir: Path, only=()) -> list[Path]:
    """notebooks/*.ipynb in name order, filtered by name prefixes (a prefix naming a variant run, such as
    09_text_offenseval, selects its notebook); an unmatched prefix is an error."""
    found = sorted(notebooks_dir.glob("*.ipynb"))
    chosen = [nb for nb in found if not only or any(nb.name.startswith(p) or p.startswith(f"{nb.stem}_") for p in only)]
    if not chosen:
        raise SystemExit(
            f"no notebook in {notebooks_dir} matches {list(only) or '*.ipynb'}; found {[nb.name for nb in found]}"
        )
    return chosen


def notebook_parameters(root: Path, profile: str, device: str, data_dir: str, progress: bool = False) -> dict:
    """The parameters every notebook takes; paths absolute so cwd never matters. Results and figures go to the
    profile's folders (`output_dirs`: results/ and figures/ at quick, results/<profile>/ and figures/<profile>/
    at any other)."""

    def absolute(path):
        return str((root / path).resolve())

    results, figures = output_dirs(profile, base=root)
    return {
        "PROFILE": profile,
        "DEVICE": device,
        "DATA_DIR": absolute(data_dir),
        "CACHE_DIR": absolute("cache"),
        "RESULTS_DIR": absolute(results),
        "FIGURES_DIR": absolute(figures),
        "PROGRESS": progress,
    }


def kernel_manager_class():
    """A kernel manager whose kernels listen on IPC sockets (files in a private folder) instead of TCP ports."""
    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            super().__init__(transport="ipc", **kwargs)

    return IPCKernelManager


def run_one(notebook: Path, output: Path, parameters: dict, progress_bar: bool = True) -> float:
    """Execute one notebook with papermill (a bar over its cells in the terminal); returns its wall seconds."""
    import papermill as pm  # imported here so `--help` stays fast

    output.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    pm.execute_notebook(
        str(notebook),
        str(output),
        parameters=parameters,
        kernel_name="python3",
        cwd=str(notebook.parent),
        progress_bar=progress_bar,
        log_output=False,
        kernel_manager_class=kernel_manager_class(),
    )
    return time.perf_counter() - start


def prebuild_zoo(args, root: Path) -> int:
    """Every unit of the profile's zoo, fanned out over Ray before the notebooks run; 1 if a unit failed."""
    from . import zoo
    from .config import get_profile
    from .core.fanout import Fanout
    from .pipeline import setup

    params = notebook_parameters(root, args.profile, args.device, args.data_dir)
    run = setup(get_profile(args.profile), params["DATA_DIR"], args.device, params["CACHE_DIR"])
    report = zoo.build(run, Fanout(args.workers, args.address, args.threads, args.gpus_per_task))
    failed = report[report["status"] != "done"]
    print(
        f"[run_notebooks] zoo: {len(report)} units, {int(report['computed'].sum())} computed, "
        f"{len(failed)} failed or skipped",
        flush=True,
    )
    if len(failed):
        print(failed[["id", "status", "error", "attack_params"]].to_string(index=False), file=sys.stderr)
    return 1 if len(failed) else 0


def main(argv=None) -> int:
    args = parse_args(argv)
    root = (args.root or repo_root()).resolve()
    params = notebook_parameters(root, args.profile, args.device, args.data_dir, args.progress)
    hardware = hardware_name(pick_device(args.device))
    if not args.no_prebuild and (args.workers or args.address or not args.only):
        start, before = time.perf_counter(), unit_files(params["CACHE_DIR"])
        if prebuild_zoo(args, root):
            return 1
        seconds = time.perf_counter() - start
        record_run(params["RESULTS_DIR"], "zoo build", args.profile, seconds, before, params["CACHE_DIR"], hardware)
    with tempfile.TemporaryDirectory() as tmp:
        for notebook in select_notebooks(root / "notebooks", args.only):
            if notebook.stem.endswith("_text") and args.profile not in TEXT_PROFILE_NAMES:
                print(
                    f"[run_notebooks] {notebook.name}: skipped (the text track has no profile "
                    f"{args.profile!r}; it has {list(TEXT_PROFILE_NAMES)})",
                    flush=True,
                )
                continue
            variants = () if args.no_variants else NOTEBOOK_VARIANTS.get((notebook.stem, args.profile), ())
            for suffix, extra in (("", {}), *variants):
                name = f"{notebook.stem}_{suffix}.ipynb" if suffix else notebook.name
                if args.only and not any(name.startswith(p) for p in args.only):
                    continue
                if not run_and_record(notebook, name, params, extra, args.profile, hardware, tmp):
                    return 1
    return 0


def run_and_record(notebook: Path, name: str, params: dict, extra: dict, profile: str, hardware: str, tmp: str) -> bool:
    """One run of `notebook` with params and the variant's `extra` parameters: executed copy
    <results>/executed/<name>, its time and its cost by unit kind recorded under <name>; False if it failed."""
    output = Path(params["RESULTS_DIR"]) / "executed" / name
    print(
        f"[run_notebooks] {name} (profile {profile}{''.join(f', {k}={v}' for k, v in extra.items())}) ...", flush=True
    )
    channel = Path(tmp) / f"{Path(name).stem}.progress"  # one per run: its kernel inherits it
    before = unit_files(params["CACHE_DIR"])
    try:
        with (
            _environ(PROGRESS_ENV, str(channel)),
            Follower(channel, lambda line: _tqdm_write(f"    {Path(name).stem}: {line}")),
        ):
            seconds = run_one(notebook, output, {**params, **extra})
    except Exception as err:  # papermill has saved the executed copy up to the failing cell
        print(f"[run_notebooks] {name} FAILED; see {output}\n{err}", file=sys.stderr)
        return False
    record_run(params["RESULTS_DIR"], name, profile, seconds, before, params["CACHE_DIR"], hardware)
    print(f"[run_notebooks] {name}: {seconds:.1f} s -> {output}", flush=True)
    return True


@contextlib.contextmanager
def _environ(name: str, value: str):
    """Set an environment variable (which the kernels started meanwhile inherit) for the block only."""
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield value
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def _tqdm_write(line: str) -> None:
    """Print above papermill's cell bar without breaking it."""
    from tqdm.auto import tqdm

    tqdm.write(line)


if __name__ == "__main__":
    sys.exit(main())
