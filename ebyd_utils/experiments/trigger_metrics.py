"""Evaluation side of trigger recovery: how close a recovered trigger is to the true one, and whether it works.

This module may know the attack (it is on the attacker's side of the wall); the defenses never import it.

- `mask_iou`: for patch-like triggers (BadNets, Trojan). The recovered mask is binarised by keeping its top-k
  pixels, k = the true mask's area (the number of pixels where the true mask is > 0), so the score does not
  depend on a threshold and a perfect recovery scores 1 whatever its scale; optionally the best IoU over
  small shifts (`max_shift`), since a globally pooled network answers to the patch anywhere.
- `perturbation_cosine`: for whole-image triggers (Blend, SIG), whose true mask covers every pixel (or none):
  the cosine of the flattened recovered and true perturbations, the true one being attack.apply(x) - x.
- `trigger_asr`: the share of non-label test images that the recovered trigger sends to `label`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..data import check_images
from ..train import predict

SHIFT = 3  # pixels: the shift-tolerant IoU (a globally pooled CNN answers to a patch anywhere)
N_SIMILARITY = 200  # test images on which whole-image perturbations are compared


def _as_map(t, what: str) -> torch.Tensor:
    """A mask as a float (H, W) map: accepts (H, W), (1, H, W) or (C, H, W) (channels averaged)."""
    t = torch.as_tensor(t).detach().float().cpu()
    if t.ndim == 3:
        t = t.mean(0)
    if t.ndim != 2 or t.numel() == 0:
        raise ValueError(f"{what} must have shape (H, W), (1, H, W) or (C, H, W); got {tuple(t.shape)}")
    return t


def _shift(support: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """A boolean (H, W) map moved by (dy, dx) pixels, zero-filled (no wrap-around)."""
    h, w = support.shape
    out = torch.zeros_like(support)
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = support[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def mask_iou(recovered_mask, true_mask, top_k: int | None = None, max_shift: int = 0) -> float:
    """IoU of the recovered mask's top-k pixels with the true mask's support (pixels > 0).

    k defaults to the true mask's area; ties at the k-th value are broken by pixel order (torch.topk).
    `max_shift` > 0 reports the best IoU over moves of the kept pixels by up to that many pixels in each
    direction: a network with global pooling (our FastCNN) detects a patch anywhere, and Neural Cleanse may
    recover the right pattern a few pixels off the attacker's position (measured on the smoke BadNets model)."""
    recovered, truth = _as_map(recovered_mask, "recovered mask"), _as_map(true_mask, "true mask") > 0
    if recovered.shape != truth.shape:
        raise ValueError(f"recovered mask is {tuple(recovered.shape)} but the true mask is {tuple(truth.shape)}")
    if int(truth.sum()) == 0:
        raise ValueError("the true mask is empty (an additive trigger such as SIG); use perturbation_cosine")
    k = int(truth.sum()) if top_k is None else top_k
    if not (isinstance(k, int) and 1 <= k <= truth.numel()):
        raise ValueError(f"top_k must be an int in [1, {truth.numel()}] pixels; got {k!r}")
    if not (isinstance(max_shift, int) and max_shift >= 0):
        raise ValueError(f"max_shift must be an int >= 0 (pixels); got {max_shift!r}")
    kept = torch.zeros(truth.numel(), dtype=torch.bool)
    kept[recovered.flatten().topk(k).indices] = True
    kept = kept.view_as(truth)
    shifts = range(-max_shift, max_shift + 1)
    return max(
        (_shift(kept, dy, dx) & truth).sum().item() / (_shift(kept, dy, dx) | truth).sum().item()
        for dy in shifts
        for dx in shifts
    )


def perturbation_cosine(recovered_delta, true_delta) -> float:
    """Cosine similarity of two perturbations of the same shape, flattened (e.g. (3, H, W) or (N, 3, H, W))."""
    a, b = (torch.as_tensor(t).detach().double().cpu().flatten() for t in (recovered_delta, true_delta))
    if torch.as_tensor(recovered_delta).shape != torch.as_tensor(true_delta).shape:
        raise ValueError(
            f"perturbations must have the same shape; got {tuple(torch.as_tensor(recovered_delta).shape)}"
            f" and {tuple(torch.as_tensor(true_delta).shape)}"
        )
    if a.norm() == 0 or b.norm() == 0:
        raise ValueError("a perturbation is all zeros; its cosine similarity is undefined")
    return torch.nn.functional.cosine_similarity(a, b, dim=0).item()


