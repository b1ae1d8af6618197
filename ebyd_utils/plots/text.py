"""The text track's figures (notebook 09): exposure curves with the clean control, detection scores per reading,
and the input-level baselines."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from .style import CLEAN, color_of, display_name, model_order

CURVE_PANELS = (
    ("defense accuracy", "defense_acc"),
    ("probe share of the target", "target_share"),
    ("test CA (evaluation)", "CA"),
    ("ASR (evaluation)", "ASR"),
)
LABEL_STYLES = ("--", ":", "-.", (0, (5, 1)))  # a clean model's share of label 0, 1, 2, 3


def exposure_curves(logs: pd.DataFrame):
    """One row of panels per exposure: defense accuracy, the target label's share of the probe rows, test CA and
    ASR against the epoch, one line per model (clean control and references dashed grey).

    `logs`: columns exposure, attack, role ("suspect" / "reference"), epoch, and the panel metrics."""
    exposures = list(dict.fromkeys(logs["exposure"]))
    fig, axes = plt.subplots(
        len(exposures),
        len(CURVE_PANELS),
        figsize=(3.3 * len(CURVE_PANELS), 2.7 * len(exposures)),
        squeeze=False,
        sharex="row",
    )
    for row, exposure in zip(axes, exposures):
        part = logs[logs["exposure"] == exposure]
        for ax, (title, metric) in zip(row, CURVE_PANELS):
            for (attack, role, _), g in part.groupby(["attack", "role", "model_id"], sort=False):
                width, alpha = (1.0, 0.6) if role == "reference" else (1.6, 1.0)
                if metric == "target_share" and attack == CLEAN:
                    # a clean model has no target: draw its share of every label some attack targets
                    for label in sorted(logs["target"].dropna().unique()):
                        ax.plot(
                            g["epoch"],
                            g[f"share_{int(label)}"],
                            color=color_of(CLEAN),
                            lw=width,
                            alpha=alpha,
                            ls=LABEL_STYLES[int(label) % len(LABEL_STYLES)],
                        )
                    continue
                if metric not in g or g[metric].isna().all():
                    continue
                ax.plot(
                    g["epoch"],
                    g[metric],
                    color=color_of(attack),
                    lw=width,
                    alpha=alpha,
                    ls="--" if attack == CLEAN else "-",
                )
            ax.set(title=f"{exposure}: {title}", xlabel="epoch", ylim=(-0.03, 1.03))
            ax.title.set_fontsize(9)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    names = model_order(logs["attack"])
    handles = [
        Line2D([], [], color=color_of(n), ls="--" if n == CLEAN else "-", label=display_name(n))
        for n in names
        if n != CLEAN
    ]
    handles += [
        Line2D(
            [],
            [],
            color=color_of(CLEAN),
            ls=LABEL_STYLES[int(t) % len(LABEL_STYLES)],
            label=f"clean (thin: references), share of label {int(t)}",
        )
        for t in sorted(logs["target"].dropna().unique())
    ]
    fig.legend(
        handles=handles, loc="lower center", ncol=min(len(handles), 5), frameon=False, bbox_to_anchor=(0.5, -0.04)
    )
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def _dot_columns(rows: pd.DataFrame, wrong_of=None):
    """One column per exposure and one dot per model in it, coloured by attack, an X where `wrong_of(rows)` is
    True, a legend of the attacks beside. Returns (fig, ax, exposures); the caller adds thresholds and labels."""
    exposures = list(dict.fromkeys(rows["exposure"]))
    order = model_order(rows["attack"])
    fig, ax = plt.subplots(figsize=(1.3 + 1.25 * len(exposures), 3.6))
    width = 0.8 / max(len(order), 1)
    for i, exposure in enumerate(exposures):
        part = rows[rows["exposure"] == exposure]
        for j, attack in enumerate(order):
            g = part[part["attack"] == attack]
            wrong = wrong_of(g) if wrong_of else pd.Series(False, index=g.index)
            for subset, marker in ((g[~wrong], "o"), (g[wrong], "X")):
                ax.scatter(
                    [i - 0.4 + (j + 0.5) * width] * len(subset),
                    subset["score"],
                    color=color_of(attack),
                    marker=marker,
                    edgecolor="black",
                    linewidth=0.5,
                    s=40,
                    zorder=3,
                )
    handles = [Line2D([], [], ls="", marker="o", color=color_of(n), label=display_name(n)) for n in order]
    ax.legend(handles=handles, fontsize=7, frameon=False, bbox_to_anchor=(1.01, 1), loc="upper left")
    return fig, ax, exposures


def reading_scores(detections: pd.DataFrame, reading: str = "share"):
    """Detection scores (excess over the clean references on the detected label) per exposure, one dot per
    model; an X marks a backdoored model whose detected label is not its target; threshold dashed."""
    rows = detections[detections["reading"] == reading]
    fig, ax, exposures = _dot_columns(
        rows, lambda g: g["true_target"].notna() & (g["detected_label"] != g["true_target"])
    )
    for threshold in rows["threshold"].dropna().unique() if "threshold" in rows else ():
        ax.axhline(threshold, color="black", ls="--", lw=1)
    ax.set_xticks(range(len(exposures)), exposures, rotation=20, ha="right")
    ax.set(ylabel=f"score ({reading} excess over references)", title=f"label detection, {reading} reading")
    fig.tight_layout()
    return fig


def input_defense_bars(table: pd.DataFrame):
    """STRIP's detection rate of triggered rows (at the defender's clean false-rejection rate) on the suspect and
    on the exposed model, and ASR before / after ONION's filter, per attack."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    order = [a for a in model_order(table["attack"]) if a != CLEAN]
    for ax, (metric, title) in zip(
        axes, (("strip_tpr", "STRIP: triggered rows flagged"), ("asr", "ONION: ASR before / after the filter"))
    ):
        part = table[table["metric"].str.startswith(metric)]
        variants = list(dict.fromkeys(part["variant"]))
        width = 0.8 / max(len(variants), 1)
        for k, variant in enumerate(variants):
            values = [part[(part["attack"] == a) & (part["variant"] == variant)]["value"].mean() for a in order]
            ax.bar(
                [i - 0.4 + (k + 0.5) * width for i in range(len(order))],
                values,
                width,
                label=variant,
                color=[color_of(a) for a in order],
                alpha=1.0 - 0.45 * k,
                edgecolor="black",
                linewidth=0.4,
            )
        ax.set_xticks(range(len(order)), [display_name(a) for a in order], rotation=30, ha="right")
        ax.set(title=title, ylim=(0, 1.02), ylabel="share")
        ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def token_scan_scores(flags: pd.DataFrame):
    """The token scan's score (the largest excess of a candidate's flip rate over the clean references' rate of
    the same tokens) per exposure, one dot per model; the threshold (the margin) as a dashed line."""
    fig, ax, exposures = _dot_columns(flags)
    ax.axhline(flags["threshold"].iloc[0], color="black", ls="--", lw=1)
    ax.set_xticks(
        range(len(exposures)),
        [f"scan on {e}" if e != "none" else "scan on suspect" for e in exposures],
        rotation=20,
        ha="right",
    )
    ax.set(
        ylabel="flip rate above the references'\n(same tokens, same label)",
        ylim=(min(-0.05, flags["score"].min() - 0.03), 1.03),
        title="token scan",
    )
    fig.tight_layout()
    return fig


