"""Run the companion's notebooks end to end with papermill, and time each one.

    python -m ebyd_utils.run_notebooks --profile quick --device auto --data-dir data [--only 02]

Notebooks run in name order from notebooks/ (cwd = notebooks/, kernel python3) with the parameters PROFILE,
DEVICE, DATA_DIR, CACHE_DIR, RESULTS_DIR, FIGURES_DIR and PROGRESS; every path is passed absolute (relative ones
are resolved against the repository root), so a notebook writes to the same place wherever it runs. Progress
bars are off unless --progress is given: each bar update would be stored in the executed copy. Executed
copies go to results/executed/<name>.ipynb, and results/notebook_times.csv keeps one row per (notebook,
profile, hardware): a re-run replaces its row, other rows stay.
"""
from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

import pandas as pd

from .config import PROFILES
from .results import hardware_name
from .train import pick_device

TIME_COLUMNS = ["notebook", "profile", "seconds", "hardware", "date"]


def repo_root() -> Path:
    """The checkout this package lives in (editable install); else the current directory."""
    here = Path(__file__).resolve().parents[1]
    return here if (here / "notebooks").is_dir() else Path.cwd()


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="quick", help=f"one of {sorted(PROFILES)}")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("--data-dir", default="data", help="dataset folder (relative to the repository root)")
    parser.add_argument("--only", action="append", default=[],
                        help="run only notebooks whose name starts with this (repeatable), e.g. --only 02")
    parser.add_argument("--progress", action="store_true", help="keep the notebooks' progress bars on")
    parser.add_argument("--root", type=Path, default=None, help="repository root (default: this checkout)")
    args = parser.parse_args(argv)
    if args.profile not in PROFILES:   # fail before starting a kernel, with the choices spelled out
        parser.error(f"unknown profile {args.profile!r}; choose one of {sorted(PROFILES)}")
    return args


def select_notebooks(notebooks_dir: Path, only=()) -> list[Path]:
    """notebooks/*.ipynb in name order, filtered by name prefixes; an unmatched prefix is an error."""
    found = sorted(notebooks_dir.glob("*.ipynb"))
    chosen = [nb for nb in found if not only or any(nb.name.startswith(p) for p in only)]
    if not chosen:
        raise SystemExit(f"no notebook in {notebooks_dir} matches {list(only) or '*.ipynb'}; "
                         f"found {[nb.name for nb in found]}")
    return chosen


def notebook_parameters(root: Path, profile: str, device: str, data_dir: str, progress: bool = False) -> dict:
    """The parameters every notebook takes; paths absolute so cwd never matters."""
    def absolute(path):
        return str((root / path).resolve())
    return {"PROFILE": profile, "DEVICE": device, "DATA_DIR": absolute(data_dir),
            "CACHE_DIR": absolute("cache"), "RESULTS_DIR": absolute("results"), "FIGURES_DIR": absolute("figures"),
            "PROGRESS": progress}


def run_one(notebook: Path, output: Path, parameters: dict) -> float:
    """Execute one notebook with papermill; returns its wall-clock seconds."""
    import papermill as pm   # imported here so `--help` stays fast

    output.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    pm.execute_notebook(str(notebook), str(output), parameters=parameters, kernel_name="python3",
                        cwd=str(notebook.parent), progress_bar=False, log_output=False)
    return time.perf_counter() - start


def record_time(times_csv: Path, row: dict) -> pd.DataFrame:
    """Replace the row of the same (notebook, profile, hardware), keep the others, sorted for stable diffs."""
    table = pd.read_csv(times_csv) if times_csv.exists() else pd.DataFrame(columns=TIME_COLUMNS)
    same = ((table["notebook"] == row["notebook"]) & (table["profile"] == row["profile"])
            & (table["hardware"] == row["hardware"]))
    table = pd.concat([table[~same], pd.DataFrame([row])], ignore_index=True)
    table = table[TIME_COLUMNS].sort_values(["profile", "hardware", "notebook"], ignore_index=True)
    times_csv.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(times_csv, index=False)   # plain floats: seconds keep their decimal (write_csv rounds to 4 digits)
    return table


def main(argv=None) -> int:
    args = parse_args(argv)
    root = (args.root or repo_root()).resolve()
    params = notebook_parameters(root, args.profile, args.device, args.data_dir, args.progress)
    hardware = hardware_name(pick_device(args.device))
    for notebook in select_notebooks(root / "notebooks", args.only):
        output = root / "results" / "executed" / notebook.name
        print(f"[run_notebooks] {notebook.name} (profile {args.profile}) ...", flush=True)
        try:
            seconds = run_one(notebook, output, params)
        except Exception as err:   # papermill has saved the executed copy up to the failing cell
            print(f"[run_notebooks] {notebook.name} FAILED; see {output}\n{err}", file=sys.stderr)
            return 1
        record_time(root / "results" / "notebook_times.csv",
                    {"notebook": notebook.name, "profile": args.profile, "seconds": round(seconds, 1),
                     "hardware": hardware, "date": date.today().isoformat()})
        print(f"[run_notebooks] {notebook.name}: {seconds:.1f} s -> {output}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
