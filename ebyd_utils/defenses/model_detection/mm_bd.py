"""MM-BD (Wang, Xiang, Miller, Kesidis, S&P 2024, "MM-BD: Post-Training Detection of Backdoor Attacks with
Arbitrary Backdoor Pattern Types Using a Maximum Margin Statistic"): data-free, model-level backdoor detection.
For every class c, gradient ascent over images x in [0, 1]^(C, H, W), from uniform random starts, maximises

    margin_c(x) = logit_c(x) - max_{k != c} logit_k(x);

the class statistic r_c is the largest margin reached over the starts. A backdoor makes its target's maximum
margin abnormally large (the trigger alone overrides every other class), whatever the trigger's form. A Gamma
null (shape, loc, scale by maximum likelihood) is fitted to the statistics without the largest one, r_max, and
the order-statistic p-value of r_max as the largest of K draws is p = 1 - F(r_max)^K. A model is flagged when
p <= alpha; the label named is argmax_c r_c.

Follows the official code (wanghangpsu/MM-BD, `univ_bd.py`): uniform random starts in [0, 1] (l. 67), plain
gradient ascent on the summed margins with lr 0.01 (l. 59, 75, 79-82: SGD with momentum 0.2, but the optimizer
is rebuilt every step, so the momentum never acts), a class stops once its loss changes by a relative < 1e-5
(l. 83), r_c is the max margin over the starts (l. 87-88), `gamma.fit` with free loc on the K - 1 smaller
statistics, p = 1 - cdf(r_max)^(len(null) + 1) = ...^K (l. 100-105), attack if p <= 0.05 (l. 108).

Where ours differs: the budget, and small changes that keep the statistic's meaning. The official run is 30
starts x up to 300 steps at lr 0.01 a class, one class at a time, on a GPU (~55 s for the `quick` FastCNN on
one CPU thread); ours defaults to 10 starts x up to 100 steps at lr 0.03 (the same path length, 3 gradient
units), all K classes in one batch of K x 10 images (~7 s). Pixels are projected back into [0, 1] after each
step (the official clamps only in the forward pass, so an overshooting pixel gets zero gradient and sticks
outside). The ascent runs under bf16 autocast where the hardware has it (speed); the statistics are margins of a
final fp32 forward at the final images (the official reads the last ascent forward). p is computed as
-expm1(K log F), the same value without the rounding of 1 - F^K when F is near 1.

Measured: docs/methods.md, "MM-BD".

Defender-side: takes a model and an image shape, no data, nothing about the attack.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import stats as scipy_stats
from torch import nn
from tqdm.auto import tqdm

from ...train import autocast


@dataclass(frozen=True)
class MMBDConfig:
    steps: int = 100  # max ascent steps per start (official NSTEP: 300, `univ_bd.py` l. 40)
    starts: int = 10  # uniform random starts per class (official: 30, l. 67)
    lr: float = 0.03  # step on the raw margin gradient (official: 0.01, l. 59, for 300 steps)
    tolerance: float = 1e-5  # a class stops when its loss changes by a relative < this (official, l. 83)
    alpha: float = 0.05  # p-value at or below which the model is flagged (official: 0.05, l. 108)
    use_bf16: bool = True  # bf16 autocast for the ascent where the CPU/GPU runs it natively


@dataclass
class MMBDResult:
    statistics: torch.Tensor  # (K,) max margin reached for each class (fp32 logits)
    label: int  # argmax_c of the statistics (the suspected target, flagged or not)
    p_value: float  # order-statistic p-value of the largest statistic under the Gamma null
    flagged: bool  # p_value <= alpha
    seconds: float
    steps_run: int = 0  # ascent steps until every class stopped (or the budget ran out)
    settings: dict = field(default_factory=dict)  # the MMBDConfig used, plus the seed and image shape

    method = "mmbd"

    @property
    def flagged_label(self) -> int | None:
        """The named label if the model is flagged, else None (as Neural Cleanse's `flagged_label`)."""
        return self.label if self.flagged else None

    def to_tensors(self) -> tuple[dict, dict]:
        """(dict of tensors, JSON-able info) for a safetensors file and its metadata."""
        info = {
            "method": self.method,
            "label": self.label,
            "p_value": self.p_value,
            "flagged": self.flagged,
            "seconds": self.seconds,
            "steps_run": self.steps_run,
            "settings": dict(self.settings),
        }
        return {"statistics": self.statistics.detach().cpu().contiguous()}, info

    @classmethod
    def from_tensors(cls, tensors: dict, info: dict) -> "MMBDResult":
        if info.get("method") != cls.method:
            raise ValueError(f"not an MM-BD record (method {info.get('method')!r})")
        return cls(
            tensors["statistics"],
            info["label"],
            info["p_value"],
            info["flagged"],
            info["seconds"],
            info.get("steps_run", 0),
            dict(info.get("settings", {})),
        )


# ------------------------------------------------------------------------------------------ inference
def mm_bd_p_value(statistics) -> float:
    """Order-statistic p-value of the largest of K >= 3 statistics: a Gamma (shape, loc, scale) fitted by
    maximum likelihood to the other K - 1, p = 1 - F(r_max)^K (official `univ_bd.py`, l. 100-105)."""
    r = torch.as_tensor(statistics, dtype=torch.float64).flatten().numpy()
    if len(r) < 3 or not np.isfinite(r).all():
        raise ValueError(f"need at least 3 finite statistics (one per class); got {r.tolist()}")
    r = np.sort(r)  # the ML fit is an optimisation: sorting makes it independent of class order
    r_max, null = r[-1], r[:-1]
    if np.ptp(null) == 0:  # no spread to fit: anything above the common value is infinitely unlikely
        return 0.0 if r_max > null[0] else 1.0
    shape, loc, scale = scipy_stats.gamma.fit(null)
    log_cdf = scipy_stats.gamma.logcdf(r_max, shape, loc=loc, scale=scale)
    return float(-np.expm1(len(r) * log_cdf))


def margins(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """logit of `labels` minus the largest other logit, per row."""
    own = logits.gather(1, labels[:, None])[:, 0]
    others = logits.scatter(1, labels[:, None], -math.inf).amax(1)
    return own - others


# ------------------------------------------------------------------------------------------ checks
def make_config(cfg: MMBDConfig | None = None, **overrides) -> MMBDConfig:
    cfg = cfg or MMBDConfig()
    allowed = {f.name for f in dataclasses.fields(cfg)}
    if set(overrides) - allowed:
        raise ValueError(f"unknown MM-BD setting(s) {sorted(set(overrides) - allowed)}; allowed: {sorted(allowed)}")
    cfg = dataclasses.replace(cfg, **overrides)
    if not 0 < cfg.alpha < 1:
        raise ValueError(f"alpha must be in (0, 1) (official: 0.05); got {cfg.alpha}")
    if cfg.steps < 1 or cfg.starts < 1:
        raise ValueError(f"steps and starts must be >= 1; got steps={cfg.steps}, starts={cfg.starts}")
    if not cfg.lr > 0 or not cfg.tolerance >= 0:
        raise ValueError(f"lr must be > 0 and tolerance >= 0; got lr={cfg.lr}, tolerance={cfg.tolerance}")
    return cfg


def _check_shape(image_shape) -> tuple[int, int, int]:
    shape = tuple(image_shape) if isinstance(image_shape, (tuple, list, torch.Size)) else ()
    if len(shape) != 3 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape):
        raise ValueError(f"image_shape must be (C, H, W), three positive ints, e.g. (3, 32, 32); got {image_shape!r}")
    return shape


def _num_classes(model: nn.Module, shape, num_classes, device) -> int:
    """The model's output size, checked against `num_classes` when given (no 10-class assumption)."""
    with torch.no_grad():
        out = model(torch.full((1, *shape), 0.5, device=device))
    if out.ndim != 2:
        raise ValueError(
            f"the model must output logits of shape (N, K); got {tuple(out.shape)} for one image of shape {shape}"
        )
    if num_classes is not None and num_classes != out.shape[1]:
        raise ValueError(f"num_classes={num_classes} but the model outputs {out.shape[1]} logits")
    if out.shape[1] < 3:
        raise ValueError(
            f"MM-BD needs num_classes >= 3 (a null is fitted to K - 1 >= 2 statistics); "
            f"the model outputs {out.shape[1]}"
        )
    return out.shape[1]


def _device_of(model: nn.Module) -> torch.device:
    tensor = next(iter(model.parameters()), None)
    tensor = tensor if tensor is not None else next(iter(model.buffers()), None)
    return tensor.device if tensor is not None else torch.device("cpu")


# ------------------------------------------------------------------------------------------ detection
def mm_bd(
    model: nn.Module,
    image_shape=(3, 32, 32),
    num_classes: int | None = None,
    cfg: MMBDConfig | None = None,
    seed: int = 0,
    device=None,
    progress: bool = False,
    desc: str = "MM-BD",
    **overrides,
) -> MMBDResult:
    """MM-BD on `model` (float images in [0, 1] of `image_shape` -> logits); settings from `cfg` and keyword
    overrides (see MMBDConfig). Data-free: the starts are uniform noise drawn from a generator seeded by `seed`."""
    cfg, shape = make_config(cfg, **overrides), _check_shape(image_shape)
    if num_classes is not None and (
        isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 3
    ):
        raise ValueError(f"num_classes must be an int >= 3 or None (read from the model); got {num_classes!r}")
    device = torch.device(device) if device is not None else _device_of(model)
    start_time, was_training = time.perf_counter(), model.training
    model.eval()
    try:
        k = _num_classes(model, shape, None if num_classes is None else int(num_classes), device)
        statistics, steps_run = _max_margins(model, shape, k, cfg, seed, device, progress, desc)
    finally:
        model.train(was_training)
    p_value = mm_bd_p_value(statistics)
    return MMBDResult(
        statistics,
        int(statistics.argmax()),
        p_value,
        p_value <= cfg.alpha,
        time.perf_counter() - start_time,
        steps_run,
        {**dataclasses.asdict(cfg), "seed": seed, "image_shape": list(shape)},
    )


def _max_margins(model, shape, k: int, cfg: MMBDConfig, seed: int, device, progress: bool, desc: str):
    """Projected gradient ascent of every class's margin from cfg.starts uniform starts, all classes in one
    batch (each image's margin depends only on itself, so this is K independent runs); returns the (K,) max
    margin per class (fp32 forward) and the steps run."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(k * cfg.starts, *shape, generator=gen).to(device).contiguous(memory_format=torch.channels_last)
    labels = torch.arange(k, device=device).repeat_interleave(cfg.starts)
    active = torch.ones(k, dtype=torch.bool, device=device)
    last_loss = torch.full((k,), 1000.0, device=device)  # the official starting value
    steps_run = 0
    for _ in tqdm(range(cfg.steps), desc=desc, disable=not progress, leave=False):
        x.requires_grad_(True)
        with autocast(device, cfg.use_bf16):
            margin = margins(model(x).float(), labels)
        (grad,) = torch.autograd.grad(margin.sum(), x)  # no gradient into the model
        loss = -margin.detach().view(k, cfg.starts).sum(1)  # the official per-class loss
        # the official test, per class: |change| / |last loss| < tolerance stops that class's ascent
        active &= (last_loss - loss).abs() >= cfg.tolerance * last_loss.abs()
        last_loss, steps_run = loss, steps_run + 1
        if not active.any():
            break
        step = cfg.lr * grad * active.repeat_interleave(cfg.starts).view(-1, 1, 1, 1)
        x = (x.detach() + step).clamp_(0, 1)
    with torch.no_grad():  # statistics from an fp32 forward
        final = margins(model(x.detach()).float(), labels).view(k, cfg.starts)
    return final.amax(1).cpu(), steps_run
