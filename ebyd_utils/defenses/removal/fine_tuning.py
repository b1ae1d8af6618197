"""Fine-tuning (FT), the plain removal baseline: train every weight of the suspect on the defender's clean
labelled images with SGD, so that features the clean loss does not need (the backdoor's) fade under weight
decay and new gradients (as evaluated e.g. by Liu et al., RAID 2018, "Fine-Pruning", and by BackdoorBench).

Follows the official code (BackdoorBench `defense/ft.py`, `config/defense/ft/config.yaml`): SGD with lr 0.01,
momentum 0.9, weight decay 5e-4, a cosine-annealed learning rate, cross-entropy on the clean images, the train
transform (random crop with 4-pixel padding, horizontal flip), BatchNorm in training mode.

Where ours differs: the budget. BackdoorBench runs 100 epochs over 5% of the training set (2,500 CIFAR images,
batch 256, ~1,000 steps, the cosine period T_max = 100 epochs); ours 20 epochs over the defender's images
(batch 128: 80 steps for 500 images), the cosine annealed to 0 over exactly those steps. Every step is
`train.sgd_step`, the project's one training step.

`fine_tune` is also the fine-tuning stage of Fine-Pruning and of Neural Cleanse unlearning (same budget).
Defender-side: takes a model and clean labelled images, nothing about the attack.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from ...data import augment as augment_batch
from ...train import accuracy, sgd_step
from .common import RemovalResult, check_count, check_data, check_positive, epoch_batches, make_config


@dataclass(frozen=True)
class FineTuningConfig:
    epochs: int = 20  # passes over the defender's images (official: 100 over 2,500 images)
    batch_size: int = 128  # images per step (official: 256)
    lr: float = 0.01  # SGD learning rate at the start of the cosine (official: 0.01)
    momentum: float = 0.9  # SGD momentum (official: 0.9)
    weight_decay: float = 5e-4  # L2 on all weights (official: 5e-4)
    augment: bool = True  # random crop (pad 4) + horizontal flip (official: the train transform)
    use_bf16: bool = True  # bf16 autocast where the CPU/GPU runs it natively


def check_finetune_config(cfg: FineTuningConfig) -> None:
    check_count("epochs", cfg.epochs)
    check_count("batch_size", cfg.batch_size)
    check_positive("lr", cfg.lr)
    if not 0 <= cfg.momentum < 1 or cfg.weight_decay < 0:
        raise ValueError(f"momentum must be in [0, 1) and weight_decay >= 0; got {cfg.momentum}, {cfg.weight_decay}")


def fine_tune(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: FineTuningConfig,
    seed: int = 0,
    progress: bool = False,
    desc: str = "fine-tune",
) -> nn.Module:
    """Fine-tune `model` IN PLACE (callers pass a copy) on uint8 images x and labels y; returns it in eval mode.
    Only parameters that require a gradient are trained (FP's pruning masks stay fixed)."""
    gen = torch.Generator().manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    total = cfg.epochs * math.ceil(len(x) / cfg.batch_size)
    # cosine from lr to 0 over our steps (BackdoorBench: CosineAnnealingLR over 100 epochs, stepped per epoch)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    model.train()  # BatchNorm on batch statistics, as the official trainer
    for _ in tqdm(range(cfg.epochs), desc=desc, disable=not progress, leave=False):
        for idx in epoch_batches(len(x), cfg.batch_size, gen, x.device):
            xb = augment_batch(x[idx], 4, True, gen) if cfg.augment else x[idx]
            sgd_step(model, optimizer, xb, y[idx], use_bf16=cfg.use_bf16)
            schedule.step()
    return model.eval()


def fine_tuning(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: FineTuningConfig | None = None,
    seed: int = 0,
    progress: bool = False,
    **overrides,
) -> RemovalResult:
    """FT: a fine-tuned copy of `model` on the defender's clean uint8 images x (N, 3, H, W) and labels y."""
    cfg = make_config(FineTuningConfig(), cfg, **overrides)
    check_finetune_config(cfg)
    check_data(model, x, y, "fine-tuning")
    start = time.perf_counter()
    before = accuracy(model, x, y)
    repaired = fine_tune(copy.deepcopy(model), x, y, cfg, seed, progress, desc="FT")
    info = {"defense_acc_before": before, "defense_acc_after": accuracy(repaired, x, y)}
    return RemovalResult(
        "ft", repaired, time.perf_counter() - start, info=info, settings={**dataclasses.asdict(cfg), "seed": seed}
    )
