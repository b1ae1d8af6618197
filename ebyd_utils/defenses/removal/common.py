"""What the backdoor-removal defenses share: the result record, input checks, shuffled batches, the BatchNorm
layers and the per-channel neuron masks that ANP and RNP learn on them.

Neuron masks follow the official ANP / RNP code (`models/anp_batchnorm.py`, `models/mask_batchnorm.py`): a mask
m in [0, 1] per channel of every BatchNorm2d multiplies that layer's weight (gamma), not its bias, so the layer
computes m * gamma * x_hat + beta; ANP's perturbation adds delta to m and scales the bias by (1 + xi). Pruning a
channel sets its gamma to 0 (the official `pruning()`): the channel then outputs its constant bias beta. Here the
mask is a `torch.nn.utils.parametrize` parametrization of the weight and bias on a throw-away copy, so the
BatchNorm itself (running statistics, momentum) runs unchanged, for any model built of BatchNorm2d layers.

Defender-side: nothing here receives a trigger, the true target or ASR.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils import parametrize

from ...data import check_images
from ...train import as_input, autocast


# ------------------------------------------------------------------------------------------ the record
@dataclass
class RemovalResult:
    method: str  # "ft", "fp", "anp", "rnp" or "nc_unlearning"
    model: nn.Module  # the repaired model: a new model, the suspect is never modified
    seconds: float
    pruned: dict = field(default_factory=dict)  # BatchNorm name -> pruned channel indices (pruning methods)
    values: dict = field(default_factory=dict)  # name -> tensor the method decided on (masks, activations)
    info: dict = field(default_factory=dict)  # JSON-able: threshold, defender-side accuracies, epochs run
    settings: dict = field(default_factory=dict)  # the config used, the seed, whether a guide was used

    def to_tensors(self) -> tuple[dict, dict]:
        """(dict of tensors: the repaired state_dict under "model.", decided values under "value.";
        JSON-able info) for a safetensors file and its metadata."""
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        tensors.update({f"value.{k}": v for k, v in self.values.items()})
        info = {
            "method": self.method,
            "seconds": self.seconds,
            "info": dict(self.info),
            "settings": dict(self.settings),
            "pruned": {k: list(v) for k, v in self.pruned.items()},
        }
        return {k: v.detach().cpu().contiguous() for k, v in tensors.items()}, info

    @classmethod
    def from_tensors(cls, tensors: dict, info: dict, skeleton: nn.Module) -> "RemovalResult":
        """Rebuild a record; `skeleton` is a model of the same architecture (copied, then loaded)."""
        model = copy.deepcopy(skeleton)
        model.load_state_dict({k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")})
        values = {k[len("value.") :]: v for k, v in tensors.items() if k.startswith("value.")}
        return cls(
            info["method"],
            model.eval(),
            info["seconds"],
            dict(info.get("pruned", {})),
            values,
            dict(info.get("info", {})),
            dict(info.get("settings", {})),
        )


# ------------------------------------------------------------------------------------------ checks
def make_config(default, cfg=None, **overrides):
    """cfg (or the default config) with keyword overrides; an unknown name says which are allowed."""
    cfg = cfg or default
    allowed = {f.name for f in dataclasses.fields(cfg)}
    if set(overrides) - allowed:
        raise ValueError(
            f"unknown {type(cfg).__name__} setting(s) {sorted(set(overrides) - allowed)}; allowed: {sorted(allowed)}"
        )
    for name, value in overrides.items():  # a nested config (e.g. finetune=dict(epochs=5)) by its fields
        current = getattr(cfg, name)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            overrides[name] = make_config(current, **value)
    return dataclasses.replace(cfg, **overrides)


def check_unit(name: str, value) -> None:
    if not (isinstance(value, (int, float)) and 0 <= value <= 1):
        raise ValueError(f"{name} must be a number in [0, 1]; got {value!r}")


def check_count(name: str, value) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        raise ValueError(f"{name} must be an int >= 1; got {value!r}")


def check_positive(name: str, value) -> None:
    if not (isinstance(value, (int, float)) and value > 0):
        raise ValueError(f"{name} must be a number > 0; got {value!r}")


def check_data(model: nn.Module, x: torch.Tensor, y: torch.Tensor, what: str) -> None:
    """x: uint8 (N, 3, H, W) with N >= 1; y: int64 (N,) class indices the model's output can hold."""
    check_images(x, f"{what} images")
    if len(x) == 0:
        raise ValueError(f"{what} needs at least one clean image")
    if not torch.is_tensor(y) or y.dtype != torch.int64 or y.shape != (len(x),):
        shape = tuple(y.shape) if torch.is_tensor(y) else type(y).__name__
        raise ValueError(
            f"{what} labels must be an int64 tensor of shape ({len(x)},); got {shape} {getattr(y, 'dtype', '')}"
        )
    was_training = model.training
    with torch.no_grad():
        num_classes = model.eval()(as_input(x[:1])).shape[1]
    model.train(was_training)
    if y.min() < 0 or y.max() >= num_classes:
        raise ValueError(f"{what} labels must lie in [0, {num_classes - 1}]; got [{y.min()}, {y.max()}]")


