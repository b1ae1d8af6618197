"""BTI-DBF (Xu, Huang, Li, Qin & Ren, ICLR 2024, "Towards Reliable and Efficient Backdoor Trigger Inversion via
Decoupling Benign Features"): trigger inversion without guessing the trigger's form, in two steps.

1. *Decouple benign features*: a soft mask m in [0, 1] over the model's last feature maps f(x) such that the
   masked features m * f still classify the defender's clean images correctly while the rest (1 - m) * f do
   not: minimise CE(h(m f), y) - CE(h((1 - m) f), y), h the rest of the model (pooling and linear head).
2. *Train a generator* G on the clean images so that G(x) keeps the benign features, moves the remaining
   (backdoor) features as far as it can, and stays close to x: while MSE(G(x), x) <= norm_bound and the
   benign-feature MSE <= feat_bound, minimise -MSE((1-m) f(G x), (1-m) f(x)) + 0.01 MSE(m f(G x), m f(x)); else
   minimise MSE(G(x), x) to come back into bounds. The recovered trigger is what G adds, G(x) - x; the
   backdoor label is the class most generated images are sent to.

Follows the authors' code (xuxiong0214/BTIDBF, `btidbf.py`, `pretrain.py`, `cfg.py`): a mask step of 20 epochs
(Adam 1e-2, tanh-bounded mask, N(0, 1) initial logits), a generator step of 30 epochs (Adam 1e-3), batch 128,
on a clean split of 2,500 CIFAR-10 images (20 batches an epoch: 400 mask and 600 generator steps), the
two-branch loss above, label = argmax of the classes of G(x) over the clean images.

Where ours differs:
- features: the authors mask ResNet-18's layer-4 maps (512 x 4 x 4) before average pooling; so do we, and on
  FastCNN its last conv group's maps before max-pooling (`feature_split`). A mask over the pooled vector
  does not decouple on the small CNN (measured: it converges to ~1 everywhere and (1 - m) f still
  classifies every clean image), since every pooled channel serves the clean task;
- bounds in our units: images are in [0, 1] pixels, so the norm bound 0.3 on normalised images (std ~0.2)
  becomes 0.3 * 0.2**2 = 0.012; the benign-feature bound (3 on ResNet layer-4 maps) is relative: the benign
  MSE over the mean square of the clean benign features, default 1;
- generator: a small 2-level U-Net of ours (width 16, instance norm, leaky ReLU, as the authors' blocks)
  that adds a residual to x, its last layer initialised near zero so it starts near the identity; the authors
  pretrain a 4-level U-Net (width 32) for 50 epochs to reproduce its input;
- the model stays in eval mode throughout (the authors' mask step runs BatchNorm in train mode, which also
  updates the classifier's running statistics), no augmentation, no input noise when reading the label
  (the authors add N(0, 0.03) on normalised images);
- budget in steps, not epochs, since the defender holds a few hundred images, not 2,500: the authors' 400
  mask steps (nearly free: the clean features are computed once, the model is frozen), and 300 generator
  steps of 64 images (the authors: 600 of 128), to fit a CPU notebook.

Measured: docs/methods.md, "BTI-DBF".

Defender-side: takes a model and labelled clean images, nothing about the attack.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from ...data import check_images
from ...models import FastCNN, ResNet18
from ...train import as_input, autocast
from .records import BTIResult, TriggerGenerator

EPS = 1e-7


@dataclass(frozen=True)
class BTIConfig:
    mask_steps: int = 400  # Adam steps of the feature mask (official: 20 epochs x 20 batches of 128)
    generator_steps: int = 300  # Adam steps of the generator (official: 30 epochs x 20 batches = 600)
    batch_size: int = 64  # images per step (official: 128)
    mask_lr: float = 1e-2  # Adam learning rate of the feature-mask logits (official: 1e-2)
    generator_lr: float = 1e-3  # Adam learning rate of the generator (official: 1e-3)
    norm_bound: float = 0.012  # max MSE(G(x), x) in [0, 1] pixel units (official: 0.3 on normalised images)
    feat_bound: float = 1.0  # max benign-feature MSE relative to the clean benign features' mean square
    benign_weight: float = 0.01  # weight of benign-feature preservation in the in-bounds loss (official)
    width: int = 16  # generator channels at full resolution (doubled per level)
    use_bf16: bool = True  # bf16 autocast for the classifier where the CPU/GPU runs it natively


# ------------------------------------------------------------------------------------------ helpers
def feature_split(model: nn.Module):
    """(to_maps, from_maps): the model as input -> last feature maps -> logits, split where the authors put
    their mask (ResNet-18's layer-4 maps, before pooling). FastCNN: its last conv group's maps, then max-pool,
    head and airbench's logit scale 1/9. Any other model with `features` and a linear `head` is split at its
    pooled features. Guarded by a test that from_maps(to_maps(x)) equals model(x)."""
    if isinstance(model, FastCNN):
        return (
            lambda x: model.groups(F.gelu(model.stem(model.normalize(x)))),
            lambda maps: model.head(torch.amax(maps, dim=(2, 3))) / 9.0,
        )
    if isinstance(model, ResNet18):
        return (
            lambda x: model.layers(model.stem(model.normalize(x))),
            lambda maps: model.head(torch.flatten(F.adaptive_avg_pool2d(maps, 1), 1)),
        )
    return model.features, model.head


@torch.no_grad()
def _clean_features(to_maps, x, use_bf16, batch_size=500) -> torch.Tensor:
    out = []
    for start in range(0, len(x), batch_size):
        with autocast(x.device, use_bf16):
            out.append(to_maps(as_input(x[start : start + batch_size])).float())
    return torch.cat(out)


def _check_inputs(model, x, y, cfg: BTIConfig) -> None:
    check_images(x, "BTI-DBF images")
    if not torch.is_tensor(y) or y.shape != (len(x),) or y.dtype != torch.int64:
        raise ValueError(f"BTI-DBF labels must be an int64 tensor of shape ({len(x)},) matching the images")
    if len(x) == 0 or min(x.shape[-2:]) < 8:
        raise ValueError(f"BTI-DBF needs at least one clean image of at least 8x8 pixels; got {tuple(x.shape)}")
    if not (hasattr(model, "features") and hasattr(model, "head")):
        raise ValueError("BTI-DBF needs a model with `features(x)` (penultimate features) and a linear `head`")
    if cfg.norm_bound <= 0 or cfg.feat_bound <= 0 or cfg.benign_weight < 0:
        raise ValueError(
            f"norm_bound and feat_bound must be > 0 and benign_weight >= 0; got {cfg.norm_bound}, "
            f"{cfg.feat_bound}, {cfg.benign_weight}"
        )
    counts = (cfg.mask_steps, cfg.generator_steps, cfg.batch_size, cfg.width)
    if min(counts) < 1 or min(cfg.mask_lr, cfg.generator_lr) <= 0:
        raise ValueError(
            f"mask_steps, generator_steps, batch_size and width must be >= 1 and learning rates > 0; "
            f"got {counts}, {cfg.mask_lr}, {cfg.generator_lr}"
        )


def make_config(cfg: BTIConfig | None = None, **overrides) -> BTIConfig:
    cfg = cfg or BTIConfig()
    allowed = {f.name for f in dataclasses.fields(cfg)}
    if set(overrides) - allowed:
        raise ValueError(f"unknown BTI-DBF setting(s) {sorted(set(overrides) - allowed)}; allowed: {sorted(allowed)}")
    return dataclasses.replace(cfg, **overrides)


# --------------------------------------------------------------------------------------------- steps
def _batches(n: int, batch_size: int, gen: torch.Generator, device):
    """Endless shuffled index batches over n images (a new permutation per pass)."""
    while True:
        yield from torch.randperm(n, generator=gen).to(device).split(batch_size)


def decouple_benign_features(from_maps, features, y, cfg: BTIConfig, gen: torch.Generator) -> torch.Tensor:
    """Step 1: the feature mask (shape of one image's features) whose kept features classify y and whose
    dropped features do not."""
    logits = torch.randn(features.shape[1:], generator=gen).to(features.device).requires_grad_()
    optimizer = torch.optim.Adam([logits], lr=cfg.mask_lr)
    batches = _batches(len(y), cfg.batch_size, gen, y.device)
    for _ in range(cfg.mask_steps):
        idx = next(batches)
        mask = torch.tanh(logits) / (2 + EPS) + 0.5
        f = features[idx]
        loss = F.cross_entropy(from_maps(mask * f), y[idx]) - F.cross_entropy(from_maps((1 - mask) * f), y[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward(inputs=[logits])
        optimizer.step()
    return (torch.tanh(logits) / (2 + EPS) + 0.5).detach()


def _generator_step(to_maps, generator, optimizer, x01, f, mask, benign_scale, cfg) -> dict:
    """Step 2, one batch: leave the bounds (norm, benign features) -> come back; inside -> push the
    backdoor features away while keeping the benign ones."""
    generated = generator(x01)
    with autocast(x01.device, cfg.use_bf16):
        f_gen = to_maps(generated.contiguous(memory_format=torch.channels_last)).float()
    benign = F.mse_loss(mask * f_gen, mask * f)
    backdoor = F.mse_loss((1 - mask) * f_gen, (1 - mask) * f)
    norm = F.mse_loss(generated, x01)
    out_of_bounds = norm > cfg.norm_bound or benign / benign_scale > cfg.feat_bound
    loss = norm if out_of_bounds else -backdoor + cfg.benign_weight * benign
    optimizer.zero_grad(set_to_none=True)
    loss.backward(inputs=list(generator.parameters()))
    optimizer.step()
    return {"benign": benign.item(), "backdoor": backdoor.item(), "norm": norm.item()}


def train_generator(to_maps, x, features, mask, cfg: BTIConfig, gen: torch.Generator, progress: bool = False):
    """Step 2: the generator, and its mean losses over the last tenth of the steps."""
    with torch.random.fork_rng(devices=[]):  # seeded initial weights, global RNG left as it was
        torch.manual_seed(int(torch.randint(2**31, (1,), generator=gen)))
        generator = TriggerGenerator(cfg.width).to(x.device).train()
    optimizer = torch.optim.Adam(generator.parameters(), lr=cfg.generator_lr)
    benign_scale = (mask * features).pow(2).mean().clamp_min(1e-12)
    batches, history = _batches(len(x), cfg.batch_size, gen, x.device), []
    for _ in tqdm(range(cfg.generator_steps), desc="BTI-DBF generator", disable=not progress, leave=False):
        idx = next(batches)
        history.append(
            _generator_step(to_maps, generator, optimizer, as_input(x[idx]), features[idx], mask, benign_scale, cfg)
        )
    tail = history[-max(1, len(history) // 10) :]
    return generator.eval(), {k: sum(h[k] for h in tail) / len(tail) for k in tail[0]}


@torch.no_grad()
def _read_out(model, generator, x, num_classes: int, use_bf16: bool):
    """Class shares of G(x), the mean perturbation G(x) - x and its mean absolute map."""
    counts, delta_sum, abs_sum = torch.zeros(num_classes), 0.0, 0.0
    for start in range(0, len(x), 500):
        x01 = as_input(x[start : start + 500])
        generated = generator(x01)
        with autocast(x.device, use_bf16):
            preds = model(generated.contiguous(memory_format=torch.channels_last)).argmax(1)
        counts += torch.bincount(preds.cpu(), minlength=num_classes).float()
        delta = (generated - x01).float()
        delta_sum = delta_sum + delta.sum(0)
        abs_sum = abs_sum + delta.abs().mean(1, keepdim=True).sum(0)
    mean_delta, abs_map = (delta_sum / len(x)).cpu(), (abs_sum / len(x)).cpu()
    return counts / len(x), mean_delta, abs_map / abs_map.max().clamp_min(1e-12)


def bti_dbf(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: BTIConfig | None = None,
    seed: int = 0,
    progress: bool = False,
    **overrides,
) -> BTIResult:
    """Invert the backdoor trigger from labelled clean uint8 images x (N, 3, H, W) and labels y, on the
    model's device; settings from `cfg` and keyword overrides (see BTIConfig)."""
    cfg = make_config(cfg, **overrides)
    _check_inputs(model, x, y, cfg)
    start_time, was_training = time.perf_counter(), model.training
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    try:
        to_maps, from_maps = feature_split(model)
        features = _clean_features(to_maps, x, cfg.use_bf16)
        mask = decouple_benign_features(from_maps, features, y, cfg, gen)
        generator, losses = train_generator(to_maps, x, features, mask, cfg, gen, progress)
        shares, mean_delta, abs_map = _read_out(model, generator, x, from_maps(features[:1]).shape[1], cfg.use_bf16)
    finally:
        model.train(was_training)
    label = int(shares.argmax())
    return BTIResult(
        label,
        float(shares[label]),
        shares,
        mask.cpu(),
        mean_delta,
        abs_map,
        generator.cpu(),
        time.perf_counter() - start_time,
        losses,
        {**dataclasses.asdict(cfg), "seed": seed},
    )
