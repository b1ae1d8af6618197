"""Which CUL settings reproduce the exposure on the `quick` model? Measured over a small zoo.

The `quick` recipe was chosen to keep the exposure sharp (no label smoothing, no weight averaging, few
epochs: the leads of issue #7). This study then runs Clean Unlearning with several optimiser settings on a
zoo of clean and backdoored models. To fit a CPU budget these are models of the notebooks' own zoo (seeds 0
and 1), so the chosen setting is, mildly, selected on models it is later scored on: only four preset
variants are compared, and the notebooks report every model, weak ones included. For each run it records, at the
collapse point, the shares of the defender's probe images (never unlearned on) per class, and the label
detection score against the defender's clean reference models.

Writes results/exposure_fidelity.csv and figures/exposure_fidelity.{png,pdf}.

    python benchmarks/exposure_fidelity.py --data-dir data
"""

from __future__ import annotations

import argparse
import json

import pandas as pd

from ebyd_utils import pipeline as pl
from ebyd_utils import plots, zoo
from ebyd_utils.config import get_profile
from ebyd_utils.core.store import write_csv
from ebyd_utils.defenses import detect_label, shares_at_stop

CUL_VARIANTS = {  # CULConfig overrides on the profile's CUL
    "Adam lr 1e-4, BN running stats": {"optimizer": "adam", "lr": 1e-4, "bn_eval": True},
    "SGD lr 1e-2, BN running stats": {"optimizer": "sgd", "lr": 1e-2, "bn_eval": True},
    "Adam lr 1e-4, BN batch stats": {"optimizer": "adam", "lr": 1e-4, "bn_eval": False},
    "Adam lr 3e-4, BN batch stats": {"optimizer": "adam", "lr": 3e-4, "bn_eval": False},
    "SGD lr 1e-2, BN batch stats": {"optimizer": "sgd", "lr": 1e-2, "bn_eval": False},
}
ZOO = [(None, 0), (None, 1), ("badnets", 0), ("badnets", 1), ("blend", 0)]


def run_variant(args, name, overrides) -> list[dict]:
    profile = get_profile(args.profile, cul=overrides)
    run = pl.setup(profile, args.data_dir, args.device, args.cache_dir, args.monitor_size, progress=False)
    refs = zoo.references(run)
    ref_shares = [shares_at_stop(pl.expose(run, r, monitor_size=0)[1]) for r in refs]
    rows = []
    for attack, seed in ZOO:
        suspect = pl.train_suspect(run, attack, seed)
        _, log = pl.expose(run, suspect)
        shares = shares_at_stop(log)
        det = detect_label(shares, ref_shares, profile.detection.threshold, bool(log.attrs["collapsed"]))
        stop = log.attrs.get("stop_epoch")
        at_stop = log[log.epoch == stop].iloc[0] if stop is not None else log.iloc[-1]
        target = suspect.attack.target if suspect.attack else None
        rows.append(
            {
                **pl.context(run),
                "seed": seed,
                "cul": name,
                "attack": suspect.label,
                "model_CA": suspect.record["CA"],
                "model_ASR": suspect.record.get("ASR"),
                "stop_epoch": stop,
                "CA_at_stop": at_stop.get("CA"),
                "ASR_at_stop": at_stop.get("ASR"),
                "target_share": float(shares[0 if target is None else target]),
                "top_share": float(shares.max()),
                "top_class": int(shares.argmax()),
                "detected_label": det.label,
                "score": det.score,
                "shares": json.dumps([round(s, 3) for s in shares.tolist()]),
            }
        )
        print(
            {
                k: rows[-1][k]
                for k in (
                    "cul",
                    "attack",
                    "seed",
                    "model_CA",
                    "stop_epoch",
                    "ASR_at_stop",
                    "target_share",
                    "top_share",
                    "top_class",
                    "detected_label",
                    "score",
                )
            },
            flush=True,
        )
    return rows


def fidelity_figure(df: pd.DataFrame):
    """Per CUL variant: the share of clean probe images on the target (backdoored models) against the largest
    class share of clean models, and the detection score against the clean references."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    plots.set_style()
    df = df.assign(
        model=df["attack"].map(plots.display_name),
        exposure_share=df["target_share"].where(df["attack"] != "clean", df["top_share"]),
    )
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.5 * df["cul"].nunique() + 2.2), sharey=True)
    palette = plots.palette(df["attack"].unique())
    palette = {plots.display_name(k): v for k, v in palette.items()}
    for ax, column, title in (
        (axes[0], "exposure_share", "share of probe images on the target\n(clean models: on their largest class)"),
        (axes[1], "score", "label-detection score vs clean references"),
    ):
        sns.stripplot(
            data=df, x=column, y="cul", hue="model", palette=palette, size=8, jitter=0.15, ax=ax, legend=ax is axes[1]
        )
        ax.set(title=title, xlabel="", ylabel="", xlim=(-0.05 if column == "score" else 0, 1.02))
    axes[1].axvline(0, color="grey", lw=0.8)
    axes[1].legend(title="", loc="lower right", fontsize=8)
    fig.suptitle(f"CUL settings on the quick model, at the collapse point ({df['dataset'].iloc[0]})")
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--cache-dir", default="cache")
    parser.add_argument("--monitor-size", type=int, default=1000)
    parser.add_argument("--variants", nargs="*", default=list(CUL_VARIANTS))
    args = parser.parse_args()
    df = pd.DataFrame([row for name in args.variants for row in run_variant(args, name, CUL_VARIANTS[name])])
    write_csv(df, "results/exposure_fidelity.csv")
    plots.save_figure(fidelity_figure(df), "exposure_fidelity", "figures")
