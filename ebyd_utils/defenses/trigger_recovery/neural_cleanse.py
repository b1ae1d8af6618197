"""Neural Cleanse (Wang et al., S&P 2019, "Neural Cleanse: Identifying and Mitigating Backdoor Attacks in
Neural Networks"): trigger recovery and label detection by reverse-engineering, for each class, the smallest
stamp (mask m, pattern p) that sends the defender's clean images to that class,

    x' = (1 - m) * x + m * p,   minimise  CE(f(x'), class) + cost * |m|_1,

m = tanh(a) / (2 - eps) + 0.5 (1, H, W) and p = tanh(b) / (2 - eps) + 0.5 (3, H, W), both in [0, 1]. A backdoor
target needs a far smaller mask than the other classes: its L1 norm is an outlier below the median, read by the
anomaly index |norm - median| / (1.4826 * MAD).

Follows the official code (bolunwang/backdoor, `visualizer.py`, `mad_outlier_detection.py`): Adam (betas 0.5,
0.9, lr 0.1), random uniform initial mask and pattern, the cost starts at 0 and is set to `init_cost` once the
stamp succeeds (>= 0.99 of the batch images) for `patience` epochs, then multiplied by 1.5 after `patience`
successful epochs and divided by 1.5**1.5 after `patience` failing ones; the best mask is the smallest-norm one
among successful epochs; early stop once the cost went both up and down and the best norm has not improved
(by the factor 0.99) for `early_stop_patience` epochs; a label is flagged when its norm is below the median
and its anomaly index > 2 (the smallest such norm is named).

Where ours differs: the budget. The official run is up to 1000 epochs of 31 mini-batches of 32 images (up to
~1M images a class); ours defaults to at most 50 epochs of 4 mini-batches of 32 (<= 6,400 images a class, ~2 s
a class on a 2-core CPU for the small CNN), with patience 3 and early-stop patience 6 (official example: 5 and
25). All classes are optimised together in one batch (the same images stamped by every class's trigger):
Adam is element-wise and each class's loss touches only its own mask and pattern, so this is K independent
runs on shared batches, only faster. A subset of classes may be given (`classes`); anomaly indices then run
over that subset and need at least 3 classes (else NaN, no flag). (The EBYD authors' own NC script is simpler:
a fixed cost 0.01, 20 epochs, Adam 0.005 on clipped, not tanh-bounded, masks and 500 test images.)

Measured: docs/methods.md, "Neural Cleanse".

Defender-side: takes a model and clean images, nothing about the attack.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from ...data import check_images
from ...train import as_input, autocast
from ..outliers import anomaly_indices, flag_label, median  # noqa: F401  (median: part of this module's API)
from .records import NeuralCleanseResult

EPS = 1e-7  # keeps tanh-space inverse finite


@dataclass(frozen=True)
class NeuralCleanseConfig:
    epochs: int = 50  # max epochs per class (official: 1000)
    steps_per_epoch: int = 4  # mini-batches per epoch (official: 1000 images / 32 = 31)
    batch_size: int = 32  # clean images per mini-batch (official: 32)
    lr: float = 0.1  # Adam learning rate on the tanh-space mask and pattern (official: 0.1)
    init_cost: float = 1e-3  # weight of the mask L1 once the stamp first succeeds (official: 1e-3)
    cost_multiplier: float = 1.5  # cost up x this, down / this**1.5 (official Visualizer default: 1.5)
    success_threshold: float = 0.99  # share of a batch sent to the class that counts as success (official)
    patience: int = 3  # epochs before the cost changes (official example: 5)
    early_stop_patience: int = 6  # epochs without improvement before stopping (official example: 25)
    early_stop_factor: float = 0.99  # an improvement must shrink the best norm below this factor (official)
    anomaly_threshold: float = 2.0  # anomaly index above which a small-norm class is flagged (official)
    use_bf16: bool = True  # bf16 autocast for the model where the CPU/GPU runs it natively


# ------------------------------------------------------------------------------------- cost schedule
@dataclass
class CostSchedule:
    """One class's cost and early-stop bookkeeping, as in the official Visualizer (updated once per epoch)."""

    cfg: NeuralCleanseConfig
    cost: float = 0.0  # starts at 0: first find any stamp that works, then shrink it
    set_counter: int = 0
    up_counter: int = 0
    down_counter: int = 0
    went_up: bool = False
    went_down: bool = False
    best_norm: float = math.inf
    stop_counter: int = 0
    stop_best: float = math.inf

    def update(self, success: float, norm: float) -> tuple[bool, bool]:
        """Record one epoch's mean success and mask norm; returns (improved the best, stop now)."""
        cfg, succeeded = self.cfg, success >= self.cfg.success_threshold
        improved = succeeded and norm < self.best_norm
        if improved:
            self.best_norm = norm
        if self.best_norm < math.inf:
            self.stop_counter = self.stop_counter + 1 if self.best_norm >= cfg.early_stop_factor * self.stop_best else 0
        self.stop_best = min(self.stop_best, self.best_norm)
        if self.went_up and self.went_down and self.stop_counter >= cfg.early_stop_patience:
            return improved, True
        self._adjust_cost(succeeded)
        return improved, False

    def _adjust_cost(self, succeeded: bool) -> None:
        cfg = self.cfg
        self.set_counter = self.set_counter + 1 if (self.cost == 0 and succeeded) else 0
        if self.set_counter >= cfg.patience:
            self.cost, self.set_counter = cfg.init_cost, 0
            self.up_counter = self.down_counter = 0
            self.went_up = self.went_down = False
        self.up_counter, self.down_counter = (self.up_counter + 1, 0) if succeeded else (0, self.down_counter + 1)
        if self.up_counter >= cfg.patience:
            self.cost, self.up_counter, self.went_up = self.cost * cfg.cost_multiplier, 0, True
        elif self.down_counter >= cfg.patience:
            self.cost, self.down_counter, self.went_down = self.cost / cfg.cost_multiplier**1.5, 0, True


