"""results/notebook_times.csv: one row per (notebook, profile, hardware), each time beside how many cached units
the run found and computed (a time from an empty cache and one from a warm cache are different numbers).

results/figures_cost.csv: where that time went, per (notebook, profile, hardware) and unit kind (model, cul,
trigger, repair, ...): how many units the run computed and the seconds their records say computing them took, and a
row "(other)" for the rest of the wall time (kernel start, evaluation, reading cached units, tables, figures).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from .store import read_record

TIME_COLUMNS = ["notebook", "profile", "seconds", "units_at_start", "units_computed", "hardware", "date"]


COST_COLUMNS = ["notebook", "profile", "kind", "units", "seconds", "hardware", "date"]
OTHER = "(other)"


def unit_files(cache_dir) -> set[Path]:
    """The unit files of a cache folder (cache_dir/<kind>/<key>.safetensors)."""
    return set(Path(cache_dir).glob("*/*.safetensors")) if Path(cache_dir).is_dir() else set()


def count_units(cache_dir) -> int:
    """Cached units in a cache folder (0: an empty cache): a time is read beside how much it could reuse."""
    return len(unit_files(cache_dir))


def _own_seconds(record: dict) -> float:
    """A unit's seconds less those of units computed inside it (records before own_seconds was kept: seconds)."""
    seconds = record.get("own_seconds", record.get("seconds"))
    return float(seconds or 0.0)


def unit_costs(paths, wall_seconds: float | None = None) -> pd.DataFrame:
    """Per unit kind, how many of the unit files `paths` there are and the seconds their records say computing
    them took, each second counted once (own_seconds: a unit computed inside another is not counted in both; columns
    kind, units, seconds); with `wall_seconds`, a row OTHER for the wall time the units do not
    account for (never below 0: units computed by other processes of a fan-out overlap)."""
    records = [(p.parent.name, r) for p in sorted(paths) if (r := read_record(p)) is not None]
    rows = pd.DataFrame(
        [{"kind": r.get("kind", kind), "seconds": _own_seconds(r)} for kind, r in records], columns=["kind", "seconds"]
    )
    table = rows.groupby("kind", as_index=False).agg(units=("seconds", "size"), seconds=("seconds", "sum"))
    if wall_seconds is not None:
        other = {"kind": OTHER, "units": 0, "seconds": max(0.0, wall_seconds - table["seconds"].sum())}
        table = pd.concat([table, pd.DataFrame([other])], ignore_index=True)
    return table.astype({"units": int}).assign(seconds=lambda t: t["seconds"].round(1))


def record_costs(costs_csv: Path, notebook: str, profile: str, hardware: str, costs: pd.DataFrame) -> pd.DataFrame:
    """Replace the rows of the same (notebook, profile, hardware) in costs_csv by `costs` (unit_costs' table)."""
    table = pd.read_csv(costs_csv) if costs_csv.exists() else pd.DataFrame(columns=COST_COLUMNS)
    same = (table["notebook"] == notebook) & (table["profile"] == profile) & (table["hardware"] == hardware)
    new = costs.assign(notebook=notebook, profile=profile, hardware=hardware, date=date.today().isoformat())
    table = pd.concat([table[~same], new[COST_COLUMNS]], ignore_index=True)
    table = table.sort_values(["profile", "hardware", "notebook", "kind"], ignore_index=True)
    costs_csv.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(costs_csv, index=False)
    return table


def record_time(times_csv: Path, row: dict) -> pd.DataFrame:
    """Replace the row of the same (notebook, profile, hardware), keep the others, sorted for stable diffs."""
    table = pd.read_csv(times_csv) if times_csv.exists() else pd.DataFrame(columns=TIME_COLUMNS)
    same = (
        (table["notebook"] == row["notebook"])
        & (table["profile"] == row["profile"])
        & (table["hardware"] == row["hardware"])
    )
    table = pd.concat([table[~same], pd.DataFrame([row])], ignore_index=True)
    table = table[TIME_COLUMNS].sort_values(["profile", "hardware", "notebook"], ignore_index=True)
    table = table.astype({"units_at_start": "Int64", "units_computed": "Int64"})  # counts: 5, not 5.0
    times_csv.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(times_csv, index=False)  # plain floats: seconds keep their decimal (write_csv rounds to 4 digits)
    return table


def time_row(name: str, profile: str, seconds: float, units_before: int, cache_dir, hardware: str) -> dict:
    """One row of the times table, the units computed counted now against `units_before`."""
    return {
        "notebook": name,
        "profile": profile,
        "seconds": round(seconds, 1),
        "units_at_start": units_before,
        "units_computed": count_units(cache_dir) - units_before,
        "hardware": hardware,
        "date": date.today().isoformat(),
    }


def record_run(results_dir, name: str, profile: str, seconds: float, before: set, cache_dir, hardware: str) -> None:
    """One run's wall time (notebook_times.csv) and its cost by unit kind (figures_cost.csv), `before` being the
    unit files the cache held when it started."""
    record_time(
        Path(results_dir) / "notebook_times.csv", time_row(name, profile, seconds, len(before), cache_dir, hardware)
    )
    costs = unit_costs(unit_files(cache_dir) - before, wall_seconds=seconds)
    record_costs(Path(results_dir) / "figures_cost.csv", name, profile, hardware, costs)
