"""Large-learning-rate fine-tuning on the defense set with its true labels: the plain fine-tuning baseline of
exposure (EBYD, Li et al. 2024, "Expose Before You Defend", Sec. 3 names fine-tuning among the edits that
expose; the official code's fine-tuning classes, `exposes/edr.py` FineTuneDefense, are not shipped).

A learning rate far above a fine-tuning one shakes the suspect out of its clean solution, which 500 images
cannot rebuild, while nothing in the clean loss pulls the backdoor down; whether clean inputs then drift onto
the target is what notebook 07 measures.

Ours: SGD (momentum 0.9, weight decay 5e-4) at a constant `lr` (10x the removal FT's 0.01 by default), the net in
train mode (BatchNorm on batch statistics), random crop + flip, gradient clipping (norm 20) after backward(), and
CUL's stop rule (`common.py`): the first epoch whose defense accuracy is <= stop_acc. Training on the true
labels may never bring it down that far: the log then says `collapsed` False, and the model is not exposed.
The knob: `lr`. Defender-side: the suspect and the defender's clean images only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .common import check_positive, finetune_exposure, keep_inputs, keep_labels


@dataclass(frozen=True)
class LargeLRFTConfig:
    lr: float = 0.1  # THE KNOB: constant SGD learning rate (removal FT uses 0.01)
    epochs: int = 20  # most passes over the defense set
    batch_size: int = 128  # defense images per step
    momentum: float = 0.9
    weight_decay: float = 5e-4
    stop_acc: float = 0.2  # stop at the first epoch whose defense accuracy is <= this
    grad_clip: float = 20.0  # max gradient norm, after backward() (0 = off)
    augment: bool = True  # random crop + flip on the defense images


def large_lr_finetune(
    model, defense_x, defense_y, cfg: LargeLRFTConfig, num_classes, probe_x=None, seed=0, monitor=None, progress=True
):
    """Expose `model` by fine-tuning on the defense images and their labels at a large learning rate; returns
    (exposed model, per-epoch log) as `clean_unlearn` does."""
    check_positive("lr", cfg.lr)

    def optimizer(params):
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)

    return finetune_exposure(
        model,
        defense_x,
        defense_y,
        cfg,
        num_classes,
        probe_x,
        seed,
        monitor,
        progress,
        "large-lr FT",
        optimizer,
        keep_labels,
        keep_inputs,
    )
