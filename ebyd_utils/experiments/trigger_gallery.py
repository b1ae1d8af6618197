"""Notebook 04's gallery: what the true trigger and each recovered trigger change in one test image."""

from __future__ import annotations

import torch

from ..pipeline import Run
from .trigger_metrics import amplified_perturbation
from .trigger_recovery import invert, named_label, recovered_trigger, runs

GALLERY_NAMES = {"none": "suspect", "CUL": "exposed", "CUL label": "CUL label"}


def gallery(run: Run, suspects, exposed: list, detected_labels: list, seed: int = 0) -> dict:
    """{attack: {column: (perturbation map (3, H, W) in [0, 1], caption)}} for the suspects of `seed`: what the
    true trigger and each recovered trigger change in one test image (of a class no attack targets), drawn
    as 0.5 + delta / (2 max |delta|) so that grey is "unchanged" and a one-pixel trigger is visible; captions
    name the label (and mark the true target). Inversions come from the cache (recovery_table's runs)."""
    data = run.data
    targets = {s.attack.single_target for s in suspects if s.attack is not None} - {None}
    image = data.test_x[[i for i, y in enumerate(data.test_y.tolist()) if y not in targets][:1]]
    grid = {}
    for suspect, (exposed_model, exposed_key), (detected, _) in zip(suspects, exposed, detected_labels):
        if suspect.seed != seed:
            continue
        target = suspect.attack.single_target if suspect.attack else None
        row = {
            "true trigger": (_delta_map(suspect.attack.apply(image), image), f"target {target}")
            if suspect.attack
            else (None, "no trigger")
        }
        for method, exposure, model, key, classes in runs(run.profile, suspect, exposed_model, exposed_key, detected):
            result = invert(run, method, model, key, classes)
            label, _ = named_label(result)
            stamp, _, _ = recovered_trigger(result, label)
            caption = f"-> {label}" + (" (target)" if label == target else "")
            column = f"{'NC' if method == 'nc' else 'BTI-DBF'}, {GALLERY_NAMES[exposure]}"
            row[column] = (_delta_map(stamp(image), image), caption)
        grid[suspect.model_id if suspect.label in grid else suspect.label] = row  # two models of one attack
    return grid


def _delta_map(changed: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    return amplified_perturbation(changed[:1], image[:1])[0]
