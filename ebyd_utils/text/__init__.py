"""The text track: data (`data`), tokens cached like images (`tokens`) and text attacks (`attacks`).

Text lives beside images, not inside them (DESIGN.md, "Modality"): its data are lists of strings with
int64 labels split like the images, its attacks rewrite strings, and only `tokens` needs `transformers`
(imported when called, so the image side never pays for it).
"""

from .data import TEXT_DATASETS, TextData, load_text, make_synthetic_text

__all__ = ["TEXT_DATASETS", "TextData", "load_text", "make_synthetic_text"]
