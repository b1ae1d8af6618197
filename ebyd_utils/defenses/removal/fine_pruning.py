"""Fine-Pruning (FP; Liu, Dolan-Gavitt & Garg, RAID 2018, "Fine-Pruning: Defending Against Backdooring
Attacks on Deep Neural Networks"): backdoor neurons lie dormant on clean inputs, so prune the channels of the
last convolutional layer in increasing order of their mean activation on the defender's clean images, stop
before the clean accuracy falls too far, then fine-tune the pruned model.

Follows the official code (BackdoorBench `defense/fp.py`, `config/defense/fp/config.yaml`): the activation of a
channel is the mean over the clean images of the head's input (the pooled last-layer features, l.295-312);
channels are pruned cumulatively, `once_prune_ratio` = 1% of them per step (l.339); pruning stops at the first
step whose accuracy has fallen by `acc_ratio` = 10% of the unpruned accuracy (relative, l.376); pruned channels
stay pruned while the model is fine-tuned (a `torch.nn.utils.prune` mask, l.346), with FT's recipe.

Where ours differs:
- the stop rule reads accuracy on the defender's own images (BackdoorBench reads the clean test set, which a
  defender does not have), and keeps the last step within the tolerance (BackdoorBench keeps an alias of the
  network it goes on pruning, so it returns the step that crossed it, and prunes one channel fewer than it
  counts, `seq_sort[0:num_pruned - 1]`);
- a channel is pruned at the last BatchNorm2d (its weight and bias set to 0), not at the head's input: for the
  FastCNN (BN -> ReLU/GELU -> global max-pool -> head) this is the same, since ReLU(0) = GELU(0) = 0; for the
  ResNet-18 the channel still carries the identity shortcut of the last block (only the block's own branch is
  removed), where BackdoorBench's head-input mask removes the whole feature;
- `max_prune_ratio` caps the share of channels pruned (1.0 = no cap, as BackdoorBench);
- fine-tuning uses FT's budget (`fine_tuning.py`: 20 epochs, not 100).
(The paper stops once validation accuracy has dropped by 4%, our reading of it; BackdoorBench's 10% is kept.)

With a guide (the exposed model, same architecture): channels are ranked by the guide's activations, and the
pruning, the stop rule and the fine-tuning act on a copy of the suspect. Exposure erases the clean features,
and the exposed model sends clean images to the target through the backdoor channels, so those grow MORE
active on clean images, not dormant: the default `guide_rank="increase"` prunes first the channels whose
activation rose most from suspect to guide. `guide_rank="dormant"` keeps FP's own order on the guide (least
active first). Measured: docs/methods.md, "Fine-Pruning, guided by the exposed model".
Defender-side: takes a model and clean labelled images, nothing about the attack.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils import prune
from tqdm.auto import tqdm

from ...train import accuracy, as_input, autocast
from .common import RemovalResult, bn_layers, check_data, check_guide, check_unit, make_config
from .fine_tuning import FineTuningConfig, check_finetune_config, fine_tune


@dataclass(frozen=True)
class FinePruningConfig:
    acc_ratio: float = 0.1  # stop once defense accuracy fell by this share of the unpruned one (official 0.1)
    prune_step: float = 0.01  # share of the layer's channels pruned per step (official once_prune_ratio 0.01)
    max_prune_ratio: float = 1.0  # most channels pruned, as a share (official: no cap)
    guide_rank: str = "increase"  # with a guide: "increase" (guide - suspect activation, largest first) or
    # "dormant" (the guide's activation, smallest first); ours, see the docstring
    finetune: FineTuningConfig = field(default_factory=FineTuningConfig)  # after pruning (fine_tuning.py);
    # epochs=0: prune only
    use_bf16: bool = True  # bf16 autocast for recording activations


def last_bn_and_head(model: nn.Module) -> tuple[str, nn.BatchNorm2d, nn.Linear]:
    """The last BatchNorm2d (whose channels FP prunes) and the last Linear (whose input FP records)."""
    layers = bn_layers(model)
    heads = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not layers or not heads or heads[-1].in_features != list(layers.values())[-1].num_features:
        raise ValueError(
            "Fine-Pruning needs a model whose last BatchNorm2d feeds a Linear head channel by channel "
            "(as FastCNN and ResNet18)"
        )
    name = list(layers)[-1]
    return name, layers[name], heads[-1]


@torch.no_grad()
def mean_activations(model: nn.Module, x: torch.Tensor, use_bf16: bool = True, batch_size: int = 500):
    """Mean over images x of the head's input (one value per last-layer channel), in eval mode."""
    _, _, head = last_bn_and_head(model)
    sums, was_training = [], model.training  # per batch: the head input summed over its images
    hook = head.register_forward_hook(lambda module, inputs, output: sums.append(inputs[0].float().sum(0)))
    model.eval()
    try:
        for start in range(0, len(x), batch_size):
            with autocast(x.device, use_bf16):
                model(as_input(x[start : start + batch_size]))
    finally:
        hook.remove()
        model.train(was_training)
    return (torch.stack(sums).sum(0) / len(x)).cpu()


