"""The zoo as data: which models a profile trains, as a table of model specs, and the units that build them.

    table = zoo_table(profile)                               # one row per model; results/zoo_<profile>.csv
    suspects = models(profile, data, table.query("role == 'suspect' and seed == 0"), cache_dir)
    report = build(profile, data_dir="data", workers=4)      # every unit of the zoo, fanned out over Ray

    python -m ebyd_utils.zoo --profile quick --workers 4     # the same from a shell, with a progress bar

A row is everything that makes a model: model_id, role ("suspect": one model per attack and seed, the rows of
notebooks 01-04; "drawn": the model-detection zoo's extra clean models and backdoored ones with drawn triggers,
targets and rates, from notebook 05 on; "reference": the defender's clean reference models), architecture, attack ("clean" or a registry name), target, rate, seed and attack_params
(JSON of every parameter of the attack, so the row alone rebuilds it). Notebooks, tests and benchmarks ask for
models by rows, and every section reuses the same cached models. The profile's `zoo` section says which rows
exist (`config.ZooConfig`); its `detection.n_reference` how many references.

The units of a zoo are its models and their Clean Unlearning runs (`detection.restarts` per model, the first
with the evaluation monitor on DEFAULT_MONITOR_SIZE test images, as notebooks 02 and 03 ask for them), so a
pre-built zoo leaves the notebooks nothing to compute.
"""
from __future__ import annotations

import json

import pandas as pd

from .attacks import ATTACKS, make_attack
from .config import Profile, as_dict
from .data import ImageData
from .pipeline import Suspect, expose_restarts, setup, train_suspect
from .progress import eta, report
from .zoo_draws import DRAWN_SEED_OFFSET, dataset_shape, draw_attack, drawn_rows  # noqa: F401  (re-exported)

REFERENCE_SEED_OFFSET = 1000   # the defender's clean reference models use seeds 1000, 1001, ... (never a zoo seed)
DEFAULT_MONITOR_SIZE = 2000    # test images of the CUL monitor (notebooks 02 and 03 default to it)
TABLE_COLUMNS = ["model_id", "role", "architecture", "attack", "target", "rate", "seed", "attack_params"]


# ------------------------------------------------------------------------------------------- the table
def zoo_table(profile: Profile) -> pd.DataFrame:
    """The profile's zoo, one row per model: for every seed a clean control (if zoo.clean) and one model per
    attack; at the first seed also the one-seed attacks and the all-to-all variants; then the drawn rows
    (zoo_draws) and the defender's clean references."""
    zoo = profile.zoo
    _check_zoo(profile)
    rows = []
    for k, seed in enumerate(zoo.seeds):
        if zoo.clean:
            rows.append(_row(profile, f"clean-s{seed}", "suspect", None, seed))
        names = list(zoo.attacks) + (list(zoo.one_seed_attacks) if k == 0 else [])
        for name in names:
            attack = make_attack(name, **_attack_settings(zoo, name, seed))
            rows.append(_row(profile, f"{name}-s{seed}", "suspect", attack, seed))
        for name in (zoo.all_to_all if k == 0 else ()):
            attack = make_attack(name, **_attack_settings(zoo, name, seed), all_to_all=True)
            rows.append(_row(profile, f"{name}-all2all-s{seed}", "suspect", attack, seed))
    rows += drawn_rows(profile, _row)
    for i in range(profile.detection.n_reference):
        rows.append(_row(profile, f"reference-{i}", "reference", None, REFERENCE_SEED_OFFSET + i))
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def _attack_settings(zoo, name: str, seed: int) -> dict:
    """target, rate (when the zoo sets one) and the zoo's per-attack settings; the seed is the model's."""
    return {"seed": seed, "target": zoo.target, **({"rate": zoo.rate} if zoo.rate else {}),
            **zoo.attack_params.get(name, {})}


def _check_zoo(profile: Profile) -> None:
    zoo = profile.zoo
    for field in ("attacks", "one_seed_attacks", "all_to_all"):
        unknown = set(getattr(zoo, field)) - set(ATTACKS)
        if unknown:
            raise ValueError(f"zoo.{field} names unknown attack(s) {sorted(unknown)}; choose from {sorted(ATTACKS)}")
    both = sorted(set(zoo.attacks) & set(zoo.one_seed_attacks))
    if both:
        raise ValueError(f"{both} are in both zoo.attacks (every seed) and zoo.one_seed_attacks (first seed); "
                         f"list each attack once")
    clean_label = sorted(n for n in zoo.all_to_all if ATTACKS[n].clean_label)
    if clean_label:
        raise ValueError(f"zoo.all_to_all: {clean_label} keep their labels (clean-label), so they have no "
                         f"all-to-all variant; list dirty-label attacks only")
    unknown = set(zoo.attack_params) - set(ATTACKS)
    if unknown:
        raise ValueError(f"zoo.attack_params names unknown attack(s) {sorted(unknown)}; choose from {sorted(ATTACKS)}")
    if not zoo.seeds and (zoo.one_seed_attacks or zoo.all_to_all):
        raise ValueError("zoo.one_seed_attacks and zoo.all_to_all use the first of zoo.seeds; give at least one seed")
    if not 0 <= zoo.rate < 1:
        raise ValueError(f"zoo.rate must be in [0, 1) (0 = each attack's default rate); got {zoo.rate}")
    num_classes, _ = dataset_shape(profile)
    if not (isinstance(zoo.target, int) and 0 <= zoo.target < num_classes):
        raise ValueError(f"zoo.target must be a class index in [0, {num_classes - 1}] for {profile.data.dataset}; "
                         f"got {zoo.target!r}")


