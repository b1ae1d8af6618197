"""Adversarial weight perturbation of BatchNorm neurons, an exposure of EBYD (Li et al. 2024, "Expose Before You
Defend"; official code `exposes/awp.py`, class AWP, built on ANP's NoisyBatchNorm2d, Wu & Wang, NeurIPS 2021):
perturb every BatchNorm channel within a budget eps in the direction that most raises the clean loss. Clean
features are fragile to such a push; the backdoor, which the clean loss never reads, is not pushed at all.

Follows the official code (and ANP's perturbation, which it calls): each channel's scale gamma becomes
gamma * (1 + delta) and its bias beta * (1 + xi), delta and xi drawn uniformly in [-eps, eps] and then moved by
a signed gradient-ascent step on the cross-entropy of the clean defense images, with the net in train mode
(BatchNorm on batch statistics); the official sweeps eps over 0, 0.1, ..., 0.9.

What ours does where the official does not say: its mask step (ANP's minimisation over the neuron masks) is
commented out, so the official exposed model is the suspect under the perturbation alone, evaluated with the
noise still switched on -- ours is the same model, with the perturbation written into gamma and beta (an
ordinary model, masks at 1, nothing learned but the perturbation). Where ours differs:
- the ascent is ANP's (`defenses/removal/anp.py`, reused): `steps` signed steps of eps / steps, projected back
  onto [-eps, eps] (the official steps 0.2 whatever eps, unprojected);
- the gradient is taken on the whole defense set at once (the official keeps the perturbation of the last
  batch of 6 passes, whose train-mode forward passes also move the running statistics: ours keeps the
  suspect's);
- each level eps * k / levels starts afresh from the suspect (the official reuses one net across its eps list),
  with CUL's stop rule (`common.py`).
The knob: `eps`, the largest perturbation budget. Seeded: the random start.
Defender-side: the suspect and the defender's clean images only.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from ..defenses.removal.anp import ANPConfig, perturb_neurons
from ..defenses.removal.common import attach_masks, bn_layers, frozen_copy
from .common import check_count, check_defense, check_rate, run_steps, schedule


@dataclass(frozen=True)
class AWPConfig:
    eps: float = 0.9  # THE KNOB: largest perturbation budget of delta and xi (official: up to 0.9)
    levels: int = 9  # budgets eps * k / levels, k = 1..levels (official: 0.1, ..., 0.9)
    steps: int = 1  # signed ascent steps per level, each eps / steps (official anp_steps: 1)
    stop_acc: float = 0.2  # stop at the first level whose defense accuracy is <= this
    use_bf16: bool = True  # bf16 autocast where the CPU/GPU runs it natively


def perturbed_copy(model, masks: dict) -> torch.nn.Module:
    """A copy of `model` with each BatchNorm's perturbation written into its weight and bias."""
    out = copy.deepcopy(model)
    with torch.no_grad():
        for name, bn in bn_layers(out).items():
            bn.weight.mul_(1 + masks[name].noise.detach().to(bn.weight.dtype))
            bn.bias.mul_(1 + masks[name].noise_bias.detach().to(bn.bias.dtype))
    return out.eval()


def adversarial_weight_perturbation(
    model, defense_x, defense_y, cfg: AWPConfig, num_classes, probe_x=None, seed=0, monitor=None, progress=True
):
    """Expose `model` by an adversarial perturbation of its BatchNorm neurons on the defense images; returns
    (exposed model, per-level log) as `clean_unlearn` does (`strength`: the budget eps)."""
    check_defense(defense_x, defense_y, probe_x, num_classes)
    check_rate("eps", cfg.eps)
    check_count("steps", cfg.steps)
    if not bn_layers(model):
        raise ValueError(f"weight perturbation acts on BatchNorm2d layers; {type(model).__name__} has none")
    gen = torch.Generator().manual_seed(seed)
    work = frozen_copy(model).train()  # batch statistics, as the official
    masks = attach_masks(work)

    def level(k, eps):
        perturb_neurons(
            work, masks, defense_x, defense_y, ANPConfig(eps=eps, steps=cfg.steps, use_bf16=cfg.use_bf16), gen
        )
        return perturbed_copy(model, masks)

    steps = schedule(cfg.eps, cfg.levels)
    return run_steps(
        model,
        steps,
        level,
        defense_x,
        defense_y,
        probe_x,
        num_classes,
        cfg.stop_acc,
        monitor,
        progress,
        "weight perturbation",
    )