def _rank_score(values: dict, guide_rank: str) -> torch.Tensor:
    """The score whose smallest channels are pruned first (see the docstring for the guided ranks)."""
    if "guide_activation" not in values:
        return values["activation"]  # plain FP: dormant channels first
    if guide_rank == "dormant":
        return values["guide_activation"]
    return -(values["guide_activation"] - values["activation"])  # "increase": grew most under exposure first


def _zero(bn: nn.BatchNorm2d, channels) -> None:
    with torch.no_grad():
        idx = torch.as_tensor(channels, dtype=torch.long, device=bn.weight.device)
        bn.weight[idx] = 0.0
        bn.bias[idx] = 0.0


def prune_channels(model: nn.Module, layer: str, channels) -> nn.Module:
    """A copy of `model` whose BatchNorm2d named `layer` has exactly `channels` zeroed (weight and bias);
    the model itself is left unchanged."""
    layers = bn_layers(model)
    if layer not in layers:
        raise ValueError(f"layer must name a BatchNorm2d of the model, one of {list(layers)}; got {layer!r}")
    channels = [int(c) for c in channels]
    n = layers[layer].num_features
    if len(set(channels)) != len(channels) or not all(0 <= c < n for c in channels):
        raise ValueError(f"channels must be distinct indices in [0, {n - 1}]; got {channels}")
    out = copy.deepcopy(model)
    if channels:
        _zero(bn_layers(out)[layer], channels)
    return out


def _prune_until(work, bn, order, x, y, cfg: FinePruningConfig, progress: bool) -> tuple[list, float, float]:
    """Prune `order` cumulatively in `work` while the defense accuracy holds; returns (pruned, acc before, after)."""
    base = accuracy(work, x, y)
    step = max(1, math.ceil(len(order) * cfg.prune_step))
    most = math.floor(len(order) * cfg.max_prune_ratio)
    pruned, acc, saved = [], base, (bn.weight.detach().clone(), bn.bias.detach().clone())
    for n in tqdm(range(step, most + 1, step), desc="FP prune", disable=not progress, leave=False):
        _zero(bn, order[:n])
        now = accuracy(work, x, y)
        if not now > (1 - cfg.acc_ratio) * base:  # relative drop >= acc_ratio: undo this step and stop
            with torch.no_grad():
                kept = torch.tensor([c for c in order[:n] if c not in pruned], dtype=torch.long)
                bn.weight[kept], bn.bias[kept] = saved[0][kept], saved[1][kept]
            break
        pruned, acc = list(order[:n]), now
    return pruned, base, acc


def fine_pruning(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    guide: nn.Module | None = None,
    cfg: FinePruningConfig | None = None,
    seed: int = 0,
    progress: bool = False,
    **overrides,
) -> RemovalResult:
    """FP on a copy of `model` with the defender's clean uint8 images x and labels y; channels ranked on
    `guide` (the exposed model) when one is given."""
    cfg = make_config(FinePruningConfig(), cfg, **overrides)
    for name in ("acc_ratio", "prune_step", "max_prune_ratio"):
        check_unit(name, getattr(cfg, name))
    if cfg.prune_step == 0:
        raise ValueError("prune_step must be in (0, 1]; got 0")
    if cfg.guide_rank not in ("increase", "dormant"):
        raise ValueError(f"guide_rank must be 'increase' or 'dormant'; got {cfg.guide_rank!r}")
    prune_only = cfg.finetune.epochs == 0  # pruning alone: what the ranking removes before any fine-tuning
    if not prune_only:
        check_finetune_config(cfg.finetune)
    check_data(model, x, y, "Fine-Pruning")
    check_guide(model, guide)
    start = time.perf_counter()
    layer, _, _ = last_bn_and_head(model)
    values = {"activation": mean_activations(model, x, cfg.use_bf16)}
    if guide is not None:
        values["guide_activation"] = mean_activations(guide, x, cfg.use_bf16)
    order = torch.argsort(_rank_score(values, cfg.guide_rank), stable=True).tolist()  # pruned first
    work = copy.deepcopy(model).eval()
    bn = bn_layers(work)[layer]
    pruned, acc_before, acc_pruned = _prune_until(work, bn, order, x, y, cfg, progress)
    keep = torch.ones_like(bn.weight)
    keep[torch.tensor(pruned, dtype=torch.long)] = 0
    for name in ("weight", "bias"):  # pruned channels stay 0 while fine-tuning
        prune.custom_from_mask(bn, name, keep)
    if not prune_only:
        fine_tune(work, x, y, cfg.finetune, seed, progress, desc="FP fine-tune")
    for name in ("weight", "bias"):
        prune.remove(bn, name)
    info = {
        "layer": layer,
        "n_pruned": len(pruned),
        "n_channels": len(order),
        "guided": guide is not None,
        "defense_acc_before": acc_before,
        "defense_acc_pruned": acc_pruned,
        "defense_acc_after": accuracy(work, x, y),
    }
    return RemovalResult(
        "fp",
        work.eval(),
        time.perf_counter() - start,
        pruned={layer: pruned},
        values=values,
        info=info,
        settings={**dataclasses.asdict(cfg), "seed": seed, "guided": guide is not None},
    )