def _row(profile, model_id, role, attack, seed) -> dict:
    params = attack.params() if attack is not None else None
    return {"model_id": model_id, "role": role, "architecture": profile.train.model,
            "attack": attack.label if attack else "clean", "target": attack.single_target if attack else None,
            "rate": params["rate"] if params else None, "seed": seed,
            "attack_params": json.dumps(params, sort_keys=True) if params else ""}


def section_rows(table: pd.DataFrame, seeds=(), attacks=()) -> pd.DataFrame:
    """The per-attack suspects a section runs on: those of these seeds and these attack labels (e.g. "badnets",
    "badnets-all2all"); empty = all. The clean controls of the chosen seeds always stay."""
    unknown = set(attacks) - set(table["attack"])
    if unknown:
        raise ValueError(f"attacks {sorted(unknown)} are not in the zoo; it has {sorted(set(table['attack']))}")
    rows = table[table["role"] == "suspect"]
    rows = rows[rows["seed"].isin(seeds)] if seeds else rows
    return rows[rows["attack"].isin(("clean", *attacks))] if attacks else rows


def attack_of(row):
    """The attack a zoo row names (evaluation side), rebuilt from its parameters; None for a clean model."""
    if row["attack"] == "clean":
        return None
    params = json.loads(row["attack_params"])
    return make_attack(params.pop("attack"), **params)


def write_table(table: pd.DataFrame, profile: Profile, results_dir) -> str:
    """results/zoo_<profile>.csv: the zoo a reader sees."""
    from pathlib import Path

    from .results import write_csv
    return str(write_csv(table.assign(profile=profile.name), Path(results_dir) / f"zoo_{profile.name}.csv"))


# ------------------------------------------------------------------------------ models and exposures
def models(profile: Profile, data: ImageData, rows: pd.DataFrame, cache_dir="cache",
           progress: bool = True) -> list[Suspect]:
    """The models of these zoo rows (trained, or loaded from the cache), in the rows' order."""
    return _each(rows.to_dict("records"), "model", "models",
                 lambda row: train_suspect(profile, data, attack_of(row), int(row["seed"]), cache_dir, progress),
                 lambda s: s.record["computed"])


def references(profile: Profile, data: ImageData, cache_dir="cache", progress: bool = True) -> list[Suspect]:
    """The defender's clean reference models: same architecture and recipe, their own seeds."""
    table = zoo_table(profile)
    return models(profile, data, table[table["role"] == "reference"], cache_dir, progress)


def exposures(profile: Profile, data: ImageData, suspects, cache_dir="cache",
              monitor_size: int = DEFAULT_MONITOR_SIZE, progress: bool = True) -> list[list]:
    """Every suspect's CUL restarts (pipeline.expose_restarts): one list of logs per suspect."""
    return _each(suspects, "CUL", "models' CUL restarts",
                 lambda s: expose_restarts(profile, data, s, cache_dir, monitor_size, progress),
                 lambda logs: any(log.attrs.get("computed") for log in logs))


def _each(items, what: str, noun: str, make, was_computed) -> list:
    """make(item) for every item, reporting each computed one (k/n, time left) on the progress channel."""
    import time

    out, computed, start = [], 0, time.perf_counter()
    for k, item in enumerate(items, 1):
        out.append(make(item))
        if was_computed(out[-1]):
            computed += 1
            report(f"{what} {eta(k, len(items), time.perf_counter() - start)}")
    report(f"{what}: {len(items)} {noun}, {computed} computed, {len(items) - computed} from the cache")
    return out


# --------------------------------------------------------------------------------- building a zoo
def zoo_tasks(profile: Profile, table: pd.DataFrame | None = None,
              monitor_size: int = DEFAULT_MONITOR_SIZE) -> list[dict]:
    """The units of a zoo as tasks for fanout.run_tasks: each model, then its CUL restarts (which need it)."""
    table = zoo_table(profile) if table is None else table
    tasks = []
    for row in table.to_dict("records"):
        model_task = f"model:{row['model_id']}"
        tasks.append({"id": model_task, "kind": "model", "row": row, "after": None})
        for r in range(profile.detection.restarts):
            tasks.append({"id": f"cul:{row['model_id']}:{r}", "kind": "cul", "row": row, "restart": r,
                          "monitor_size": monitor_size if r == 0 else 0, "after": model_task})
    return tasks


