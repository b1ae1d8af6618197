"""The Markdown blocks of docs/results.md (`report.py` assembles the page): reading a section's CSV, tables,
bullets, a section's frame, and the sections of notebooks 07 and 08."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .experiments import ablations, claims, exposure_methods, feature_view


def _read(results: Path, name: str) -> pd.DataFrame | None:
    """A section's CSV (with its models' ids, claims.with_model_id), or None when the section has not run."""
    path = results / name
    if not path.exists():
        return None
    table = pd.read_csv(path)
    return claims.with_model_id(table) if {"attack", "seed"} <= set(table.columns) else table


def _table(frame: pd.DataFrame, digits: int = 3) -> str:
    """A DataFrame as a Markdown table (no index), numbers rounded."""
    frame = frame.round(digits)
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join("" if pd.isna(v) else str(v) for v in row) + " |" for row in frame.to_numpy()]
    return "\n".join(lines)


def _bullets(lines: list[str]) -> str:
    return "\n".join(f"- {line}" for line in lines)


def _where(table: pd.DataFrame) -> str:
    """Profile, dataset and hardware of a table, as its rows name them."""
    parts = [
        ", ".join(sorted(set(map(str, table[c].dropna())))) for c in ("profile", "dataset", "hardware") if c in table
    ]
    return "; ".join(p for p in parts if p)


def _section(title: str, source: str, *blocks: str) -> list[str]:
    """A section of the page: its title, where its numbers come from, then each block followed by a blank line."""
    out = [f"## {title}", "", source, ""]
    for block in blocks:
        out += [block, ""]
    return out


def exposure_and_ablation_sections(results: Path) -> list[str]:
    out = []
    methods, summary = _read(results, "07_exposure_methods.csv"), _read(results, "07_method_summary.csv")
    if methods is not None and summary is not None:
        source = (
            "From `results/07_exposure_methods.csv` and `07_method_summary.csv` (every method read against "
            "references exposed by the same method; ROC AUC with its 95% bootstrap interval over the models)."
        )
        cols = ["name", "detection_power", "n_backdoored", "false_flags_on_clean", "n_clean", "roc_auc"]
        cols += ["auc_low", "auc_high", "median_seconds", "threshold"]
        lines = exposure_methods.verdict_lines(methods, summary)
        out += _section("07 · Other exposures", source, _table(summary[cols]), _bullets(lines))
    sweeps, view = _read(results, "08_ablations.csv"), _read(results, "08_feature_summary.csv")
    if sweeps is not None:
        source = (
            "From `results/08_ablations.csv` (each point beside a clean control exposed the same way) and "
            "`08_feature_summary.csv` (penultimate features before and after CUL)."
        )
        blocks = [_bullets(ablations.sweep_lines(sweeps))]
        if view is not None:
            blocks.append(_bullets(feature_view.view_lines(view)))
        out += _section("08 · Ablations", source, *blocks)
    return out


def benchmark_lines(results: Path) -> list[str]:
    """`make bench`'s measurements (results/benchmarks.csv) but the notebook wall times shown above: training
    throughput and the step's share of the machine's matmul peak, time to a clean accuracy, and seconds per model of
    each defense and exposure method, each row with its hardware and date."""
    bench = _read(results, "benchmarks.csv")
    if bench is None:
        return []
    bench = bench[bench["benchmark"] != "notebook"].assign(value=lambda t: t["value"].map(lambda v: f"{v:.4g}"))
    intro = (
        "From `results/benchmarks.csv` (`make bench`; rows of other profiles or machines are kept until measured "
        "again): ratios `ours/reference` are ours against the official code's style of loop in the same run."
    )
    columns = ["benchmark", "loop", "metric", "value", "unit", "profile", "hardware", "date"]
    return ["### Benchmarks", "", *step_lines(_read(results, "benchmarks.csv")), intro, "", _table(bench[columns]), ""]


STEP_READINGS = {  # (benchmark, loop, metric) -> column of the per-CPU summary
    ("train_throughput", "ours", "images_per_s"): "ours img/s",
    ("train_throughput", "reference", "images_per_s"): "anchors-style img/s",
    ("train_throughput", "ours/reference", "speedup"): "img/s ratio",
    ("time_to_ca", "ours/reference", "speedup"): "time-to-CA ratio",
    ("step_efficiency", "ours", "achieved_gflops"): "step GFLOP/s",
    ("step_efficiency", "matmul bfloat16", "peak_gflops"): "bf16 matmul peak GFLOP/s",
    ("step_efficiency", "ours", "share_of_peak"): "share of peak",
}


def step_lines(bench: pd.DataFrame) -> list[str]:
    """The training step per CPU kind, one row each: its img/s against the anchors-style loop's (same model, steps
    and run), the ratio to a CA of 0.80, and its GFLOP/s as a share of the same run's bf16 matmul peak."""
    keys = bench.set_index(["benchmark", "loop", "metric"]).index
    rows = bench[keys.isin(list(STEP_READINGS))]
    if rows.empty:
        return []
    rows = rows.assign(reading=[STEP_READINGS[k] for k in zip(rows["benchmark"], rows["loop"], rows["metric"])])
    table = rows.pivot_table("value", ["profile", "hardware"], "reading", aggfunc="last")
    table = table[[c for c in STEP_READINGS.values() if c in table.columns]].reset_index()
    intro = (
        "The training step per CPU kind (`make bench`; the `ratio` columns: ours over the anchors-style loop in the "
        "same run, on the same model, steps and images; the target is 4x the anchors' img/s):"
    )
    return [intro, "", _table(table), ""]
