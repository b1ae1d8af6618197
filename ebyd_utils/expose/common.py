"""What the exposure methods share: input checks, the defender's stop rule, the per-step log, and the two loops
every method here is one of.

- **Fine-tuning loops** (shuffled-label FT, large-lr FT, noise FT): one row per epoch, as Clean Unlearning;
- **strength schedules** (activation pruning, weight perturbation, magnitude and BatchNorm pruning): a one-shot
  edit applied at `levels` growing strengths, strength * k / levels for k = 1..levels, each applied afresh to
  the suspect (never compounded), one row per level.

The log is CUL's (`cul._log_row`: `epoch`, `defense_acc`, `defense_share_<c>`, `probe_share_<c>`, and whatever
the evaluation's `monitor` adds), plus `strength`: the level's rate / eps / sparsity, or the epoch of a
fine-tuning loop. `epoch` is the step (0 = the suspect as it is), so the readings made for CUL
(`defenses.shares_at_stop`, label detection) read every method alike. The stop rule is CUL's: the first step
whose defense-set accuracy is <= `stop_acc`; that step's model is returned, and the log's attrs hold
`stop_epoch` (None when it never fell that far: the last step is returned, and the model counts as not exposed)
and `collapsed`. Defender-side: nothing here sees a trigger, a target or ASR.
"""

from __future__ import annotations

import copy

import pandas as pd
import torch
from tqdm.auto import tqdm

from ..data import augment
from ..train import check_inputs, sgd_step
from .cul import _log_row, check_not_empty


def check_rate(name: str, value) -> None:
    """A strength that is a share: a number in [0, 1)."""
    if isinstance(value, bool) or not (isinstance(value, (int, float)) and 0 <= value < 1):
        raise ValueError(f"{name} must be a rate in [0, 1); got {value!r}")


def check_positive(name: str, value) -> None:
    if isinstance(value, bool) or not (isinstance(value, (int, float)) and value > 0):
        raise ValueError(f"{name} must be a number > 0; got {value!r}")


def check_count(name: str, value) -> None:
    if isinstance(value, bool) or not (isinstance(value, int) and value >= 1):
        raise ValueError(f"{name} must be an int >= 1; got {value!r}")


def check_defense(defense_x, defense_y, probe_x, num_classes: int) -> None:
    """The defender's data: a non-empty batch of clean images with one int64 label each, in [0, num_classes)."""
    check_not_empty(defense_x)
    check_inputs(defense_x, "defense inputs")
    if probe_x is not None:
        check_inputs(probe_x, "probe inputs")
    if not torch.is_tensor(defense_y) or defense_y.dtype != torch.int64 or defense_y.shape != (len(defense_x),):
        raise ValueError(f"defense labels must be an int64 tensor of shape ({len(defense_x)},)")
    if defense_y.min() < 0 or defense_y.max() >= num_classes:
        raise ValueError(
            f"defense labels must lie in [0, {num_classes - 1}]; got [{defense_y.min()}, {defense_y.max()}]"
        )


def _row(model, step, strength, defense_x, defense_y, probe_x, num_classes, monitor) -> dict:
    row = _log_row(model, step, defense_x, defense_y, probe_x, num_classes, monitor)
    return {"epoch": row.pop("epoch"), "strength": float(strength), **row}


def run_steps(
    model, steps, make, defense_x, defense_y, probe_x, num_classes, stop_acc, monitor, progress, desc
) -> tuple:
    """The stop rule over a sequence of steps: `steps` are the strengths, make(k, strength) the model at step k
    (a fine-tuning epoch on the model it keeps, or the edit at that level applied to the suspect). Returns
    (the model at the stop step, or at the last one; the log)."""
    check_rate("stop_acc", stop_acc)
    current = copy.deepcopy(model).eval()
    rows = [_row(current, 0, 0.0, defense_x, defense_y, probe_x, num_classes, monitor)]
    stop = 0 if rows[0]["defense_acc"] <= stop_acc else None
    bar = tqdm(list(enumerate(steps, 1)), desc=desc, disable=not progress, leave=False)
    for k, strength in bar:
        if stop is not None:
            break
        current = make(k, strength)
        rows.append(_row(current, k, strength, defense_x, defense_y, probe_x, num_classes, monitor))
        bar.set_postfix(defense_acc=f"{rows[-1]['defense_acc']:.2f}")
        if rows[-1]["defense_acc"] <= stop_acc:
            stop = k
    log = pd.DataFrame(rows)
    log.attrs.update(stop_epoch=stop, collapsed=stop is not None)
    return current.eval(), log


def schedule(strength: float, levels: int) -> list[float]:
    """The growing strengths of a one-shot edit: strength * k / levels, k = 1..levels."""
    check_count("levels", levels)
    return [strength * k / levels for k in range(1, levels + 1)]


def finetune_exposure(
    model, defense_x, defense_y, cfg, num_classes, probe_x, seed, monitor, progress, desc, optimizer, labels, inputs
) -> tuple:
    """A fine-tuning exposure: epochs over the defense set in seeded random batches (random crop + flip when
    cfg.augment), BatchNorm on batch statistics (the official fine-tuning loops run the net in train mode),
    each step `train.sgd_step` with gradient clipping at cfg.grad_clip after backward(). `optimizer(params)`
    builds the optimiser; labels(y, gen) gives the batch's training labels, inputs(x, gen) its inputs."""
    check_defense(defense_x, defense_y, probe_x, num_classes)
    check_count("epochs", cfg.epochs)
    check_count("batch_size", cfg.batch_size)
    exposed = copy.deepcopy(model)
    opt = optimizer([p for p in exposed.parameters() if p.requires_grad])
    gen = torch.Generator().manual_seed(seed)

    def epoch(k, _):
        exposed.train()
        for idx in torch.randperm(len(defense_x), generator=gen).split(cfg.batch_size):
            idx = idx.to(defense_x.device)
            xb = augment(defense_x[idx], 4, True, gen) if cfg.augment else defense_x[idx]
            sgd_step(exposed, opt, inputs(xb, gen), labels(defense_y[idx], gen), grad_clip=cfg.grad_clip)
        return exposed.eval()

    steps = list(range(1, cfg.epochs + 1))
    return run_steps(
        model, steps, epoch, defense_x, defense_y, probe_x, num_classes, cfg.stop_acc, monitor, progress, desc
    )


def keep_labels(y, gen):
    return y


def keep_inputs(x, gen):
    return x
