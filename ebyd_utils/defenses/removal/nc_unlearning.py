"""Neural Cleanse unlearning (Wang et al., S&P 2019, "Neural Cleanse", Sec. VI-C "Patching DNN via
Unlearning"): fine-tune the model on the defender's clean images of which a share carries the trigger Neural
Cleanse RECOVERED, each kept under its true label, so that the model learns to ignore the recovered stamp.

Follows the official code (BackdoorBench `defense/nc.py` l.778-830 with `config/defense/nc/config.yaml`;
the paper's recipe is the same, 20% of the images stamped): a random 20% (`unlearning_ratio` 0.2) of the clean
images is replaced by stamped copies, (1 - m) * x + m * p, labels unchanged; with several recovered triggers
(BackdoorBench: one per flagged label) each adds its own stamped copies of that same 20%; then the model is
fine-tuned with FT's recipe (SGD lr 0.01, momentum 0.9, weight decay 5e-4, cosine, crop + flip).

Where ours differs: the budget of FT (`fine_tuning.py`: 20 epochs over the defender's images; BackdoorBench
100 over 2,500). BackdoorBench only unlearns when Neural Cleanse flags a label (otherwise it returns the
model unchanged); here the caller decides which recovered trigger(s) to pass.
There is no guided variant: the exposed model enters through the trigger it recovered (EBYD Sec. 4.2).

Defender-side: the trigger here is the defender's own recovery (`neural_cleanse.py`), never the attack's.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from ...train import accuracy
from .common import RemovalResult, check_data, check_unit, make_config
from .fine_tuning import FineTuningConfig, check_finetune_config, fine_tune


@dataclass(frozen=True)
class NCUnlearningConfig:
    unlearn_ratio: float = 0.2  # share of the images stamped, true labels kept (official unlearning_ratio: 0.2)
    finetune: FineTuningConfig = field(default_factory=FineTuningConfig)  # the fine-tuning (see fine_tuning.py)


def _as_stack(recovered_mask, recovered_pattern, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(K, 1, H, W) masks and (K, 3, H, W) patterns in [0, 1] from one trigger or a stack of K."""
    mask, pattern = torch.as_tensor(recovered_mask).float(), torch.as_tensor(recovered_pattern).float()
    mask, pattern = (mask[None], pattern[None]) if mask.ndim == 3 else (mask, pattern)
    if mask.ndim != 4 or mask.shape[1:] != (1, h, w) or pattern.shape != (len(mask), 3, h, w):
        raise ValueError(
            f"recovered_mask must be (1, {h}, {w}) or (K, 1, {h}, {w}) and recovered_pattern (3, {h}, "
            f"{w}) or (K, 3, {h}, {w}) to match the images; got {tuple(mask.shape)} and "
            f"{tuple(pattern.shape)}"
        )
    for name, t in (("recovered_mask", mask), ("recovered_pattern", pattern)):
        if t.min() < 0 or t.max() > 1:
            raise ValueError(f"{name} must hold values in [0, 1]; got [{t.min():.3g}, {t.max():.3g}]")
    return mask, pattern


def stamp_share(x: torch.Tensor, y: torch.Tensor, masks, patterns, ratio: float, gen: torch.Generator):
    """The unlearning set: the unstamped share of x, then for each trigger the stamped copies of the rest
    (labels unchanged); also returns the indices of the stamped images."""
    chosen = torch.randperm(len(x), generator=gen)[: round(ratio * len(x))].to(x.device)
    rest = torch.ones(len(x), dtype=torch.bool, device=x.device)
    rest[chosen] = False
    xs, ys = [x[rest]], [y[rest]]
    for mask, pattern in zip(masks.to(x.device), patterns.to(x.device)):
        stamped = (1 - mask) * x[chosen].float().div(255) + mask * pattern
        xs.append((stamped.clamp(0, 1) * 255).round().to(torch.uint8))
        ys.append(y[chosen])
    return torch.cat(xs), torch.cat(ys), chosen.cpu()


def nc_unlearning(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    recovered_mask,
    recovered_pattern,
    cfg: NCUnlearningConfig | None = None,
    seed: int = 0,
    progress: bool = False,
    **overrides,
) -> RemovalResult:
    """NC unlearning: a copy of `model` fine-tuned on the defender's clean uint8 images x and labels y, a share
    stamped with the recovered trigger (mask (1, H, W), pattern (3, H, W) in [0, 1], or stacks of K)."""
    cfg = make_config(NCUnlearningConfig(), cfg, **overrides)
    check_unit("unlearn_ratio", cfg.unlearn_ratio)
    check_finetune_config(cfg.finetune)
    check_data(model, x, y, "NC unlearning")
    masks, patterns = _as_stack(recovered_mask, recovered_pattern, *x.shape[-2:])
    start = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    train_x, train_y, chosen = stamp_share(x, y, masks, patterns, cfg.unlearn_ratio, gen)
    repaired = fine_tune(copy.deepcopy(model), train_x, train_y, cfg.finetune, seed, progress, desc="NC unlearn")
    info = {
        "n_stamped": len(chosen),
        "n_triggers": len(masks),
        "n_train": len(train_x),
        "defense_acc_before": accuracy(model, x, y),
        "defense_acc_after": accuracy(repaired, x, y),
    }
    return RemovalResult(
        "nc_unlearning",
        repaired,
        time.perf_counter() - start,
        values={"stamped_index": chosen},
        info=info,
        settings={**dataclasses.asdict(cfg), "seed": seed},
    )
