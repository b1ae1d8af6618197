"""The one look: seaborn style, fixed colours per model kind, display names, and saving a figure as PNG + PDF."""

from __future__ import annotations

from pathlib import Path

import seaborn as sns

CLEAN = "clean"
CLEAN_COLOR = "#8c8c8c"  # the clean control: always this grey
# Fixed attack colours (seaborn "colorblind" hues, then "dark" ones), so BadNets is the same vermillion on every
# page; the paper's ten attacks first (the official code's order after the first four), then the anchors' others.
ATTACK_COLORS = {
    "badnets": "#d55e00",
    "blend": "#0173b2",
    "trojan": "#029e73",
    "sig": "#cc78bc",
    "onepixel": "#ece133",
    "wanet": "#de8f05",
    "lc": "#56b4e9",
    "smooth": "#000000",
    "iad": "#ca9161",
    "nashville": "#fbafe4",
    "ssba": "#8c0800",
    "bpp": "#001c7f",
    "adap_blend": "#12711c",
    "adap_patch": "#591e71",
    # the text attacks (notebook 09): BadNets-word keeps BadNets' vermillion, AddSent Blend's blue
    "badnets_word": "#d55e00",
    "addsent": "#0173b2",
    "synbkd": "#029e73",
    "stylebkd": "#cc78bc",
    "bite": "#de8f05",
    "lwp": "#56b4e9",
}
DISPLAY = {
    "clean": "clean",
    "badnets": "BadNets",
    "blend": "Blend",
    "trojan": "Trojan",
    "sig": "SIG",
    "onepixel": "One-pixel",
    "wanet": "WaNet",
    "lc": "LC",
    "smooth": "Smooth",
    "iad": "IAD",
    "nashville": "Nashville",
    "ssba": "SSBA",
    "bpp": "BPP",
    "adap_blend": "Adap-Blend",
    "adap_patch": "Adap-Patch",
    "badnets_word": "BadNets-word",
    "addsent": "AddSent",
    "synbkd": "SynBkd",
    "stylebkd": "StyleBkd",
    "bite": "BITE",
    "lwp": "LWP",
}
ALL_TO_ALL = "-all2all"  # suffix of an all-to-all variant's name (attacks.base.Attack.label)
_SPARE = sns.color_palette("dark", 10).as_hex()  # attacks not listed above, in a stable order


# ------------------------------------------------------------------------------------------- style
def set_style() -> None:
    """The one look: seaborn whitegrid, paper context, readable font sizes."""
    sns.set_theme(
        style="whitegrid",
        context="paper",
        font_scale=1.15,
        rc={"figure.dpi": 100, "savefig.bbox": "tight", "axes.titleweight": "bold"},
    )


def color_of(name: str) -> str:
    """The fixed colour of a model kind ('clean' or an attack name, any case)."""
    key = str(name).lower().removesuffix(ALL_TO_ALL)
    if key == CLEAN:
        return CLEAN_COLOR
    if key in ATTACK_COLORS:
        return ATTACK_COLORS[key]
    return _SPARE[sum(map(ord, key)) % len(_SPARE)]  # stable across runs (no hash randomisation)


def display_name(name: str) -> str:
    key = str(name).lower()
    if key.endswith(ALL_TO_ALL):
        return f"{display_name(key.removesuffix(ALL_TO_ALL))} (all-to-all)"
    return DISPLAY.get(key, str(name))


def palette(names) -> dict:
    """{name: colour} for the names given (keys kept as given, for seaborn's `palette=`)."""
    return {n: color_of(n) for n in names}


def model_order(names) -> list:
    """Clean control first, then attacks in the fixed order of ATTACK_COLORS (an all-to-all variant right after
    its attack), then any others."""
    names = list(dict.fromkeys(names))
    known = [CLEAN] + list(ATTACK_COLORS)

    def rank(n):
        base = str(n).removesuffix(ALL_TO_ALL)
        return (known.index(base) if base in known else len(known), str(n).endswith(ALL_TO_ALL), str(n))

    return sorted(names, key=rank)


def save_figure(fig, name: str, figures_dir="figures") -> list[Path]:
    """Write `fig` as figures_dir/name.png (dpi 150) and .pdf; returns the two paths."""
    out = Path(figures_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.pdf"]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight", metadata={"CreationDate": None})  # no date: a rerun is byte-equal
    return paths