# ------------------------------------------------------------------------------------------- inversion
def _from_tanh(t: torch.Tensor) -> torch.Tensor:
    return torch.tanh(t) / (2 - EPS) + 0.5


def _to_tanh(t: torch.Tensor) -> torch.Tensor:
    return torch.atanh((t - 0.5) * (2 - EPS))


def _snapshot(mask_tanh: torch.Tensor, pattern_tanh: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The current (mask, pattern), detached; clamped since tanh/(2 - eps) + 0.5 rounds to -6e-8 in float32."""
    return _from_tanh(mask_tanh).detach().clamp(0, 1), _from_tanh(pattern_tanh).detach().clamp(0, 1)


def stamp(x01: torch.Tensor, mask: torch.Tensor, pattern: torch.Tensor) -> torch.Tensor:
    """(1 - m) x + m p for float images x01 (N, 3, H, W) and one or A stacked triggers -> (A*N, 3, H, W)."""
    if mask.ndim == 3:
        mask, pattern = mask[None], pattern[None]
    out = (1 - mask[:, None]) * x01[None] + mask[:, None] * pattern[:, None]
    return out.flatten(0, 1).contiguous(memory_format=torch.channels_last)


def num_classes_of(model: nn.Module, x: torch.Tensor) -> int:
    """Number of classes read off the model's output (no 10-class assumption)."""
    with torch.no_grad():
        return model(as_input(x[:1])).shape[1]


def _check_inputs(x, classes, num_classes: int, cfg: NeuralCleanseConfig) -> list:
    if not 0 < cfg.success_threshold <= 1:
        raise ValueError(f"success_threshold must be in (0, 1]; got {cfg.success_threshold}")
    if not cfg.anomaly_threshold > 0:
        raise ValueError(f"anomaly_threshold must be > 0 (official: 2); got {cfg.anomaly_threshold}")
    if min(cfg.epochs, cfg.steps_per_epoch, cfg.batch_size, cfg.patience) < 1 or cfg.lr <= 0:
        raise ValueError(
            "epochs, steps_per_epoch, batch_size and patience must be >= 1 and lr > 0; got "
            f"{cfg.epochs}, {cfg.steps_per_epoch}, {cfg.batch_size}, {cfg.patience}, {cfg.lr}"
        )
    if classes is not None and not all(hasattr(c, "__index__") and not isinstance(c, bool) for c in classes):
        raise ValueError(
            f"classes must be class indices (ints), e.g. the label a detection flagged; got {classes!r} "
            "-- a detection that flagged nothing has no class to narrow NC to"
        )
    classes = list(range(num_classes)) if classes is None else [int(c) for c in classes]
    if not classes or len(set(classes)) != len(classes) or not all(0 <= c < num_classes for c in classes):
        raise ValueError(f"classes must be distinct class indices in [0, {num_classes - 1}]; got {classes}")
    return classes


def make_config(cfg: NeuralCleanseConfig | None = None, **overrides) -> NeuralCleanseConfig:
    cfg = cfg or NeuralCleanseConfig()
    allowed = {f.name for f in dataclasses.fields(cfg)}
    if set(overrides) - allowed:
        raise ValueError(
            f"unknown Neural Cleanse setting(s) {sorted(set(overrides) - allowed)}; allowed: {sorted(allowed)}"
        )
    return dataclasses.replace(cfg, **overrides)


def _batches(x: torch.Tensor, batch_size: int, gen: torch.Generator):
    """Endless shuffled mini-batches of x as float [0, 1] (a new permutation per pass, like the Keras flow)."""
    while True:
        order = torch.randperm(len(x), generator=gen).to(x.device)
        for start in range(0, len(x), batch_size):
            yield x[order[start : start + batch_size]].float().div_(255)


def _epoch(model, params, active, classes, costs, optimizer, batches, cfg) -> tuple[torch.Tensor, torch.Tensor]:
    """One epoch of the joint optimisation of the active classes; returns their mean success and mask norm."""
    targets = torch.tensor([classes[k] for k in active], device=params[0][0].device)
    successes, norms = 0.0, 0.0
    for _ in range(cfg.steps_per_epoch):
        xb = next(batches)
        masks = torch.stack([_from_tanh(params[k][0]) for k in active])  # (A, 1, H, W)
        patterns = torch.stack([_from_tanh(params[k][1]) for k in active])  # (A, 3, H, W)
        with autocast(xb.device, cfg.use_bf16):
            logits = model(stamp(xb, masks, patterns)).float().view(len(active), len(xb), -1)
        labels = targets[:, None].expand(-1, len(xb))
        ce = nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none")
        norm = masks.flatten(1).sum(1)
        cost = torch.tensor([costs[k].cost for k in active], device=xb.device)
        loss = (ce.view(len(active), -1).mean(1) + cost * norm).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward(inputs=[p for k in active for p in params[k]])  # no gradient into the model
        optimizer.step()
        successes = successes + (logits.argmax(2) == labels).float().mean(1).detach()
        norms = norms + norm.detach()
    return successes / cfg.steps_per_epoch, norms / cfg.steps_per_epoch


@torch.no_grad()
def success_rates(model, x: torch.Tensor, masks, patterns, classes, use_bf16=True, batch_size=500) -> torch.Tensor:
    """Share of images x (uint8) each (mask, pattern) sends to its class."""
    rates = []
    for mask, pattern, label in zip(masks, patterns, classes):
        hits = 0
        for start in range(0, len(x), batch_size):
            xb = x[start : start + batch_size].float().div_(255)
            with autocast(x.device, use_bf16):
                hits += (model(stamp(xb, mask, pattern)).argmax(1) == label).sum().item()
        rates.append(hits / len(x))
    return torch.tensor(rates)


def neural_cleanse(
    model: nn.Module,
    x: torch.Tensor,
    classes=None,
    cfg: NeuralCleanseConfig | None = None,
    seed: int = 0,
    progress: bool = False,
    **overrides,
) -> NeuralCleanseResult:
    """Reverse-engineer a trigger for every class (or `classes`) from clean uint8 images x (N, 3, H, W) on the
    model's device; settings from `cfg` and keyword overrides (see NeuralCleanseConfig)."""
    cfg = make_config(cfg, **overrides)
    check_images(x, "Neural Cleanse images")
    if len(x) == 0:
        raise ValueError("Neural Cleanse needs at least one clean image")
    start_time, was_training = time.perf_counter(), model.training
    model.eval()
    try:
        classes = _check_inputs(x, classes, num_classes_of(model, x), cfg)
        masks, patterns, epochs_run = _invert(model, x, classes, cfg, seed, progress)
        success = success_rates(model, x, masks, patterns, classes, cfg.use_bf16)
    finally:
        model.train(was_training)
    masks, patterns, norms = masks.cpu(), patterns.cpu(), masks.flatten(1).sum(1).cpu()
    anomaly = anomaly_indices(norms).float() if len(classes) >= 3 else torch.full((len(classes),), math.nan)
    return NeuralCleanseResult(
        classes,
        masks,
        patterns,
        norms,
        anomaly,
        success,
        flag_label(classes, norms, anomaly, cfg.anomaly_threshold),
        time.perf_counter() - start_time,
        epochs_run,
        {**dataclasses.asdict(cfg), "seed": seed},
    )


def _invert(model, x, classes, cfg: NeuralCleanseConfig, seed: int, progress: bool):
    """The joint optimisation of all classes' triggers; returns the best masks, patterns and epochs run."""
    gen = torch.Generator().manual_seed(seed)
    h, w = x.shape[-2:]
    # official initialisation: uniform random mask and pattern, mapped into tanh space
    params = [
        (
            _to_tanh(torch.rand(1, h, w, generator=gen)).to(x.device).requires_grad_(),
            _to_tanh(torch.rand(3, h, w, generator=gen)).to(x.device).requires_grad_(),
        )
        for _ in classes
    ]
    optimizer = torch.optim.Adam([p for pair in params for p in pair], lr=cfg.lr, betas=(0.5, 0.9))
    costs = [CostSchedule(cfg) for _ in classes]
    best = [_snapshot(m, p) for m, p in params]  # kept if never successful
    epochs_run, active = [cfg.epochs] * len(classes), list(range(len(classes)))
    batches = _batches(x, cfg.batch_size, gen)
    for epoch in tqdm(range(cfg.epochs), desc="Neural Cleanse", disable=not progress, leave=False):
        success, norm = _epoch(model, params, active, classes, costs, optimizer, batches, cfg)
        for k, s, n in zip(list(active), success.tolist(), norm.tolist()):
            improved, stop = costs[k].update(s, n)
            if improved:
                best[k] = _snapshot(*params[k])
            if stop:
                active.remove(k)
                epochs_run[k] = epoch + 1
        if not active:
            break
    return torch.stack([b[0] for b in best]), torch.stack([b[1] for b in best]), epochs_run
