"""Magnitude sparsification, an exposure of EBYD (Li et al. 2024, "Expose Before You Defend"; official code
`exposes/lth_prune.py` with `prune_utils.py`: the lottery-ticket loop of iterative global L1 pruning with
weight rewinding): remove the smallest weights of the network, which the clean function shares out thinly, while
a backdoor carried by few large weights survives.

Follows the official pruning step: unstructured L1 pruning *globally* over the weights of every Conv2d
(`prune.global_unstructured` with `L1Unstructured`; ours writes the same rule out), the pruned weights set to 0.

Where ours differs: one-shot, without retraining: the official prunes 20% a round for 16 rounds and retrains
between rounds on the (poisoned) training set from rewound weights, which a defender does not have; ours
prunes the suspect's own weights at the sparsities strength * k / levels, each from the suspect (nested masks,
never compounded), with CUL's stop rule (`common.py`). Convolutions whose weights do not train (FastCNN's frozen
whitening stem, a fixed data transform) are not pruned.
The knob: `sparsity`, the largest share of convolution weights set to 0. Deterministic: the seed is not used.
Defender-side: the suspect and the defender's clean images only.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from .common import check_defense, check_rate, run_steps, schedule


@dataclass(frozen=True)
class MagnitudePruneConfig:
    sparsity: float = 0.9  # THE KNOB: largest share of the convolution weights pruned (smallest |w| first)
    levels: int = 9  # sparsities sparsity * k / levels, k = 1..levels
    stop_acc: float = 0.2  # stop at the first level whose defense accuracy is <= this


def prunable(model) -> list:
    """Every Conv2d whose weight trains."""
    return [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.weight.requires_grad]


def sparsify(model, sparsity: float) -> nn.Module:
    """A copy of `model` with the share `sparsity` of its trainable convolution weights, the globally smallest
    |w|, set to 0: the rule of `prune.global_unstructured` with `L1Unstructured` (exactly round(sparsity * n)
    weights), written out because torch's version cannot flatten channels_last weights."""
    out = copy.deepcopy(model)
    convs = prunable(out)
    scores = torch.cat([m.weight.detach().abs().float().reshape(-1) for m in convs])
    k = round(sparsity * len(scores))
    if k:
        keep = torch.ones_like(scores)
        keep[torch.topk(scores, k, largest=False).indices] = 0
        with torch.no_grad():
            for m, mask in zip(convs, keep.split([m.weight.numel() for m in convs])):
                m.weight.mul_(mask.view(m.weight.shape).to(m.weight.dtype))
    return out.eval()


def magnitude_prune(
    model,
    defense_x,
    defense_y,
    cfg: MagnitudePruneConfig,
    num_classes,
    probe_x=None,
    seed=0,
    monitor=None,
    progress=True,
):
    """Expose `model` by global L1 pruning of its convolution weights; returns (exposed model, per-level log) as
    `clean_unlearn` does (`strength`: the sparsity)."""
    check_defense(defense_x, defense_y, probe_x, num_classes)
    check_rate("sparsity", cfg.sparsity)
    if not prunable(model):
        raise ValueError(f"magnitude pruning needs trainable Conv2d weights; {type(model).__name__} has none")
    return run_steps(
        model,
        schedule(cfg.sparsity, cfg.levels),
        lambda k, s: sparsify(model, s),
        defense_x,
        defense_y,
        probe_x,
        num_classes,
        cfg.stop_acc,
        monitor,
        progress,
        "magnitude pruning",
    )
