"""IAD, the input-aware dynamic backdoor (Nguyen & Tran, NeurIPS 2020, "Input-Aware Dynamic Backdoor Attack";
code VinAIResearch/input-aware-backdoor-attack-release).

A pattern generator g and a mask generator m give every image its own trigger, x' = (1 - m(x)) x + m(x) g(x),
trained so that x' goes to the target (backdoor loss), x stamped with ANOTHER image's pattern and mask keeps its
label (cross-trigger loss: a trigger works only on its own image), clean images keep theirs, and distinct images
get distinct patterns (diversity loss: distance between two images over distance between their patterns). The
mask is trained first, alone (density loss relu(m - mask_density) and the diversity loss on masks), then frozen.

Ours keeps the original's losses and weights (mask_density 0.032, lambda_norm 100, lambda_div 1; Adam 1e-2,
betas (0.5, 0.9) for the generators; outputs squashed as the original, tanh/2 + 1/2, the mask then through its
steep threshold), but is small: g and m are `TinyUNet`s (width 16, no skips; the original: 32-64-128 channels),
the classifier trained jointly with g is the package's FastCNN (the original: PreAct-ResNet-18), for
`mask_epochs` + `epochs` over `fit_images` seeded images (the original: 25 + 600 epochs over all of CIFAR-10), no
crop/rotation augmentation, bf16 autocast where the hardware runs it natively. The backdoor and cross shares of
each batch are `rate` and `cross_ratio` x rate (the original: p_attack = p_cross = 0.1, i.e. cross_ratio 1).
Defaults: fit 39 s on 50,000 random CIFAR-sized images (2-core AMD EPYC Zen 4).

A data-poisoning version, as the official EBYD code's `_dynamicTrigger` (which loads the released generators):
g and m are trained once, then poison the training set; the victim is trained afterwards by our loop, never
jointly with g. `poison` relabels round(rate * N) non-target images stamped with their own trigger, then stamps
a further, disjoint round(cross_ratio * rate * N) images (any class) with the trigger of another training image,
keeping their labels (cross-trigger samples: `cross_indices(y, poisoned)`, alias `extra_indices`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from ..train import autocast, lr_factor
from .base import Attack, choose_kept_label
from .components import (
    TinyUNet,
    batch_indices,
    load_module,
    module_tensors,
    new_surrogate,
    seeded,
    subsample,
    surrogate_config,
)

FIT_SEED_OFFSET = 211  # the generators' training seed is seed + this
CROSS_SEED_OFFSET = 212  # the cross-trigger samples are drawn from seed + this
DONOR_SEED_OFFSET = 213  # ... and the images whose triggers they get from seed + this
EPS = 1e-7


def squash(raw):
    """The original's output layer, tanh(raw) / 2 + 0.5, written as the sigmoid it equals."""
    return torch.sigmoid(2 * raw)


def threshold(mask01):
    """The original's near-binary mask, tanh(20 m - 10) / 2 + 0.5."""
    return torch.sigmoid(40 * mask01 - 20)


def stamp_with(painter, masker, x01, donors01):
    """x01 stamped with the pattern and mask that g and m make of donors01 (of x01 itself: its own trigger);
    returns (stamped, patterns)."""
    pattern, mask = squash(painter(donors01)).float(), threshold(squash(masker(donors01))).float()
    return (1 - mask) * x01 + mask * pattern, pattern


def diversity(x1, x2, t1, t2):
    """Mean of ||x1 - x2|| / ||t1 - t2|| (RMS distances per pair): small when distinct images get distinct
    triggers."""
    d_images = (x1 - x2).pow(2).mean((1, 2, 3)).sqrt()
    d_triggers = (t1 - t2).pow(2).mean((1, 2, 3)).sqrt()
    return (d_images / (d_triggers + EPS)).mean()


