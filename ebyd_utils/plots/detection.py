"""Notebook 05's figures: ROC curves of each detector with and without exposure, and the score of every model
per attack with the clean models beside them."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from sklearn.metrics import roc_curve

from .style import display_name, model_order, palette

EXPOSURE_STYLE = {"none": ("suspect (no exposure)", "#8c8c8c", "--"), "CUL": ("exposed by CUL", "#d55e00", "-")}
DETECTOR_NAMES = {
    "exposure": "EBYD exposure score",
    "unlearning": "unlearning (share variance)",
    "nc": "Neural Cleanse",
    "mmbd": "MM-BD",
}


def roc_panels(scores: pd.DataFrame, metrics: pd.DataFrame | None = None):
    """One panel per detector: the ROC curve (backdoored vs clean) on the suspect and on the exposed model, the
    AUC and its 95% interval in the legend when `metrics` (detection_metrics.metrics_table) is given."""
    detectors = list(dict.fromkeys(scores["detector"]))
    fig, axes = plt.subplots(1, len(detectors), figsize=(3.3 * len(detectors), 3.4), squeeze=False)
    for ax, detector in zip(axes[0], detectors):
        for exposure, (name, color, ls) in EXPOSURE_STYLE.items():
            g = scores[(scores["detector"] == detector) & (scores["exposure"] == exposure)]
            if g.empty or g["backdoored"].nunique() < 2:
                continue
            fpr, tpr, _ = roc_curve(g["backdoored"].astype(int), g["score"])
            label = name
            if metrics is not None:
                m = metrics[(metrics["detector"] == detector) & (metrics["exposure"] == exposure)].iloc[0]
                label += f"\nAUC {m['roc_auc']:.2f} [{m['auc_low']:.2f}, {m['auc_high']:.2f}]"
            ax.plot(fpr, tpr, color=color, ls=ls, lw=2, drawstyle="steps-post", label=label)
        ax.plot([0, 1], [0, 1], color="black", lw=0.6, alpha=0.4)
        ax.set(
            title=DETECTOR_NAMES.get(detector, detector),
            xlabel="false-positive rate (clean flagged)",
            ylabel="true-positive rate",
            xlim=(-0.02, 1.02),
            ylim=(-0.02, 1.02),
            aspect="equal",
        )
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def score_strips(scores: pd.DataFrame):
    """Per detector (row) and exposure (column): every model's score by attack, clean models first; hollow
    diamonds are the drawn models (random trigger, target and rate), circles the per-attack rows."""
    detectors = list(dict.fromkeys(scores["detector"]))
    order = model_order(scores["attack"])
    fig, axes = plt.subplots(len(detectors), 2, figsize=(8.4, 2.3 * len(detectors)), squeeze=False, sharex=True)
    for i, detector in enumerate(detectors):
        for j, exposure in enumerate(EXPOSURE_STYLE):
            ax = axes[i, j]
            g = scores[(scores["detector"] == detector) & (scores["exposure"] == exposure)]
            for role, marker in (("suspect", "o"), ("drawn", "D")):
                part = g[g["role"] == role]
                if part.empty:
                    continue
                sns.stripplot(
                    part,
                    x="attack",
                    y="score",
                    hue="attack",
                    order=order,
                    hue_order=order,
                    palette=palette(order),
                    marker=marker,
                    size=6,
                    jitter=0.15,
                    linewidth=0.8,
                    edgecolor="black",
                    legend=False,
                    ax=ax,
                    alpha=0.9 if role == "suspect" else 0.55,
                )
            ax.set(
                title=f"{DETECTOR_NAMES.get(detector, detector)}, {EXPOSURE_STYLE[exposure][0]}",
                xlabel="",
                ylabel="score" if j == 0 else "",
            )
            ax.title.set_fontsize(9)
            ax.set_xticks(range(len(order)), [display_name(n) for n in order], rotation=30, ha="right")
    fig.text(
        0.5,
        -0.01,
        "circles: per-attack rows (default trigger, target 0); diamonds: drawn models (random trigger, target, rate)",
        ha="center",
        fontsize=8,
    )
    fig.tight_layout()
    return fig