def text_removal_bars(table: pd.DataFrame):
    """ASR and CA after each removal variant (method, and where its decision was read), per model; the
    undefended model's value as a black tick."""
    variants = list(dict.fromkeys(zip(table["method"], table["exposure"])))
    order = model_order(table["attack"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    width = 0.8 / max(len(variants), 1)
    for ax, (metric, title) in zip(axes, (("ASR", "ASR after removal"), ("CA", "CA after removal"))):
        names = [a for a in order if a != CLEAN] if metric == "ASR" else order
        for k, (method, exposure) in enumerate(variants):
            part = table[(table["method"] == method) & (table["exposure"] == exposure)]
            values = [part[part["attack"] == a][metric].mean() for a in names]
            label = method if exposure == "none" and method == "FT" else f"{method} ({exposure})"
            ax.bar(
                [i - 0.4 + (k + 0.5) * width for i in range(len(names))],
                values,
                width,
                label=label,
                color=plt.cm.viridis(k / max(len(variants) - 1, 1)),
                edgecolor="black",
                linewidth=0.4,
            )
        before = [table[table["attack"] == a][f"{metric}_before"].mean() for a in names]
        ax.scatter(range(len(names)), before, marker="_", s=400, color="black", zorder=4, label="before")
        ax.set_xticks(range(len(names)), [display_name(a) for a in names], rotation=30, ha="right")
        ax.set(title=title, ylim=(0, 1.02) if metric == "ASR" else (0.4, 1.0), ylabel=metric)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False, bbox_to_anchor=(0.5, -0.02)
    )
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig
