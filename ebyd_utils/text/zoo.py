"""The text zoo: every attack of the text profile at every seed, a clean control per clean seed, and the
defender's clean references (the image zoo's roles, `ebyd_utils/zoo/`)."""

from __future__ import annotations

from .config import REFERENCE_SEED
from .pipeline import TextSetup, train_text_suspect


def text_zoo(setup: TextSetup, progress: bool = True) -> tuple[list, list]:
    """(suspects, references): every attack of the profile at every seed, a clean control per clean seed, and
    the defender's clean references, each named by a model_id unique in the profile (`<attack>-s<seed>`,
    `clean-s<seed>`, `reference-<i>`, as the image zoo names its rows)."""
    p = setup.profile
    suspects = [
        train_text_suspect(setup, attack, seed, progress, model_id=f"{attack}-s{seed}")
        for seed in p.seeds
        for attack in p.attacks
    ]
    suspects += [train_text_suspect(setup, None, seed, progress, model_id=f"clean-s{seed}") for seed in p.clean_seeds]
    references = [
        train_text_suspect(setup, None, REFERENCE_SEED + i, progress, model_id=f"reference-{i}")
        for i in range(p.detection.n_reference)
    ]
    return suspects, references
