"""One seaborn style and the companion's figures, one module a section.

Every figure function takes a tidy DataFrame (the tables the notebooks write to results/) and returns a
matplotlib Figure; `save_figure` writes it as PNG (dpi 150) and PDF. Colours are fixed per model kind -- "clean"
is always the same grey and each attack keeps its colour in every figure -- so a reader can follow a model
across pages. This package knows nothing of training: it only draws what it is given.
"""

from .claims import forest
from .detection import roc_panels, score_strips
from .pipeline import pipeline_figure
from .recovery import anomaly_strips, image_grid, recovery_bars
from .removal import der_bars, repair_arrows
from .spine import attack_metrics, class_share_bars, cul_curves, detection_scores, trigger_gallery
from .style import (
    ATTACK_COLORS,
    CLEAN,
    CLEAN_COLOR,
    DISPLAY,
    color_of,
    display_name,
    model_order,
    palette,
    save_figure,
    set_style,
)
from .text import exposure_curves, input_defense_bars, reading_scores, text_removal_bars, token_scan_scores

__all__ = [
    "ATTACK_COLORS",
    "CLEAN",
    "CLEAN_COLOR",
    "DISPLAY",
    "anomaly_strips",
    "attack_metrics",
    "class_share_bars",
    "color_of",
    "cul_curves",
    "der_bars",
    "detection_scores",
    "display_name",
    "exposure_curves",
    "forest",
    "input_defense_bars",
    "image_grid",
    "model_order",
    "palette",
    "pipeline_figure",
    "reading_scores",
    "recovery_bars",
    "repair_arrows",
    "roc_panels",
    "save_figure",
    "score_strips",
    "set_style",
    "text_removal_bars",
    "token_scan_scores",
    "trigger_gallery",
]
