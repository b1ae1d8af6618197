"""Activation pruning, an exposure of EBYD (Li et al. 2024, "Expose Before You Defend"; official code
`exposes/act_prune.py`, class ActPruning): mask the units least active on clean data, so that what the clean
data drives least is cut and the predictions fall onto the units it drives most -- for a backdoored model,
often the target's.

Follows the official code's layer and ranking: the units are the logits (the official `layer_name='linear'`, the
classifier head), ranked by their mean over the defense images with the net in eval mode; at rate r the
floor(r * K) least active are masked; the official sweeps r over 0, 0.1, ..., 0.9.

Where ours differs:
- the ranking is made once, on the suspect, and each level masks the least active units of that one ranking
  (the official wraps the layer in a new mask at every rate, each ranking the already masked layer's outputs, so
  its masks compound between calls);
- a masked unit can never be predicted (its head row set to 0, its bias to -1e4): the official multiplies the
  logit by 0, so a masked class still wins an input whose kept logits are all negative, and among masked
  classes argmax ties go to the lowest index -- class 0, the official target;
- CUL's stop rule (`common.py`): the levels r * k / levels are tried in order and the first whose defense
  accuracy is <= stop_acc is returned (the official prints every level and returns none).
The knob: `rate`, the largest share of units masked. Deterministic: the seed is not used.
Defender-side: the suspect and the defender's clean images only.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from ..train import outputs
from .common import check_defense, check_rate, run_steps, schedule

MASKED_BIAS = -1e4  # the bias of a masked logit: below any logit our models produce


@dataclass(frozen=True)
class ActPruneConfig:
    rate: float = 0.9  # THE KNOB: largest share of the logit units masked (official: up to 0.9)
    levels: int = 9  # rates rate * k / levels, k = 1..levels (official: 0.1, ..., 0.9)
    stop_acc: float = 0.2  # stop at the first level whose defense accuracy is <= this


def head_of(model) -> nn.Linear:
    head = getattr(model, "head", None)
    if not isinstance(head, nn.Linear):
        raise ValueError(
            f"activation pruning masks the classifier head: {type(model).__name__} has no nn.Linear `head`"
        )
    return head


def mask_units(model, units) -> nn.Module:
    """A copy of `model` whose head never predicts `units`."""
    out = copy.deepcopy(model)
    head = head_of(out)
    with torch.no_grad():
        for u in units:
            head.weight[u] = 0.0
            head.bias[u] = MASKED_BIAS
    return out.eval()


def activation_prune(
    model, defense_x, defense_y, cfg: ActPruneConfig, num_classes, probe_x=None, seed=0, monitor=None, progress=True
):
    """Expose `model` by masking its least active logit units on the defense images; returns (exposed model,
    per-level log) as `clean_unlearn` does (`strength`: the share of units masked)."""
    check_defense(defense_x, defense_y, probe_x, num_classes)
    check_rate("rate", cfg.rate)
    head_of(model)
    activation = outputs(model, defense_x).float().mean(0)
    order = torch.argsort(activation.cpu(), stable=True).tolist()  # least active first

    def level(k, rate):
        return mask_units(model, order[: int(rate * len(order) + 1e-9)])

    steps = schedule(cfg.rate, cfg.levels)
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
        "activation pruning",
    )
