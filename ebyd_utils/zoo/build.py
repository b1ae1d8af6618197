"""The zoo's units: its models and their Clean Unlearning runs, trained (or loaded) in-process or fanned out
over Ray workers (see the package docstring)."""

from __future__ import annotations

import json
import time

import pandas as pd

from ..config import Profile, as_dict
from ..core.fanout import Fanout, run_tasks
from ..core.progress import eta, report
from ..core.units import unit_path
from ..pipeline import (
    DEFAULT_MONITOR_SIZE,
    Run,
    Suspect,
    cul_params,
    expose,
    expose_restarts,
    model_params,
    setup,
    train_suspect,
)
from .table import attack_of, zoo_table


# ------------------------------------------------------------------------------ models and exposures
def models(run: Run, rows: pd.DataFrame) -> list[Suspect]:
    """The models of these zoo rows (trained, or loaded from the cache), in the rows' order, each named by its
    row's model_id.

    Args:
        run: the flow's context (`pipeline.setup`).
        rows: rows of `zoo_table(profile)` (e.g. `table.query("role == 'suspect'")`).
    Returns:
        one `pipeline.Suspect` per row."""
    return _each(
        rows.to_dict("records"),
        "model",
        "models",
        lambda row: train_suspect(run, attack_of(row), int(row["seed"]), model_id=row["model_id"]),
        lambda s: s.record["computed"],
    )


def references(run: Run) -> list[Suspect]:
    """The defender's clean reference models: same architecture and recipe, their own seeds."""
    table = zoo_table(run.profile)
    return models(run, table[table["role"] == "reference"])


def exposures(run: Run, suspects) -> list[list]:
    """Every suspect's CUL restarts (pipeline.expose_restarts): one list of logs per suspect."""
    return _each(
        suspects,
        "CUL",
        "models' CUL restarts",
        lambda s: expose_restarts(run, s),
        lambda logs: any(log.attrs.get("computed") for log in logs),
    )


def _each(items, what: str, noun: str, make, was_computed) -> list:
    """make(item) for every item, reporting each computed one (k/n, time left) on the progress channel."""
    out, computed, start = [], 0, time.perf_counter()
    for k, item in enumerate(items, 1):
        out.append(make(item))
        if was_computed(out[-1]):
            computed += 1
            report(f"{what} {eta(k, len(items), time.perf_counter() - start)}")
    report(f"{what}: {len(items)} {noun}, {computed} computed, {len(items) - computed} from the cache")
    return out


# --------------------------------------------------------------------------------- building a zoo
def zoo_tasks(
    profile: Profile, table: pd.DataFrame | None = None, monitor_size: int = DEFAULT_MONITOR_SIZE
) -> list[dict]:
    """The units of a zoo as tasks for fanout.run_tasks: each model, then its CUL restarts (which need it)."""
    table = zoo_table(profile) if table is None else table
    tasks = []
    for row in table.to_dict("records"):
        model_task = f"model:{row['model_id']}"
        tasks.append({"id": model_task, "kind": "model", "row": row, "after": None})
        for r in range(profile.detection.restarts):
            tasks.append(
                {
                    "id": f"cul:{row['model_id']}:{r}",
                    "kind": "cul",
                    "row": row,
                    "restart": r,
                    "monitor_size": monitor_size if r == 0 else 0,
                    "after": model_task,
                }
            )
    return tasks


def unit_keys(run: Run, table: pd.DataFrame | None = None) -> dict:
    """{task id: unit key} of every model and CUL unit of the run's zoo (zoo_tasks' ids), computed without
    training anything: what a cache must hold for the zoo, and what a code move must leave unchanged (tested)."""
    keys = {}
    for task in zoo_tasks(run.profile, table, run.monitor_size):
        row = task["row"]
        model_key, _ = unit_path("model", model_params(run.profile, run.data, attack_of(row), int(row["seed"])), ".")
        if task["kind"] == "model":
            keys[task["id"]] = model_key
        else:
            params = cul_params(run.profile, model_key, task["restart"], task["monitor_size"])
            keys[task["id"]] = unit_path("cul", params, ".")[0]
    return keys


_RUNS = {}  # per process: a worker loads the dataset once and reuses it for every task it runs


def _spec(run: Run) -> dict:
    """What a worker needs to rebuild the run (plain values: Ray ships them, never the driver's tensors)."""
    return {
        "profile": run.profile,
        "data_dir": run.data_dir,
        "cache_dir": run.cache_dir,
        "device": str(run.device),
        "monitor_size": run.monitor_size,
    }


def _memo(spec: dict) -> str:
    return json.dumps(
        [as_dict(spec["profile"]), str(spec["data_dir"]), spec["cache_dir"], spec["device"], spec["monitor_size"]],
        default=str,
    )


def run_task(spec: dict, task: dict) -> dict:
    """One zoo unit (fanout's `fn`): train a model or run one CUL restart; returns whether it computed."""
    memo = _memo(spec)
    if memo not in _RUNS:
        _RUNS.clear()
        _RUNS[memo] = setup(
            spec["profile"], spec["data_dir"], spec["device"], spec["cache_dir"], spec["monitor_size"], progress=False
        )
    run, row = _RUNS[memo], task["row"]
    suspect = train_suspect(run, attack_of(row), int(row["seed"]), model_id=row["model_id"])
    if task["kind"] == "model":
        return {"computed": suspect.record["computed"]}
    _, log = expose(run, suspect, restart=task["restart"], monitor_size=task["monitor_size"])
    return {"computed": bool(log.attrs.get("computed"))}


def build(run: Run, fanout: Fanout | None = None, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """Compute every missing unit of the run's zoo (in-process by default, reusing the run's data; else Ray
    tasks, each worker loading the data from run.data_dir), and return fanout's report: one row per unit with
    status, computed, seconds, error and its parameters."""
    tasks = zoo_tasks(run.profile, table, run.monitor_size)
    spec = _spec(run)
    _RUNS.clear()
    _RUNS[_memo(spec)] = run.replace(progress=False)
    report_table = run_tasks(run_task, spec, tasks, fanout or Fanout(), run.progress, desc=f"zoo {run.profile.name}")
    return report_table.assign(
        model_id=[t["row"]["model_id"] for t in tasks], attack_params=[t["row"]["attack_params"] for t in tasks]
    ).drop(columns="row")