_DATA = {}   # per process: a worker loads the dataset once and reuses it for every task it runs


def run_task(context: dict, task: dict) -> dict:
    """One zoo unit (fanout's `fn`): train a model or run one CUL restart; returns whether it computed."""
    profile = context["profile"]
    memo = json.dumps([as_dict(profile.data), str(context["data_dir"]), str(context["cache_dir"]),
                       context["device"]])
    if memo not in _DATA:
        _DATA.clear()
        _DATA[memo] = setup(profile, context["data_dir"], context["device"], context["cache_dir"])
    data, row = _DATA[memo], task["row"]
    suspect = train_suspect(profile, data, attack_of(row), int(row["seed"]), context["cache_dir"], progress=False)
    if task["kind"] == "model":
        return {"computed": suspect.record["computed"]}
    from .pipeline import expose
    _, log = expose(profile, data, suspect, context["cache_dir"], task["monitor_size"], progress=False,
                    restart=task["restart"])
    return {"computed": bool(log.attrs.get("computed"))}


def build(profile: Profile, table: pd.DataFrame | None = None, data_dir=None, cache_dir="cache", device="auto",
          workers: int = 0, address: str | None = None, threads: int | None = None, gpus_per_task: float = 0.0,
          monitor_size: int = DEFAULT_MONITOR_SIZE, progress: bool = True) -> pd.DataFrame:
    """Compute every missing unit of the zoo (in-process when workers == 0 and no address; else Ray tasks),
    and return fanout's report: one row per unit with status, computed, seconds, error and its parameters."""
    from .fanout import run_tasks

    tasks = zoo_tasks(profile, table, monitor_size)
    context = {"profile": profile, "data_dir": data_dir, "cache_dir": str(cache_dir), "device": device}
    report_table = run_tasks(run_task, context, tasks, workers, address, threads, gpus_per_task, progress,
                             desc=f"zoo {profile.name}")
    return report_table.assign(model_id=[t["row"]["model_id"] for t in tasks],
                               attack_params=[t["row"]["attack_params"] for t in tasks]).drop(columns="row")


# ------------------------------------------------------------------------------------------ command
def parse_overrides(items) -> dict:
    """["train.epochs=2", "zoo.seeds=(0,)"] -> {"train": {"epochs": 2}, "zoo": {"seeds": (0,)}}."""
    import ast

    out = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        section, dot, field = name.partition(".")
        if not sep or not dot:
            raise ValueError(f"--set takes section.field=value, e.g. train.epochs=2; got {item!r}")
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            pass   # a plain string, e.g. model=resnet18
        out.setdefault(section, {})[field] = value
    return out


def main(argv=None) -> int:
    import argparse
    import sys

    from .config import PROFILES, get_profile

    ap = argparse.ArgumentParser(description="Pre-build a profile's zoo: every model and CUL run, cached.")
    ap.add_argument("--profile", default="quick", choices=sorted(PROFILES))
    ap.add_argument("--data-dir", default="data")
    ap.add_argument("--cache-dir", default="cache")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--workers", type=int, default=0, help="Ray workers on this machine (0: in-process, no Ray)")
    ap.add_argument("--address", default=None, help="a Ray cluster's address (e.g. auto or ray://host:10001)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads per unit (default: all cores in-process, cores / workers with Ray)")
    ap.add_argument("--gpus-per-task", type=float, default=0.0, help="GPU share per Ray task, e.g. 0.33")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                    help="override a profile setting, e.g. --set train.epochs=2 (repeatable)")
    ap.add_argument("--results-dir", default="results", help="where zoo_<profile>.csv is written")
    ap.add_argument("--report", default=None, help="write the per-unit build report to this CSV")
    ap.add_argument("--table-only", action="store_true", help="write the zoo's table, build nothing")
    args = ap.parse_args(argv)
    profile = get_profile(args.profile, **parse_overrides(args.set))
    table = zoo_table(profile)
    print(f"zoo {profile.name}: {len(table)} models -> {write_table(table, profile, args.results_dir)}")
    if args.table_only:
        return 0
    result = build(profile, table, args.data_dir, args.cache_dir, args.device, args.workers, args.address,
                   args.threads, args.gpus_per_task)
    if args.report:
        result.to_csv(args.report, index=False)
    counts = result["status"].value_counts().to_dict()
    print(f"zoo {profile.name}: {len(result)} units, {int(result['computed'].sum())} computed, "
          f"{counts.get('done', 0) - int(result['computed'].sum())} from the cache, "
          f"{counts.get('failed', 0)} failed, {counts.get('skipped', 0)} skipped")
    bad = result[result["status"] != "done"]
    if len(bad):
        print(bad[["id", "status", "error", "attack_params"]].to_string(index=False), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
