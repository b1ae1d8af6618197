"""Adversarial Neuron Pruning (ANP; Wu & Wang, NeurIPS 2021, "Adversarial Neuron Pruning Purifies Backdoored
Deep Models"): backdoor neurons are the ones whose small perturbation most easily breaks the model, so learn a
mask m in [0, 1] per neuron (a channel of a BatchNorm2d) that keeps the clean loss low *under* adversarial
multiplicative perturbations of the neurons, then prune the neurons whose mask fell to the threshold or below:

    min_m  alpha * CE(f_m(x), y) + (1 - alpha) * max_{|delta|, |xi| <= eps} CE(f_{m + delta, 1 + xi}(x), y).

Follows the official code (csdongxian/ANP_backdoor `optimize_mask_cifar.py`, `models/anp_batchnorm.py`,
`prune_neuron_cifar.py`): masks on every BatchNorm2d multiply its weight (gamma), the perturbation adds delta
to the mask and scales the bias by (1 + xi); each iteration draws 128 clean images with replacement, starts
delta and xi uniform in [-eps, eps] and takes `steps` signed-gradient ascent steps of eps / steps on them,
then one SGD step (lr 0.2, momentum 0.9) on the masks, clipped to [0, 1]; BatchNorm runs in training mode
(batch statistics) meanwhile; finally the suspect's channels with mask <= threshold get gamma = 0
(`pruning()`: weight only, the bias is kept). eps 0.4, 1 step, alpha 0.2 are the official defaults
(BackdoorBench `config/defense/anp/config.yaml` uses the same).

Where ours differs: the perturbation is projected back onto [-eps, eps] after each ascent step, which keeps it
within the paper's bound |delta|, |xi| <= eps and is what the EBYD authors' copy of ANP does
(Expose-Before-You-Defend `defenses/ANP.py`, `clip_noise`); csdongxian's code and BackdoorBench do not
project, so their delta can reach 2 eps. The budget: 200 iterations (official 2000). The threshold is fixed at
0.2, the paper's pruning threshold (the official pruning script sweeps 0 to 0.9 in steps of 0.05 and prints test
accuracy and ASR for each, and BackdoorBench picks the threshold with the lowest test ASR: neither is a
defender's rule).

With a guide (the exposed model, same architecture): the masks are learned on the guide, and the suspect's
channels whose guide mask fell to the threshold or below are pruned.
Defender-side: takes a model and clean labelled images, nothing about the attack.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from ...train import accuracy
from .common import (
    RemovalResult,
    attach_masks,
    check_count,
    check_data,
    check_guide,
    check_positive,
    check_unit,
    frozen_copy,
    logits,
    make_config,
    mask_step,
    mask_values,
    prune_by_threshold,
    prune_gamma,
)

__all__ = ["ANPConfig", "anp", "learn_anp_masks", "prune_by_threshold"]


@dataclass(frozen=True)
class ANPConfig:
    iterations: int = 200  # mask updates (official nb_iter: 2000)
    batch_size: int = 128  # clean images per update, drawn with replacement (official: 128)
    lr: float = 0.2  # mask SGD learning rate, momentum 0.9 (official: 0.2)
    eps: float = 0.4  # perturbation budget of delta and xi (official anp_eps: 0.4)
    steps: int = 1  # ascent steps per perturbation, each eps / steps (official anp_steps: 1)
    alpha: float = 0.2  # weight of the unperturbed loss (official anp_alpha: 0.2)
    threshold: float = 0.2  # channels with mask <= this are pruned (paper: 0.2)
    use_bf16: bool = True  # bf16 autocast where the CPU/GPU runs it natively


def _check(cfg: ANPConfig) -> None:
    check_count("iterations", cfg.iterations)
    check_count("batch_size", cfg.batch_size)
    check_count("steps", cfg.steps)
    check_positive("lr", cfg.lr)
    check_unit("threshold", cfg.threshold)
    check_unit("alpha", cfg.alpha)
    if not (isinstance(cfg.eps, (int, float)) and cfg.eps >= 0):
        raise ValueError(f"eps must be a number >= 0; got {cfg.eps!r}")


def perturb_neurons(work, masks, xb, yb, cfg: ANPConfig, gen: torch.Generator) -> None:
    """The adversarial neuron perturbation, shared with AWP exposure (expose/awp.py): a random start in [-eps, eps],
    then `steps` signed ascent steps of eps / steps on the clean loss (the official reset + noise_opt loop: SGD on
    the sign of the gradient of -CE), projected onto [-eps, eps]."""
    noises = [p for n in masks.values() for p in (n.noise, n.noise_bias)]
    with torch.no_grad():
        for p in noises:
            p.copy_(torch.empty(p.shape).uniform_(-cfg.eps, cfg.eps, generator=gen))
    for n in masks.values():
        n.perturbed = True
    for _ in range(cfg.steps):
        loss = nn.functional.cross_entropy(logits(work, xb, cfg.use_bf16), yb)
        grads = torch.autograd.grad(loss, noises)
        with torch.no_grad():
            for p, g in zip(noises, grads):
                p.add_(g.sign(), alpha=cfg.eps / cfg.steps).clamp_(-cfg.eps, cfg.eps)


def learn_anp_masks(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: ANPConfig, seed: int = 0, progress: bool = False
) -> dict:
    """BatchNorm name -> learned mask values (CPU), optimised on a throw-away copy of `model`."""
    gen = torch.Generator().manual_seed(seed)
    work = frozen_copy(model).train()  # batch statistics, as the official mask_train
    masks = attach_masks(work)
    mask_params = [n.mask for n in masks.values()]
    optimizer = torch.optim.SGD(mask_params, lr=cfg.lr, momentum=0.9)
    for _ in tqdm(range(cfg.iterations), desc="ANP", disable=not progress, leave=False):
        idx = torch.randint(len(x), (cfg.batch_size,), generator=gen).to(x.device)
        xb, yb = x[idx], y[idx]
        robust = 0.0
        if cfg.eps > 0:
            perturb_neurons(work, masks, xb, yb, cfg, gen)
            robust = nn.functional.cross_entropy(logits(work, xb, cfg.use_bf16), yb)
        for n in masks.values():
            n.perturbed = False
        natural = nn.functional.cross_entropy(logits(work, xb, cfg.use_bf16), yb)
        loss = cfg.alpha * natural + (1 - cfg.alpha) * robust
        mask_step(optimizer, loss, mask_params, masks)
    return mask_values(masks)


def anp(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    guide: nn.Module | None = None,
    cfg: ANPConfig | None = None,
    seed: int = 0,
    progress: bool = False,
    **overrides,
) -> RemovalResult:
    """ANP: a pruned copy of `model`, masks learned on the defender's clean uint8 images x and labels y (on
    `guide`, the exposed model, when one is given)."""
    cfg = make_config(ANPConfig(), cfg, **overrides)
    _check(cfg)
    check_data(model, x, y, "ANP")
    check_guide(model, guide)
    start = time.perf_counter()
    values = learn_anp_masks(guide if guide is not None else model, x, y, cfg, seed, progress)
    pruned = prune_by_threshold(values, cfg.threshold)
    repaired = prune_gamma(model, pruned)
    info = {
        "threshold": cfg.threshold,
        "n_pruned": sum(map(len, pruned.values())),
        "n_channels": sum(len(v) for v in values.values()),
        "guided": guide is not None,
        "defense_acc_before": accuracy(model, x, y),
        "defense_acc_after": accuracy(repaired, x, y),
    }
    return RemovalResult(
        "anp",
        repaired,
        time.perf_counter() - start,
        pruned=pruned,
        values={f"mask.{k}": v for k, v in values.items()},
        info=info,
        settings={**dataclasses.asdict(cfg), "seed": seed, "guided": guide is not None},
    )
