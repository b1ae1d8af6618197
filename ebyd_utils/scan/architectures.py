"""The architecture a user names, built and filled with the user's weights, driven as the package drives its own.

Our models take float images in [0, 1] and normalise inside (`models.py`); `train.as_input` turns uint8 batches
into such floats, and CUL, prediction and Neural Cleanse all feed models that way. So:

- ours by name: ``fastcnn`` (widths and stem width read off the file when not given; the activation, which has no
  weights, is an argument: "gelu" by default, "relu" for the quick profile's models), ``resnet18`` (CIFAR stem) and
  ``resnet18_imagenet``; their normalisation is in the file (the `normalize.*` buffers);
- any torchvision classification model as ``torchvision.<name>`` (``torchvision.resnet18``, ``torchvision.vgg16_bn``,
  ``torchvision.mobilenet_v2``, ...), built with `num_classes` and wrapped in `Normalized` (mean/std, ImageNet's by
  default) so it takes [0, 1] floats like ours; ``cifar_stem=True`` makes a torchvision ResNet's first layer the
  CIFAR one (3x3 convolution, stride 1, no max-pool), the usual adaptation for 32-pixel inputs.

A file that does not fit is refused with what differs: the class count (the classifier's outputs), missing or
unexpected weights (another architecture), or shapes (other widths).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..models import IMAGENET_MEAN, IMAGENET_STD, Normalize, build_model

OURS = ("fastcnn", "resnet18", "resnet18_imagenet")
TORCHVISION = "torchvision."
TEXT = "hf-text"
OPTIONAL_KEYS = ("num_batches_tracked",)  # BN counters some exports leave out; nothing reads them in eval


@dataclass(frozen=True)
class ModelSpec:
    """What the scanner needs to rebuild a user's model (every field lands in report.json)."""

    arch: str  # one of OURS, "torchvision.<name>", or "hf-text" (a folder: see scan/text.py)
    num_classes: int
    input_size: int = 32  # image side the model takes (pixels); clean images are resized and centre-cropped to it
    mean: tuple | None = None  # torchvision models: per-channel mean of [0, 1] inputs (None: ImageNet's)
    std: tuple | None = None  # ... and std; ours carry theirs in the file
    widths: tuple | None = None  # fastcnn block widths (None: read off the file)
    stem_width: int | None = None  # fastcnn whitening channels (None: read off the file)
    activation: str = "gelu"  # fastcnn activation ("gelu" = airbench and the smoke profile, "relu" = quick)
    cifar_stem: bool = False  # torchvision ResNets: 3x3 stride-1 first convolution, no max-pool


