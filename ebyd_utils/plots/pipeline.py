"""The pipeline figure of the README and notebook 00: expose, then defend."""

from __future__ import annotations

import matplotlib.pyplot as plt


# ------------------------------------------------------------------------------------ pipeline figure
def _box(ax, xy, text, color, ha="center"):
    """A rounded box sized to its text (so labels never overflow), anchored at xy."""
    return ax.text(
        *xy,
        text,
        ha=ha,
        va="center",
        fontsize=10,
        linespacing=1.4,
        bbox={"boxstyle": "round,pad=0.7", "fc": color, "ec": "0.3", "lw": 1.2},
    )


def _arrow(ax, src, dst, start=(1, 0.5), end=(0, 0.5)):
    """An arrow from a point of box `src` to a point of box `dst` (fractions of each box)."""
    ax.annotate(
        "",
        xy=end,
        xycoords=dst,
        xytext=start,
        textcoords=src,
        arrowprops={"arrowstyle": "-|>", "color": "0.3", "lw": 1.4, "shrinkA": 2, "shrinkB": 2},
    )


def pipeline_figure():
    """EBYD in one picture: suspect model -> Clean Unlearning -> exposed model -> the four defenses."""
    fig, ax = plt.subplots(figsize=(12, 4.4))
    ax.set(xlim=(0, 1), ylim=(0, 1))
    ax.axis("off")
    suspect = _box(ax, (0.09, 0.5), "suspect model\n(maybe backdoored)", "#e8e8e8")
    cul = _box(ax, (0.34, 0.5), "Clean Unlearning\ngradient ascent on the loss\nof ~500 clean images", "#fde3cf")
    exposed = _box(ax, (0.6, 0.5), "exposed model\nclean features erased,\nbackdoor left standing", "#f4b183")
    _arrow(ax, suspect, cul)
    _arrow(ax, cul, exposed)
    defenses = [
        "label detection: which class?",
        "trigger recovery: what pattern?",
        "model detection: backdoored or not?",
        "removal: repair the model",
    ]
    for i, text in enumerate(defenses):
        _arrow(ax, exposed, _box(ax, (0.75, 0.86 - i * 0.24), text, "#dbe9f6", ha="left"))
    ax.text(0.34, 0.72, "1. expose", ha="center", fontsize=10, color="0.3", fontweight="bold")
    ax.text(0.75, 1.0, "2. defend (on the exposed model)", ha="left", fontsize=10, color="0.3", fontweight="bold")
    ax.text(
        0.34,
        0.1,
        "defender-side: never sees the trigger, the true target or test ASR",
        ha="center",
        fontsize=9,
        style="italic",
        color="0.35",
    )
    fig.suptitle("Expose Before You Defend (Li et al., 2024)", fontweight="bold", y=1.02)
    return fig
