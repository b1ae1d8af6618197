"""What Clean Unlearning does to each model (EBYD, Li et al. 2024, Sec. 3; notebook 02), evaluation side: the
per-epoch log of a CUL run (`pipeline.expose`) in tidy form, with the test CA / ASR of its evaluation monitor.
"""

from __future__ import annotations

import pandas as pd

from ..pipeline import Run, Suspect, context


def exposure_table(run: Run, suspect: Suspect, log: pd.DataFrame) -> pd.DataFrame:
    """The CUL log in tidy form: one row per (epoch, metric); shares as metric 'share' with a class column."""
    ctx = {
        **context(run),
        "model_id": suspect.model_id,
        "seed": suspect.seed,
        "attack": suspect.label,
        "stop_epoch": log.attrs.get("stop_epoch"),
    }
    rows = []
    for record in log.to_dict("records"):
        for column, value in record.items():
            if column == "epoch":
                continue
            split, _, cls = column.partition("_share_")
            row = {**ctx, "epoch": record["epoch"], "metric": column, "class": None, "value": float(value)}
            if cls:
                row.update(metric=f"{split}_share", **{"class": int(cls)})
            rows.append(row)
    return pd.DataFrame(rows)


def at_stop(cul: pd.DataFrame) -> pd.DataFrame:
    """The rows of exposure_table(s) at each model's stop epoch (its last epoch when CUL never collapsed)."""
    last_epoch = cul.groupby("model_id")["epoch"].transform("max")
    stop_epoch = pd.to_numeric(cul["stop_epoch"], errors="coerce").fillna(last_epoch)
    return cul[cul["epoch"] == stop_epoch]


def share_changes(cul: pd.DataFrame) -> pd.DataFrame:
    """Each model's probe shares before CUL and at its stop epoch (column `when`), for plots.class_share_bars."""
    stop = at_stop(cul)
    return pd.concat(
        [
            cul[(cul["epoch"] == 0) & (cul["metric"] == "probe_share")].assign(when="before CUL"),
            stop[stop["metric"] == "probe_share"].assign(when="at stop epoch"),
        ]
    )


def cul_summary(cul: pd.DataFrame) -> pd.DataFrame:
    """One row per model (index model_id, attack, seed) at its stop epoch: defense accuracy, test CA and ASR (the
    monitor's), the stop epoch, the probe share of its target and the largest share of any other class."""
    stop = at_stop(cul)
    keys = ["model_id", "attack", "seed"]
    probe = stop[stop["metric"] == "probe_share"]
    is_target = probe["class"] == probe["target"]
    scalars = stop[stop["class"].isna()].pivot_table(index=keys, columns="metric", values="value")
    return scalars.reindex(columns=["defense_acc", "CA", "ASR"]).assign(
        stop_epoch=stop.groupby(keys)["epoch"].first(),
        target_share=probe[is_target].set_index(keys)["value"],
        largest_other_share=probe[~is_target].groupby(keys)["value"].max(),
    )


def attack_lines(summary: pd.DataFrame) -> list[str]:
    """One plain line per model of cul_summary: where CUL stopped (or that it never did), and the share of clean
    probe images its exposed copy sends to its target beside the largest share of any other class."""
    lines = []
    for (model_id, attack, _), row in summary.iterrows():
        stop = (
            "never reached its stop rule" if pd.isna(row["stop_epoch"]) else f"stopped at epoch {row['stop_epoch']:.0f}"
        )
        share = (
            (
                f"sends {row['target_share']:.2f} of the probe images to its target (largest other class "
                f"{row['largest_other_share']:.2f})"
            )
            if pd.notna(row["target_share"])
            else "has no single target"
        )
        lines.append(f"{attack} ({model_id}): CUL {stop}; the exposed model {share}.")
    return lines