class Normalized(nn.Module):
    """A classifier that expects normalised inputs, driven as ours: float [0, 1] in, (x - mean) / std inside."""

    def __init__(self, net: nn.Module, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.net = net

    def forward(self, x):
        return self.net(self.normalize(x))


def check_spec(spec: ModelSpec) -> None:
    if not (spec.arch in OURS or spec.arch.startswith(TORCHVISION) or spec.arch == TEXT):
        raise ValueError(
            f"unknown architecture {spec.arch!r}: ours are {list(OURS)}; a torchvision model is "
            f"'torchvision.<name>' (e.g. torchvision.resnet18, torchvision.vgg16_bn); a Hugging Face text "
            f"classifier folder is {TEXT!r}"
        )
    if not (isinstance(spec.num_classes, int) and spec.num_classes >= 2):
        raise ValueError(f"num_classes must be an int >= 2; got {spec.num_classes!r}")
    if not (isinstance(spec.input_size, int) and 8 <= spec.input_size <= 1024):
        raise ValueError(f"input_size must be an int in [8, 1024] pixels (32 for CIFAR); got {spec.input_size!r}")
    if spec.arch in OURS and (spec.mean is not None or spec.std is not None):
        raise ValueError(
            f"{spec.arch} carries its normalisation in the file (normalize.mean/std); leave mean and std unset "
            "(they apply to torchvision models)"
        )
    for name in ("mean", "std"):
        value = getattr(spec, name)
        if value is not None and (len(value) != 3 or (name == "std" and min(value) <= 0)):
            raise ValueError(f"{name} must be 3 numbers (one a channel){', all > 0' if name == 'std' else ''}")


def build_image_model(spec: ModelSpec, state: dict) -> nn.Module:
    """The named architecture with the user's weights, in eval mode, taking [0, 1] float images."""
    check_spec(spec)
    if spec.arch in OURS:
        model = _ours(spec, state)
    else:
        model = Normalized(_torchvision(spec), spec.mean or IMAGENET_MEAN, spec.std or IMAGENET_STD)
        state = {f"net.{k}": v for k, v in state.items()}
        state.update({f"normalize.{k}": v for k, v in model.normalize.state_dict().items()})
    load_weights(model, state, spec)
    return model.eval()


def _ours(spec: ModelSpec, state: dict) -> nn.Module:
    if spec.arch != "fastcnn":
        return build_model(spec.arch, spec.num_classes)
    widths = spec.widths or tuple(
        state[f"groups.{i}.0.weight"].shape[0] for i in range(8) if f"groups.{i}.0.weight" in state
    )
    stem = spec.stem_width or (state["stem.weight"].shape[0] if "stem.weight" in state else 24)
    if not widths:
        raise ValueError("the file has no fastcnn blocks (groups.0.0.weight ...): is it another architecture?")
    return build_model("fastcnn", spec.num_classes, widths, stem, spec.activation)


def _torchvision(spec: ModelSpec) -> nn.Module:
    import torchvision

    name = spec.arch[len(TORCHVISION) :]
    if name not in torchvision.models.list_models(module=torchvision.models):
        raise ValueError(
            f"torchvision has no classification model {name!r}; e.g. resnet18, vgg16_bn, mobilenet_v2 "
            "(torchvision.models.list_models(module=torchvision.models) lists them)"
        )
    kwargs = {"aux_logits": False, "init_weights": False} if name in ("googlenet", "inception_v3") else {}
    net = torchvision.models.get_model(name, weights=None, num_classes=spec.num_classes, **kwargs)
    if spec.cifar_stem:
        if not (hasattr(net, "conv1") and hasattr(net, "maxpool")):
            raise ValueError(
                f"cifar_stem applies to torchvision ResNets (conv1 + maxpool); {name} has no such stem -- leave "
                "it off and give the input size the model was trained at"
            )
        net.conv1 = nn.Conv2d(3, net.conv1.out_channels, 3, 1, 1, bias=False)
        net.maxpool = nn.Identity()
    return net


def load_weights(model: nn.Module, state: dict, spec: ModelSpec) -> None:
    """load_state_dict, with a ValueError that says what does not fit instead of torch's key dump."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith(OPTIONAL_KEYS)]
    unexpected = [k for k in state if k not in expected]
    shapes = {k: (tuple(state[k].shape), tuple(v.shape)) for k, v in expected.items() if k in state}
    mismatched = {k: s for k, s in shapes.items() if s[0] != s[1]}
    head = [k for k, v in expected.items() if k.endswith("weight") and v.ndim == 2][-1:]
    if head and head[0] in mismatched and mismatched[head[0]][0][1:] == mismatched[head[0]][1][1:]:
        raise ValueError(
            f"wrong class count: the file's classifier ({head[0]}) has {mismatched[head[0]][0][0]} outputs, the "
            f"scan was asked for {spec.num_classes} classes (num_classes, or the class folders of the data); "
            "pass the model's own class count and class names"
        )
    if missing or unexpected or mismatched:
        detail = "; ".join(
            f"{what}: {len(items)} (e.g. {list(items)[:3]})"
            for what, items in (("missing", missing), ("unexpected", unexpected), ("other shapes", mismatched))
            if items
        )
        raise ValueError(
            f"the file's weights do not fit architecture {spec.arch!r} ({detail}). Is it another architecture? "
            f"Ours: {list(OURS)}; torchvision models: 'torchvision.<name>' (add cifar_stem for a CIFAR-stem ResNet)"
        )
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=False)


@torch.no_grad()
def check_forward(model: nn.Module, spec: ModelSpec) -> None:
    """One forward pass at the input size: a clear error if the model cannot take it or returns another shape."""
    x = torch.rand(2, 3, spec.input_size, spec.input_size, generator=torch.Generator().manual_seed(0))
    try:
        out = model(x.to(next(model.parameters()).device))
    except RuntimeError as err:
        raise ValueError(
            f"wrong input size: {spec.arch} cannot take {spec.input_size}x{spec.input_size} images "
            f"({str(err).splitlines()[0][:200]}); pass the size the model was trained at"
        ) from err
    if out.ndim != 2 or out.shape[1] != spec.num_classes:
        raise ValueError(f"the model returns shape {tuple(out.shape)}, not (N, {spec.num_classes}) logits")
