"""Noise fine-tuning, an exposure of EBYD (Li et al. 2024, "Expose Before You Defend"; official code
`exposes/edr.py`, class OODFinetuneDefense): fine-tune the suspect on its defense images with Gaussian noise
added (x + N(0, 1) in the official code's normalised units), with their true labels, so that the clean features
are retrained for inputs no clean image looks like while the backdoor is left alone.

Where ours differs: the official class has no defaults of its own (its base class is not shipped), so the
recipe is the removal FT's (SGD lr 0.01, momentum 0.9, weight decay 5e-4), the net in train mode; the noise is
added in pixel units, sigma = 0.2 of the pixel range (CIFAR's per-channel std is ~0.2, so this is the official
unit noise), not clipped to [0, 1] (nor is the official's); random crop + flip come first; gradient clipping
(norm 20) after backward(); CUL's stop rule (`common.py`) -- the first epoch whose *clean* defense accuracy is
<= stop_acc -- which fine-tuning on true labels may never reach (then `collapsed` False: not exposed).
The knob: `sigma`. Defender-side: the suspect and the defender's clean images only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .common import check_positive, finetune_exposure, keep_labels


@dataclass(frozen=True)
class NoiseFTConfig:
    sigma: float = 0.2  # THE KNOB: std of the Gaussian noise added to the images (share of the pixel range)
    lr: float = 0.01  # SGD learning rate (removal FT's)
    epochs: int = 20  # most passes over the defense set
    batch_size: int = 128  # defense images per step
    momentum: float = 0.9
    weight_decay: float = 5e-4
    stop_acc: float = 0.2  # stop at the first epoch whose clean defense accuracy is <= this
    grad_clip: float = 20.0  # max gradient norm, after backward() (0 = off)
    augment: bool = True  # random crop + flip on the defense images, before the noise


def noise_finetune(
    model, defense_x, defense_y, cfg: NoiseFTConfig, num_classes, probe_x=None, seed=0, monitor=None, progress=True
):
    """Expose `model` by fine-tuning on noisy defense images and their labels; returns (exposed model, per-epoch
    log) as `clean_unlearn` does."""
    check_positive("sigma", cfg.sigma)
    check_positive("lr", cfg.lr)

    def inputs(x, gen):
        # floats on the 0-255 scale: train.as_input divides them by 255 as it does uint8 images
        noise = torch.randn(x.shape, generator=gen).to(x.device)
        return x.float() + noise * (255.0 * cfg.sigma)

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
        "noise FT",
        optimizer,
        keep_labels,
        inputs,
    )