def true_perturbation(attack, x: torch.Tensor) -> torch.Tensor:
    """The attack's perturbation on uint8 images x, attack.apply(x) - x, as float in [-1, 1] (N, 3, H, W)."""
    check_images(x, "images")
    return (attack.apply(x).float() - x.float()) / 255


def amplified_perturbation(changed: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """What a trigger changed in each uint8 image, as float (N, 3, H, W) in [0, 1] for display: 0.5 + delta /
    (2 max |delta|) per image, so grey is "unchanged" and a one-pixel or 1/255 change is visible."""
    check_images(changed, "changed images")
    check_images(images, "images")
    delta = (changed.float() - images.float()).cpu()
    scale = delta.flatten(1).abs().amax(1).clamp_min(1e-12).view(-1, 1, 1, 1)
    return (0.5 + delta / (2 * scale)).clamp(0, 1)


def stamp_with(mask: torch.Tensor, pattern: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """A uint8 -> uint8 stamp function for a (mask (1, H, W), pattern (3, H, W)) trigger in [0, 1]."""
    mask, pattern = torch.as_tensor(mask).float(), torch.as_tensor(pattern).float()
    if (
        mask.ndim != 3
        or mask.shape[0] != 1
        or pattern.ndim != 3
        or pattern.shape[0] != 3
        or mask.shape[1:] != pattern.shape[1:]
    ):
        raise ValueError(
            f"a trigger is (mask (1, H, W), pattern (3, H, W)); got {tuple(mask.shape)}, {tuple(pattern.shape)}"
        )

    def stamp(x: torch.Tensor) -> torch.Tensor:
        m, p = mask.to(x.device), pattern.to(x.device)
        return (((1 - m) * x.float() / 255 + m * p).clamp(0, 1) * 255).round().to(torch.uint8)

    return stamp


def trigger_asr(model, trigger, x: torch.Tensor, y: torch.Tensor, label: int) -> float:
    """Share of the images x (uint8) whose label y is not `label` that `model` assigns to `label` once the
    recovered trigger is applied. `trigger` is a uint8 -> uint8 function (e.g. BTIResult.stamp) or a
    (mask, pattern) pair."""
    check_images(x, "test images")
    if not torch.is_tensor(y) or y.shape != (len(x),):
        raise ValueError(f"labels must be a tensor of shape ({len(x)},)")
    stamp = stamp_with(*trigger) if isinstance(trigger, (tuple, list)) else trigger
    if not callable(stamp):
        raise ValueError("trigger must be a function of uint8 images or a (mask, pattern) pair")
    keep = y != label
    if not keep.any():
        raise ValueError(f"every image is of class {label}; ASR needs non-label images")
    stamped = stamp(x[keep])
    check_images(stamped, "stamped images")
    return (predict(model, stamped) == label).float().mean().item()


def similarity(attack, stamp, mask_map, images: torch.Tensor) -> dict:
    """Closeness to the true trigger: IoU (in place and within SHIFT pixels) for patch triggers, the cosine of
    the perturbations on `images` for whole-image ones (Blend, SIG). Evaluation side."""
    true_mask, _ = attack.trigger(*images.shape[-2:])
    area = int((true_mask > 0).sum())
    if 0 < area < true_mask[0].numel():
        return {
            "mask_iou": mask_iou(mask_map, true_mask),
            f"mask_iou_shift{SHIFT}": mask_iou(mask_map, true_mask, max_shift=SHIFT),
        }
    recovered = (stamp(images).float() - images.float()) / 255
    if not recovered.abs().sum():
        return {"perturbation_cosine": float("nan")}
    return {"perturbation_cosine": perturbation_cosine(recovered, true_perturbation(attack, images))}
