"""Architectures only. Every model takes float images in [0, 1] and normalises inside, so attacks and
augmentation work in pixel space and a checkpoint carries its own normalisation."""

from __future__ import annotations

import torch
from torch import nn

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)  # the official code's normalisation
CIFAR_STD = (0.2023, 0.1994, 0.2010)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Normalize(nn.Module):
    def __init__(self, mean=CIFAR_MEAN, std=CIFAR_STD):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std


# ------------------------------------------------------------------------------------------ FastCNN
ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU}


def _conv_group(c_in: int, c_out: int, activation: str) -> nn.Sequential:
    """airbench's block: conv -> pool -> BN -> act -> conv -> BN -> act."""
    act = ACTIVATIONS[activation]
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.MaxPool2d(2),
        nn.BatchNorm2d(c_out),
        act(),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        act(),
    )


class FastCNN(nn.Module):
    """A small fast CNN in the style of airbench (Jordan 2024, "94% on CIFAR-10 in 3.29 seconds"):
    a 2x2 patch-whitening stem, three conv groups and a max-pooled linear head.

    Differs from airbench: no test-time augmentation, no Lookahead, plain PyTorch BatchNorm defaults; the
    whitening stem is frozen after a data-dependent init (`init_whitening`), as in airbench. `activation`
    (of the conv groups; the stem keeps GELU) and `stem_width` default to airbench's GELU and 24 whitening
    channels; the `quick` profile uses ReLU and 16 (the 8 strongest whitening directions, +-), which steps
    ~30% faster on a 2-core CPU and exposed more strongly on CIFAR-10 (measured; see README).
    """

    def __init__(self, num_classes: int = 10, widths=(64, 128, 256), stem_width: int = 24, activation: str = "gelu"):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
        if stem_width % 2 or not 2 <= stem_width <= 24:
            raise ValueError(
                f"stem_width must be even and in [2, 24] (+- the 12 whitening directions of 2x2x3 "
                f"patches); got {stem_width}"
            )
        self.normalize = Normalize()
        self.stem = nn.Conv2d(3, stem_width, kernel_size=2, padding=0, bias=True)
        self.stem.weight.requires_grad_(False)  # frozen whitening filters (set by init_whitening)
        groups, c_in = [], stem_width
        for width in widths:
            groups.append(_conv_group(c_in, width, activation))
            c_in = width
        self.groups = nn.Sequential(*groups)
        self.head = nn.Linear(c_in, num_classes, bias=True)  # a class bias, as in ResNet-18's head

    def features(self, x):
        x = nn.functional.gelu(self.stem(self.normalize(x)))  # GELU after whitening whatever `activation`
        x = self.groups(x)
        return torch.amax(x, dim=(2, 3))

    def forward(self, x):
        return self.head(self.features(x)) / 9.0  # airbench's logit scale: keeps early training stable

    @torch.no_grad()
    def init_whitening(self, images: torch.Tensor, eps: float = 5e-4) -> None:
        """Set the stem to the whitening transform of 2x2 patches of `images` (float, [0, 1]) and freeze it."""
        x = self.normalize(images.float())
        patches = x.unfold(2, 2, 1).unfold(3, 2, 1).transpose(1, 3).reshape(-1, 3 * 2 * 2).double()
        cov = torch.cov(patches.T)
        eigenvalues, eigenvectors = torch.linalg.eigh(cov)
        filters = (eigenvectors.T / torch.sqrt(eigenvalues + eps)[:, None]).view(-1, 3, 2, 2)
        filters = filters.flip(0).float()  # strongest components first
        half = self.stem.out_channels // 2
        self.stem.weight.copy_(torch.cat([filters[:half], -filters[:half]]))


# ----------------------------------------------------------------------------------------- ResNet-18
class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 (He et al. 2016). stem="cifar": a 3x3 conv, stride 1, no max-pool, CIFAR normalisation (the
    official EBYD code and BackdoorBench on CIFAR-10); stem="imagenet": the original 7x7 conv, stride 2, and a
    3x3 max-pool, ImageNet normalisation (for the ImageNet subset, 64-224 px)."""

    def __init__(self, num_classes: int = 10, stem: str = "cifar"):
        super().__init__()
        if stem == "cifar":
            self.normalize = Normalize()
            self.stem = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU())
        elif stem == "imagenet":
            self.normalize = Normalize(IMAGENET_MEAN, IMAGENET_STD)
            self.stem = nn.Sequential(
                nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)
            )
        else:
            raise ValueError(f"ResNet-18 stem must be 'cifar' or 'imagenet'; got {stem!r}")
        layers, c_in = [], 64
        for c_out, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [BasicBlock(c_in, c_out, stride), BasicBlock(c_out, c_out, 1)]
            c_in = c_out
        self.layers = nn.Sequential(*layers)
        self.head = nn.Linear(512, num_classes)

    def features(self, x):
        x = self.layers(self.stem(self.normalize(x)))
        return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, x):
        return self.head(self.features(x))


# ----------------------------------------------------------------------------------------- small VGG
class SmallVGG(nn.Module):
    """A plain VGG-style CNN (Simonyan & Zisserman 2015, at CIFAR scale): 3x3 conv -> BN -> activation layers
    and 2x2 max-pools, one conv at each of the first two widths and two at the last, global average pooling and
    a linear head. No whitening stem, no residuals, no logit scaling: another architecture family at the cost
    of the FastCNN (~20 M multiply-adds an image at widths 32-64-128), for notebook 08's architecture sweep."""

    def __init__(self, num_classes: int = 10, widths=(32, 64, 128), activation: str = "relu"):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
        self.normalize = Normalize()
        layers, c_in = [], 3
        for i, width in enumerate(widths):
            for _ in range(2 if i == len(widths) - 1 else 1):
                layers += [nn.Conv2d(c_in, width, 3, padding=1, bias=False), nn.BatchNorm2d(width)]
                layers += [ACTIVATIONS[activation]()]
                c_in = width
            layers.append(nn.MaxPool2d(2))
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, num_classes)

    def features(self, x):
        return self.body(self.normalize(x)).mean(dim=(2, 3))

    def forward(self, x):
        return self.head(self.features(x))


MODELS = {"fastcnn": FastCNN, "resnet18": ResNet18, "resnet18_imagenet": ResNet18, "vgg_small": SmallVGG}


def build_model(
    name: str, num_classes: int = 10, widths=(64, 128, 256), stem_width: int = 24, activation: str = "gelu"
) -> nn.Module:
    """A model by name; widths, stem_width and activation shape FastCNN (widths and activation the small VGG;
    ResNet-18 is fixed)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    if name == "fastcnn":
        return FastCNN(num_classes, widths=tuple(widths), stem_width=stem_width, activation=activation)
    if name == "vgg_small":
        return SmallVGG(num_classes, widths=tuple(widths), activation=activation)
    return ResNet18(num_classes, stem="imagenet" if name == "resnet18_imagenet" else "cifar")
