"""Shuffled-label fine-tuning ("confusion" fine-tuning), an exposure of EBYD (Li et al. 2024, "Expose Before You
Defend", Sec. 3; official code `exposes/sfft.py`, class ShuffleFT).

Fine-tune the suspect on the defense images with *random* labels: the clean mapping is confused away, while the
backdoor, which no defense image carries, survives, so clean inputs drift onto the target as after CUL.

Follows the official code: Adam (lr 1e-4, weight decay 5e-4), the net in train mode (BatchNorm on batch
statistics), a fresh uniformly drawn label for every image of every batch (`torch.randint`, not a permutation of
the true labels), 20 epochs.

Where ours differs: the stop rule (CUL's, `common.py`): we stop at the first epoch whose accuracy on the defense
images' *true* labels is <= stop_acc and return that model (the official runs all 20 epochs and defines a
`stop_acc` it never reads); gradient clipping (norm 20) happens after backward() (the official clips before it,
a no-op); the labels come from a seeded generator; random crop + flip on the defense images as CUL's.
The knob: `lr`. Defender-side: the suspect and the defender's clean images only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .common import check_positive, finetune_exposure, keep_inputs


@dataclass(frozen=True)
class ShuffleFTConfig:
    lr: float = 1e-4  # THE KNOB: Adam learning rate (official 1e-4)
    epochs: int = 20  # most passes over the defense set (official: 20, all run)
    batch_size: int = 128  # defense images per step (official loader: 128)
    weight_decay: float = 5e-4  # (official 5e-4)
    stop_acc: float = 0.2  # stop at the first epoch whose defense accuracy (true labels) is <= this
    grad_clip: float = 20.0  # max gradient norm, after backward() (0 = off)
    augment: bool = True  # random crop + flip on the defense images


def shuffle_finetune(
    model, defense_x, defense_y, cfg: ShuffleFTConfig, num_classes, probe_x=None, seed=0, monitor=None, progress=True
):
    """Expose `model` by fine-tuning on the defense images with uniformly random labels; returns (exposed model,
    per-epoch log) as `clean_unlearn` does."""
    check_positive("lr", cfg.lr)

    def labels(y, gen):
        return torch.randint(num_classes, y.shape, generator=gen).to(y.device)

    def optimizer(params):
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)

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
        "shuffled-label FT",
        optimizer,
        labels,
        keep_inputs,
    )
