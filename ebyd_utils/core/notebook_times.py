"""results/notebook_times.csv: one row per (notebook, profile, hardware), each time beside how many cached units
the run found and computed (a time from an empty cache and one from a warm cache are different numbers)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

TIME_COLUMNS = ["notebook", "profile", "seconds", "units_at_start", "units_computed", "hardware", "date"]


def count_units(cache_dir) -> int:
    """Cached units in a cache folder (0: an empty cache): a time is read beside how much it could reuse."""
    return sum(1 for _ in Path(cache_dir).glob("*/*.safetensors")) if Path(cache_dir).is_dir() else 0


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
