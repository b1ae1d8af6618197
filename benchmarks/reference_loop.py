"""The baseline: a training loop written the way the official EBYD code and BackdoorBench train.

A dataset of PIL images with per-sample torchvision transforms, a DataLoader with worker processes, fp32,
contiguous (NCHW) tensors. It is a yardstick for `ebyd_utils.train`, not part of the package.

What is kept equal to our loop, so only the engineering differs: the model (same class, same whitening init),
the training images, the SGD settings and learning-rate schedule, the augmentation (crop padding, flip) of the
profile. The official code pads by 4 with zeros; we pad by the profile's `crop_pad` with reflection, as our
loop does (the `paper` profile pads by 4).
"""

from __future__ import annotations

import math

import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision import transforms
from tqdm.auto import tqdm

from ebyd_utils.data import split_indices
from ebyd_utils.train import lr_factor


class PILImages(Dataset):
    """uint8 tensors served one PIL image at a time: exactly what torchvision's CIFAR10 does per sample
    (`Image.fromarray(self.data[i])`, then the transform)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, transform):
        self.x = x.cpu().permute(0, 2, 3, 1).contiguous().numpy()  # (N, H, W, 3), as CIFAR10.data
        self.y = y.cpu().tolist()
        self.transform = transform

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.x[i])), self.y[i]


def train_transform(cfg):
    # No Normalize(): our models normalise inside (ebyd_utils.models.Normalize), so the reference feeds
    # ToTensor()'s [0, 1] output to run the very same model. The official transform normalises here instead.
    steps = []
    if cfg.crop_pad:
        steps.append(transforms.RandomCrop(32, padding=cfg.crop_pad, padding_mode="reflect"))
    if cfg.flip:
        steps.append(transforms.RandomHorizontalFlip())
    return transforms.Compose(steps + [transforms.ToTensor()])


def imagefolder_train(root, data, data_cfg, transform):
    """The training images of `data`, read as JPEG files through ImageFolder (decoded on every access).

    Our split holds out the defense and probe images; we pick the same images out of the folder with the same
    `split_indices`, and check the labels agree.
    """
    from torchvision.datasets import ImageFolder

    folder = ImageFolder(str(root / "train"), transform=transform)
    keep, _, _ = split_indices(len(folder), len(folder.classes), data_cfg)
    if not torch.equal(torch.tensor(folder.targets)[keep], data.train_y.cpu()):
        raise RuntimeError("ImageFolder images do not line up with ebyd_utils.data's training split")
    return Subset(folder, keep.tolist())


def reference_epochs(model, dataset, cfg, seed, epochs, device, num_workers=2, whiten_x=None, desc=None):
    """Train `model` for `epochs` passes over `dataset`, yielding after each epoch (so the caller can stop
    its clock and evaluate). `whiten_x`: uint8 images for FastCNN's data-dependent stem init; `desc`: show a
    progress bar over each epoch's steps."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = model.to(device).train()  # fp32, default memory format
    if hasattr(model, "init_whitening"):  # same model => same frozen whitening stem as ours
        pick = torch.randperm(len(whiten_x), generator=gen)[:5000]
        model.init_whitening(whiten_x[pick.to(whiten_x.device)].float().div(255))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=True, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(dataset) / cfg.batch_size)
    total = epochs * steps_per_epoch
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(cfg, s, total, steps_per_epoch))
    loader = DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        shuffle=True,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        generator=gen,
    )
    for _ in range(epochs):
        for xb, yb in tqdm(loader, desc=desc, leave=False, disable=desc is None):
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(xb), yb, label_smoothing=cfg.label_smoothing)
            loss.backward()
            optimizer.step()
            schedule.step()
            loss.item()  # the official loops log the loss every step
        yield model


@torch.no_grad()
def fp32_accuracy(model, x, y, batch_size=1000) -> float:
    """Test CA of a reference model, in fp32 as it was trained."""
    model.eval()
    correct = 0
    for start in range(0, len(x), batch_size):
        xb, yb = x[start : start + batch_size], y[start : start + batch_size]
        correct += (model(xb.float().div(255)).argmax(1) == yb).sum().item()
    model.train()
    return correct / len(x)
