"""Reconstructive Neuron Pruning (RNP; Li et al., ICML 2023, "Reconstructive Neuron Pruning for Backdoor
Defense"): unlearn, then recover, then prune.

1. unlearn: gradient *ascent* on the defender's clean images until their accuracy falls to `clean_threshold`
   (the clean features are erased, the backdoor survives: the idea EBYD's Clean Unlearning builds on);
2. recover: on the unlearned model, learn a mask m in [0, 1] per neuron (a channel of every BatchNorm2d,
   multiplying its gamma) by *descent* on the same clean images; the clean neurons come back, while the
   backdoor neurons, which the clean loss does not need, sink;
3. prune: set gamma = 0 in the ORIGINAL suspect for every channel whose recovered mask is <= `threshold`.

Follows the official code (bboylyg/RNP `main.py`, `models/mask_batchnorm.py`): unlearning by SGD (lr 0.01,
momentum 0.9, weight decay 5e-4, lr x0.1 at epochs 10 and 20, BatchNorm in training mode, batch 128), stopped
at the first epoch whose clean accuracy is <= 0.2, at most 20 epochs; recovering by SGD on the masks only (lr
0.2, momentum 0.9, loss alpha * CE with alpha 0.2, no sparsity term, masks clipped to [0, 1], BatchNorm in
training mode) for 20 epochs; pruning of gamma only (`pruning()`: weight set to 0, bias kept), mask <= threshold.

Where ours differs:
- the unlearning stop rule reads the accuracy of the model (in eval mode) on the defender's images after each
  epoch (the official code reads the running accuracy of its training-mode outputs during the epoch);
- gradients are clipped to norm 20 after backward() (the official code clips before it, which does nothing;
  as in our Clean Unlearning, `expose/cul.py`);
- the official loop runs epochs 0..20 (21 passes); ours at most `unlearn_epochs` (20);
- the threshold is fixed at 0.2 (the official script sweeps 0 to 0.9 and prints test accuracy and ASR for each;
  its README log reaches ASR 6.6% at 0.20 and 1.7% at 0.30 on its BadNets ResNet-18).

With a guide (the exposed model, same architecture): the guide IS the unlearned model (EBYD's exposure is a
clean unlearning), so step 1 is skipped and the masks are recovered on the guide; the suspect is pruned.
Defender-side: takes a model and clean labelled images, nothing about the attack.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from ...train import accuracy, sgd_step
from .common import (
    RemovalResult,
    attach_masks,
    check_count,
    check_data,
    check_guide,
    check_positive,
    check_unit,
    epoch_batches,
    frozen_copy,
    logits,
    make_config,
    mask_step,
    mask_values,
    prune_by_threshold,
    prune_gamma,
)


@dataclass(frozen=True)
class RNPConfig:
    unlearn_lr: float = 0.01  # SGD, momentum 0.9, weight decay 5e-4 (official unlearning_lr: 0.01)
    unlearn_epochs: int = 20  # most unlearning epochs (official unlearning_epochs: 20)
    milestones: tuple = (10, 20)  # unlearning lr x0.1 at these epochs (official schedule: [10, 20])
    clean_threshold: float = 0.2  # stop unlearning once defense accuracy <= this (official clean_threshold: 0.2)
    grad_clip: float = 20.0  # max gradient norm while unlearning (official max_norm: 20)
    recover_lr: float = 0.2  # mask SGD learning rate, momentum 0.9 (official recovering_lr: 0.2)
    recover_epochs: int = 20  # mask epochs (official recovering_epochs: 20)
    alpha: float = 0.2  # weight of the recovering loss (official alpha: 0.2)
    batch_size: int = 128  # images per step (official: 128)
    threshold: float = 0.2  # channels with recovered mask <= this are pruned (see the docstring)
    use_bf16: bool = True  # bf16 autocast where the CPU/GPU runs it natively


def _check(cfg: RNPConfig) -> None:
    for name in ("unlearn_epochs", "recover_epochs", "batch_size"):
        check_count(name, getattr(cfg, name))
    for name in ("unlearn_lr", "recover_lr", "alpha"):
        check_positive(name, getattr(cfg, name))
    check_unit("clean_threshold", cfg.clean_threshold)
    check_unit("threshold", cfg.threshold)
    if cfg.grad_clip < 0:
        raise ValueError(f"grad_clip must be >= 0 (0 = off); got {cfg.grad_clip}")


def unlearn(model: nn.Module, x, y, cfg: RNPConfig, seed: int = 0, progress: bool = False):
    """Step 1 on a copy of `model`: (unlearned model, epochs run, its defense accuracy)."""
    gen = torch.Generator().manual_seed(seed)
    work = copy.deepcopy(model).train()  # batch statistics, as the official train_step_unlearning
    optimizer = torch.optim.SGD(
        [p for p in work.parameters() if p.requires_grad], lr=cfg.unlearn_lr, momentum=0.9, weight_decay=5e-4
    )
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(cfg.milestones), gamma=0.1)
    acc, epochs = accuracy(work, x, y), 0
    for epoch in tqdm(range(1, cfg.unlearn_epochs + 1), desc="RNP unlearn", disable=not progress, leave=False):
        if acc <= cfg.clean_threshold:
            break
        for idx in epoch_batches(len(x), cfg.batch_size, gen, x.device):
            sgd_step(work, optimizer, x[idx], y[idx], ascent=True, grad_clip=cfg.grad_clip, use_bf16=cfg.use_bf16)
        schedule.step()
        acc, epochs = accuracy(work, x, y), epoch
    return work.eval(), epochs, acc


def recover_masks(unlearned: nn.Module, x, y, cfg: RNPConfig, seed: int = 0, progress: bool = False) -> dict:
    """Step 2: BatchNorm name -> mask values recovered on a throw-away copy of the unlearned model."""
    gen = torch.Generator().manual_seed(seed + 1)  # its own batch order, not a replay of the unlearning's
    work = frozen_copy(unlearned).train()  # batch statistics, as the official train_step_recovering
    masks = attach_masks(work)
    params = [n.mask for n in masks.values()]
    optimizer = torch.optim.SGD(params, lr=cfg.recover_lr, momentum=0.9)
    for _ in tqdm(range(cfg.recover_epochs), desc="RNP recover", disable=not progress, leave=False):
        for idx in epoch_batches(len(x), cfg.batch_size, gen, x.device):
            loss = cfg.alpha * nn.functional.cross_entropy(logits(work, x[idx], cfg.use_bf16), y[idx])
            mask_step(optimizer, loss, params, masks)
    return mask_values(masks)


def rnp(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    guide: nn.Module | None = None,
    cfg: RNPConfig | None = None,
    seed: int = 0,
    progress: bool = False,
    **overrides,
) -> RemovalResult:
    """RNP: a pruned copy of `model`, from the defender's clean uint8 images x and labels y; with `guide` (the
    exposed model) the masks are recovered on it and the unlearning step is skipped."""
    cfg = make_config(RNPConfig(), cfg, **overrides)
    _check(cfg)
    check_data(model, x, y, "RNP")
    check_guide(model, guide)
    start = time.perf_counter()
    if guide is None:
        unlearned, epochs, unlearned_acc = unlearn(model, x, y, cfg, seed, progress)
    else:
        unlearned, epochs, unlearned_acc = guide, 0, accuracy(guide, x, y)
    values = recover_masks(unlearned, x, y, cfg, seed, progress)
    pruned = prune_by_threshold(values, cfg.threshold)
    repaired = prune_gamma(model, pruned)
    info = {
        "threshold": cfg.threshold,
        "n_pruned": sum(map(len, pruned.values())),
        "n_channels": sum(len(v) for v in values.values()),
        "guided": guide is not None,
        "unlearn_epochs_run": epochs,
        "unlearned_defense_acc": unlearned_acc,
        "unlearn_reached_threshold": unlearned_acc <= cfg.clean_threshold,
        "defense_acc_before": accuracy(model, x, y),
        "defense_acc_after": accuracy(repaired, x, y),
    }
    return RemovalResult(
        "rnp",
        repaired,
        time.perf_counter() - start,
        pruned=pruned,
        values={f"mask.{k}": v for k, v in values.items()},
        info=info,
        settings={**dataclasses.asdict(cfg), "seed": seed, "guided": guide is not None},
    )
