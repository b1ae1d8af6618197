"""BatchNorm-weight magnitude pruning, an exposure of EBYD (Li et al. 2024, "Expose Before You Defend"; official
code `exposes/edr.py`, class WeightMagnitudePrune): zero the BatchNorm scales (gamma) of small magnitude, so the
weakest channels go silent; a backdoor carried by a few strong channels survives.

Follows the official code: every BatchNorm2d, gamma set to 0 and the bias beta kept (the channel then outputs its
constant bias, as the removal defenses' `prune_gamma`, which this reuses).

Where ours differs: the official prunes every |gamma| below an absolute threshold `thres`; ours ranks the
channels of all BatchNorm layers together by |gamma| and prunes a share of them, `rate`, which means the same on
every architecture; the levels rate * k / levels are tried in order with CUL's stop rule (`common.py`).
The knob: `rate`, the largest share of BatchNorm channels pruned. Deterministic: the seed is not used.
Defender-side: the suspect and the defender's clean images only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..defenses.removal.common import bn_layers, prune_gamma
from .common import check_defense, check_rate, run_steps, schedule


@dataclass(frozen=True)
class BNPruneConfig:
    rate: float = 0.9  # THE KNOB: largest share of all BatchNorm channels pruned (smallest |gamma| first)
    levels: int = 9  # shares rate * k / levels, k = 1..levels
    stop_acc: float = 0.2  # stop at the first level whose defense accuracy is <= this


def bn_prune(
    model, defense_x, defense_y, cfg: BNPruneConfig, num_classes, probe_x=None, seed=0, monitor=None, progress=True
):
    """Expose `model` by zeroing its smallest BatchNorm scales; returns (exposed model, per-level log) as
    `clean_unlearn` does (`strength`: the share of channels pruned)."""
    check_defense(defense_x, defense_y, probe_x, num_classes)
    check_rate("rate", cfg.rate)
    layers = bn_layers(model)
    if not layers:
        raise ValueError(f"BatchNorm pruning needs BatchNorm2d layers; {type(model).__name__} has none")
    channels = [(name, c) for name, bn in layers.items() for c in range(bn.num_features)]
    gammas = torch.cat([bn.weight.detach().abs().float().cpu() for bn in layers.values()])
    order = torch.argsort(gammas, stable=True).tolist()  # smallest |gamma| first

    def level(k, rate):
        pruned = {name: [] for name in layers}
        for i in order[: int(rate * len(order) + 1e-9)]:
            name, c = channels[i]
            pruned[name].append(c)
        return prune_gamma(model, pruned)

    steps = schedule(cfg.rate, cfg.levels)
    return run_steps(
        model, steps, level, defense_x, defense_y, probe_x, num_classes, cfg.stop_acc, monitor, progress, "BN pruning"
    )