@dataclass
class IAD(Attack):
    cross_ratio: float = 1.0  # cross-trigger samples per backdoor sample (in training and in poison)
    mask_density: float = 0.032  # mask share the norm loss pushes toward (share of pixels)
    lambda_div: float = 1.0  # weight of the diversity loss
    lambda_norm: float = 100.0  # weight of the mask-density loss
    fit_images: int = 10000  # training images the generators learn from (0 = all)
    mask_epochs: int = 2  # epochs training the mask generator alone
    epochs: int = 4  # epochs training the pattern generator jointly with the surrogate
    batch_size: int = 128  # images per step (as the original)

    name = "iad"
    needs_fit = True

    def __post_init__(self):
        super().__post_init__()
        if not (isinstance(self.cross_ratio, (int, float)) and 0 <= self.cross_ratio <= 4):
            raise ValueError(
                f"IAD cross_ratio must be a number in [0, 4] (cross-trigger samples per poisoned "
                f"sample); got {self.cross_ratio!r}"
            )
        if not 0 < self.mask_density < 1:
            raise ValueError(f"IAD mask_density must be in (0, 1) (share of pixels); got {self.mask_density!r}")
        if self.lambda_div < 0 or self.lambda_norm < 0:
            raise ValueError(
                f"IAD lambda_div and lambda_norm must be >= 0; got {self.lambda_div!r}, {self.lambda_norm!r}"
            )
        for field, value, low in (
            ("fit_images", self.fit_images, 0),
            ("mask_epochs", self.mask_epochs, 1),
            ("epochs", self.epochs, 1),
            ("batch_size", self.batch_size, 2),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"IAD {field} must be an int >= {low}; got {value!r}")

    # -- the component
    def fit(self, x, y, num_classes, progress=False):
        with seeded(self.seed + FIT_SEED_OFFSET, x.device) as gen:
            x, y = subsample(x, y, self.fit_images, gen)
            x01 = x.float().div(255).contiguous(memory_format=torch.channels_last)
            masker = TinyUNet(3, 1, skips=False).to(x.device, memory_format=torch.channels_last)
            self._train_mask(masker, x01, gen)
            masker.eval().requires_grad_(False)
            painter = TinyUNet(3, 3, skips=False).to(x.device, memory_format=torch.channels_last)
            stats = self._train_pattern(painter, masker, x01, y.to(x.device), num_classes, gen)
        if progress:
            print("iad component: " + ", ".join(f"{k} {v:.3f}" for k, v in stats.items()))
        return {
            **module_tensors(painter, "pattern"),
            **module_tensors(masker, "mask"),
            **{f"metric.{k}": torch.tensor(v) for k, v in stats.items()},
        }

    def _pairs(self, n, gen, device):
        """Two seeded orders of the same images, batch by batch (the original's two shuffled loaders)."""
        return zip(batch_indices(n, self.batch_size, gen, device), batch_indices(n, self.batch_size, gen, device))

    def _train_mask(self, masker, x01, gen):
        optimizer = torch.optim.Adam(masker.parameters(), 1e-2, betas=(0.5, 0.9))
        for _ in range(self.mask_epochs):
            for i1, i2 in self._pairs(len(x01), gen, x01.device):
                with autocast(x01.device):
                    m1, m2 = (threshold(squash(masker(x01[i]))).float() for i in (i1, i2))
                n = min(len(i1), len(i2))
                loss = self.lambda_norm * F.relu(m1 - self.mask_density).mean() + self.lambda_div * diversity(
                    x01[i1][:n], x01[i2][:n], m1[:n], m2[:n]
                )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()

    def _train_pattern(self, painter, masker, x01, y, num_classes, gen):
        classifier = new_surrogate(num_classes).to(x01.device, memory_format=torch.channels_last)
        classifier.init_whitening(x01[torch.randperm(len(x01), generator=gen)[:5000].to(x01.device)])
        cfg = surrogate_config(len(x01), self.epochs, self.batch_size)
        opt_c = torch.optim.SGD(
            [p for p in classifier.parameters() if p.requires_grad],
            cfg.lr,
            momentum=cfg.momentum,
            nesterov=True,
            weight_decay=cfg.weight_decay,
        )
        opt_g = torch.optim.Adam(painter.parameters(), 1e-2, betas=(0.5, 0.9))
        steps_per_epoch = -(-len(x01) // self.batch_size)
        total = self.epochs * steps_per_epoch
        schedule = torch.optim.lr_scheduler.LambdaLR(opt_c, lambda s: lr_factor(cfg, s, total, steps_per_epoch))
        for _ in range(self.epochs):
            for i1, i2 in self._pairs(len(x01), gen, x01.device):
                n = min(len(i1), len(i2))
                x1, x2, y1 = x01[i1][:n], x01[i2][:n], y[i1][:n]
                n_bd = max(1, round(self.rate * n))
                n_cross = min(round(self.cross_ratio * n_bd), n - n_bd)
                with autocast(x01.device):
                    backdoor, p1 = stamp_with(painter, masker, x1[:n_bd], x1[:n_bd])
                    cross, _ = stamp_with(painter, masker, x1[n_bd : n_bd + n_cross], x2[n_bd : n_bd + n_cross])
                    p2 = squash(painter(x2[:n_bd])).float()
                    logits = classifier(torch.cat([backdoor, cross, x1[n_bd + n_cross :]])).float()
                targets = torch.cat([torch.full_like(y1[:n_bd], self.target), y1[n_bd:]])
                loss = F.cross_entropy(logits, targets) + self.lambda_div * diversity(x1[:n_bd], x2[:n_bd], p1, p2)
                opt_c.zero_grad(set_to_none=True)
                opt_g.zero_grad(set_to_none=True)
                loss.backward()
                opt_c.step()
                opt_g.step()
                schedule.step()
        return self._scores(classifier.eval(), painter.eval(), masker, x01[:500], y[:500])

    @torch.no_grad()
    def _scores(self, classifier, painter, masker, x01, y):
        """The jointly trained classifier's accuracy on (up to 500) fit images: clean; backdoored non-target
        images read as the target; cross-triggered images (the next image's trigger) read as their own label;
        and the mean mask share."""

        def right(images, labels):
            return (classifier(images).argmax(1) == labels).float().mean().item()

        keep = y != self.target
        return {
            "surrogate_clean_acc": right(x01, y),
            "surrogate_backdoor_acc": right(
                stamp_with(painter, masker, x01[keep], x01[keep])[0], torch.full_like(y[keep], self.target)
            ),
            "surrogate_cross_acc": right(stamp_with(painter, masker, x01, x01.roll(1, 0))[0], y),
            "mask_share": threshold(squash(masker(x01))).mean().item(),
        }

    def load_component(self, tensors):
        super().load_component(tensors)
        self._painter = load_module(lambda: TinyUNet(3, 3, skips=False), tensors, "pattern")
        self._masker = load_module(lambda: TinyUNet(3, 1, skips=False), tensors, "mask")

    # -- per-image triggers
    @torch.no_grad()
    def pattern_and_mask(self, x01):
        """Each image's own pattern (N, 3, H, W) and mask (N, 1, H, W), in [0, 1] (for inspection)."""
        self.require_component()
        painter, masker = self._painter.to(x01.device), self._masker.to(x01.device)
        return squash(painter(x01)), threshold(squash(masker(x01)))

    @torch.no_grad()
    def stamp(self, x01, donors01=None, batch_size: int = 500):
        """x01 stamped with its own triggers, or with those of `donors01` (cross-trigger)."""
        self.require_component()
        painter, masker = self._painter.to(x01.device), self._masker.to(x01.device)
        donors01 = x01 if donors01 is None else donors01
        return torch.cat(
            [
                stamp_with(painter, masker, x01[i : i + batch_size], donors01[i : i + batch_size])[0]
                for i in range(0, len(x01), batch_size)
            ]
            or [x01.clone()]
        )

    def trigger(self, h, w):
        self.require_component()
        grey = torch.full((1, 3, h, w), 0.5, device=next(self._painter.parameters()).device)
        return torch.zeros(1, h, w), (self.stamp(grey) - grey + 0.5).clamp(0, 1)[0].cpu()

    def cross_indices(self, y: torch.Tensor, poisoned: torch.Tensor) -> torch.Tensor:
        """round(cross_ratio * len(poisoned)) seeded indices of any class, disjoint from the poisoned ones: the
        cross-trigger samples, which keep their labels."""
        return choose_kept_label(
            self,
            y,
            poisoned,
            round(self.cross_ratio * len(poisoned)),
            self.seed + CROSS_SEED_OFFSET,
            any_class=True,
            what="cross-trigger",
        )

    extra_indices = cross_indices  # the common name of label-keeping extras (cover samples, noise mode)

    def donors(self, cross: torch.Tensor, n: int) -> torch.Tensor:
        """For each cross-trigger sample, the training image whose trigger it gets (seeded, never itself)."""
        gen = torch.Generator().manual_seed(self.seed + DONOR_SEED_OFFSET)
        return (cross.cpu() + torch.randint(1, n, (len(cross),), generator=gen)) % n

    def poison(self, x, y, num_classes):
        """Base poisoning (own trigger, relabelled), then the cross-trigger samples (another clean image's
        trigger, labels kept); returns the relabelled indices only."""
        clean = x
        x, poisoned_y, idx = super().poison(x, y, num_classes)
        cross = self.cross_indices(y, idx).to(x.device)
        if len(cross):
            donors = self.donors(cross, len(y)).to(x.device)
            stamped = self.stamp(clean[cross].float() / 255, clean[donors].float() / 255)
            x[cross] = (stamped.clamp(0, 1) * 255).round().to(torch.uint8)
        return x, poisoned_y, idx
