"""The one look: seaborn style, fixed colours per model kind, display names, and saving a figure as PNG + PDF."""
from __future__ import annotations

from pathlib import Path

import seaborn as sns

CLEAN = "clean"
CLEAN_COLOR = "#8c8c8c"   # the clean control: always this grey
# Fixed attack colours (seaborn "colorblind" hues), so BadNets is the same vermillion on every page.
ATTACK_COLORS = {
    "badnets": "#d55e00", "blend": "#0173b2", "trojan": "#029e73", "sig": "#cc78bc",
    "wanet": "#de8f05", "cl": "#56b4e9", "dynamic": "#ca9161", "nashville": "#fbafe4",
    "onepixel": "#ece133", "smooth": "#000000",
}
DISPLAY = {"clean": "clean", "badnets": "BadNets", "blend": "Blend", "trojan": "Trojan", "sig": "SIG",
           "wanet": "WaNet", "cl": "CL", "dynamic": "Dynamic", "nashville": "Nashville",
           "onepixel": "One-pixel", "smooth": "Smooth"}
_SPARE = sns.color_palette("dark", 10).as_hex()   # attacks not listed above, in a stable order


# ------------------------------------------------------------------------------------------- style
def set_style() -> None:
    """The one look: seaborn whitegrid, paper context, readable font sizes."""
    sns.set_theme(style="whitegrid", context="paper", font_scale=1.15,
                  rc={"figure.dpi": 100, "savefig.bbox": "tight", "axes.titleweight": "bold"})


def color_of(name: str) -> str:
    """The fixed colour of a model kind ('clean' or an attack name, any case)."""
    key = str(name).lower()
    if key == CLEAN:
        return CLEAN_COLOR
    if key in ATTACK_COLORS:
        return ATTACK_COLORS[key]
    return _SPARE[sum(map(ord, key)) % len(_SPARE)]   # stable across runs (no hash randomisation)


def display_name(name: str) -> str:
    return DISPLAY.get(str(name).lower(), str(name))


def palette(names) -> dict:
    """{name: colour} for the names given (keys kept as given, for seaborn's `palette=`)."""
    return {n: color_of(n) for n in names}


def model_order(names) -> list:
    """Clean control first, then attacks in the fixed order of ATTACK_COLORS, then any others."""
    names = list(dict.fromkeys(names))
    known = [CLEAN] + list(ATTACK_COLORS)
    return sorted(names, key=lambda n: (known.index(n) if n in known else len(known), str(n)))


def save_figure(fig, name: str, figures_dir="figures") -> list[Path]:
    """Write `fig` as figures_dir/name.png (dpi 150) and .pdf; returns the two paths."""
    out = Path(figures_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.pdf"]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    return paths