def check_guide(model: nn.Module, guide: nn.Module | None) -> None:
    """A guide (the exposed model) must have the suspect's architecture: same class, same tensor names/shapes."""
    if guide is None:
        return
    mine = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in guide.state_dict().items()} if isinstance(guide, nn.Module) else {}
    if type(guide) is not type(model) or mine != theirs:
        raise ValueError(
            f"guide must be a model of the suspect's architecture ({type(model).__name__} with the "
            f"same parameter names and shapes); got {type(guide).__name__}"
        )


# ------------------------------------------------------------------------------------------ data and layers
def epoch_batches(n: int, batch_size: int, gen: torch.Generator, device) -> list:
    """Index tensors of one shuffled pass over n items."""
    order = torch.randperm(n, generator=gen).to(device)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def logits(model: nn.Module, x: torch.Tensor, use_bf16: bool) -> torch.Tensor:
    """Float logits of uint8 images under the same input conversion and autocast as `train.sgd_step`."""
    with autocast(x.device, use_bf16):
        return model(as_input(x)).float()


def bn_layers(model: nn.Module) -> dict:
    """Every BatchNorm2d by its module name, in model order."""
    return {name: m for name, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)}


def frozen_copy(model: nn.Module) -> nn.Module:
    """A deep copy whose own weights take no gradient (mask optimisation trains only the masks)."""
    work = copy.deepcopy(model)
    for p in work.parameters():
        p.requires_grad_(False)
    return work


# ------------------------------------------------------------------------------------------ neuron masks
class NeuronMask(nn.Module):
    """Mask m (init 1) and ANP's perturbations delta (of m) and xi (of the bias) of one BatchNorm2d."""

    def __init__(self, channels: int, device):
        super().__init__()
        self.mask = nn.Parameter(torch.ones(channels, device=device))
        self.noise = nn.Parameter(torch.zeros(channels, device=device))
        self.noise_bias = nn.Parameter(torch.zeros(channels, device=device))
        self.perturbed = False


class _Scaled(nn.Module):
    """The parametrization of one BatchNorm2d tensor by its NeuronMask: the weight is scaled by m (by m + delta
    while perturbed), the bias by 1 + xi while perturbed (ANP's two perturbations)."""

    def __init__(self, neuron: NeuronMask, tensor: str):
        super().__init__()
        self.neuron, self.tensor = neuron, tensor

    def forward(self, value):
        n = self.neuron
        if self.tensor == "weight":
            return value * (n.mask + n.noise if n.perturbed else n.mask)
        return value * (1 + n.noise_bias) if n.perturbed else value


def attach_masks(work: nn.Module) -> dict:
    """Put a NeuronMask on every BatchNorm2d of `work` (a throw-away copy); returns name -> NeuronMask."""
    layers = bn_layers(work)
    if not layers or any(not bn.affine for bn in layers.values()):
        raise ValueError("neuron masks need a model with affine BatchNorm2d layers (gamma and beta)")
    masks = {}
    for name, bn in layers.items():
        neuron = NeuronMask(bn.num_features, bn.weight.device)
        parametrize.register_parametrization(bn, "weight", _Scaled(neuron, "weight"))
        parametrize.register_parametrization(bn, "bias", _Scaled(neuron, "bias"))
        masks[name] = neuron
    return masks


def mask_step(optimizer, loss: torch.Tensor, params: list, masks: dict) -> None:
    """One update of the neuron masks only (the weights get no gradient), then back into [0, 1]: the step ANP
    and RNP share."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward(inputs=params)
    optimizer.step()
    clip_masks(masks)


def clip_masks(masks: dict) -> None:
    """Masks back into [0, 1] after every step (the official clip_mask)."""
    with torch.no_grad():
        for neuron in masks.values():
            neuron.mask.clamp_(0, 1)


def mask_values(masks: dict) -> dict:
    return {name: neuron.mask.detach().float().cpu().clone() for name, neuron in masks.items()}


def prune_by_threshold(values: dict, threshold: float) -> dict:
    """name -> channels whose mask value is <= threshold (the official rule in `evaluate_by_threshold`:
    `if mask_value <= threshold: pruning(...)`, ANP prune_neuron_cifar.py l.140, RNP main.py l.162)."""
    check_unit("threshold", threshold)
    return {name: torch.nonzero(v <= threshold).flatten().tolist() for name, v in values.items()}


def prune_gamma(model: nn.Module, pruned: dict) -> nn.Module:
    """A copy of `model` with the gamma of each pruned (BatchNorm name -> channels) set to 0, bias kept."""
    out = copy.deepcopy(model)
    layers = bn_layers(out)
    with torch.no_grad():
        for name, channels in pruned.items():
            if channels:
                layers[name].weight[torch.tensor(channels, dtype=torch.long)] = 0.0
    return out.eval()
