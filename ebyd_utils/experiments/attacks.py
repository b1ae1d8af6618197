"""What each attack reached (notebook 01): each model's CA / ASR / RA (`model_table`), per attack whether it
implanted at this scale (`attack_summary`), and the paper's reported ASR beside ours where the paper states one.

The paper's tables are not available offline, so PAPER_ASR is empty: a cell is filled only from the paper
itself, with its table cited in PAPER_ASR_SOURCE, never from memory or another paper.
"""

from __future__ import annotations

import pandas as pd

from ..core.store import tidy_rows
from ..pipeline import Run, context

IMPLANT_ASR = 0.5  # an attack "implanted" when its ASR on the test set reaches this
PAPER_ASR: dict = {}  # attack -> ASR (0-1) on CIFAR-10 as the EBYD paper reports it (none known offline)
PAPER_ASR_SOURCE: dict = {}  # attack -> "Li et al. 2024, Table N"


def attack_summary(metrics: pd.DataFrame, implant_asr: float = IMPLANT_ASR) -> pd.DataFrame:
    """One row per attack (mean over its models) from model_table's tidy rows: CA, ASR, RA, the seeds and models, the
    trained component's seconds (if any), `implanted` (ASR >= implant_asr; None for the clean control), and the
    paper's ASR with its source (empty where the paper's number is not known here)."""
    if not 0 < implant_asr <= 1:
        raise ValueError(f"implant_asr must be in (0, 1]; got {implant_asr!r}")
    wide = metrics.pivot_table(index=["model_id", "attack", "seed"], columns="metric", values="value").reset_index()
    table = wide.groupby("attack").agg(
        **{m: (m, "mean") for m in ("CA", "ASR", "RA", "component_seconds") if m in wide},
        seeds=("seed", "nunique"),
        models=("model_id", "nunique"),
    )
    if "ASR" in table:
        table["implanted"] = [None if pd.isna(asr) else bool(asr >= implant_asr) for asr in table["ASR"]]
    table["paper_ASR"] = [PAPER_ASR.get(name) for name in table.index]  # keyed by attack label (e.g. an
    table["paper_source"] = [
        PAPER_ASR_SOURCE.get(name, "not available offline") if name != "clean" else "" for name in table.index
    ]  # all-to-all variant has its own)
    return table


def implant_lines(summary: pd.DataFrame) -> list[str]:
    """Plain statements of the attacks that did not implant, with the ASR they reached."""
    if "implanted" not in summary:
        return []
    missed = summary[summary["implanted"] == False]  # noqa: E712  (None = clean control)
    return [
        f"{name} did not implant at this scale: ASR {row.ASR:.2f} < {IMPLANT_ASR} (CA {row.CA:.2f})"
        for name, row in missed.iterrows()
    ]


def model_table(run: Run, suspects) -> pd.DataFrame:
    """Tidy CA / ASR / RA / training time of each model, one row per (model_id, metric); `hardware` is where the
    model was trained (a zoo built by workers elsewhere keeps their name), `threads` the torch threads it
    trained with."""
    ctx = context(run)
    metrics = ("CA", "ASR", "RA", "train_seconds", "n_poisoned")

    def values(s):
        out = {m: s.record[m] for m in metrics if m in s.record}
        component = getattr(s.attack, "component_record", None)
        if component:  # an attack's trained part (surrogate, generator, encoder): its own cached unit's seconds
            out["component_seconds"] = component["seconds"]
        return out

    return pd.DataFrame(
        [
            row
            for s in suspects
            for row in tidy_rows(
                values(s),
                **{**ctx, "hardware": s.record["hardware"]},
                seed=s.seed,
                model_id=s.model_id,
                attack=s.label,
                threads=s.record["threads"],
            )
        ]
    )


def attack_lines(summary: pd.DataFrame, implant_asr: float = IMPLANT_ASR) -> list[str]:
    """One plain line per attack of attack_summary (its index): ASR and CA over its models, and whether it
    implanted (ASR >= implant_asr), with n."""
    lines = []
    for name, row in summary.iterrows():
        if name == "clean" or pd.isna(row.get("ASR")):
            lines.append(f"{name}: CA {row['CA']:.3f} (n = {int(row['models'])} models; no trigger)")
            continue
        word = "implanted" if row["ASR"] >= implant_asr else f"did not implant (ASR < {implant_asr})"
        lines.append(f"{name}: ASR {row['ASR']:.3f}, CA {row['CA']:.3f} (n = {int(row['models'])}): {word}")
    return lines
