"""Exposure methods, one file each, one signature: suspect model + clean defense set + parameters ->
exposed model + a per-step log. Defender-side: never imports `attacks`.

    EXPOSURES[name](model, defense_x, defense_y, cfg, num_classes, probe_x=None, seed=0, monitor=None,
                    progress=True) -> (exposed model, log)

CONFIGS[name] is the method's config class (CUL's lives in `config.py`, the profile's `cul`); KNOBS[name] the one
setting that sets its strength. Every method stops by CUL's defender-side rule (defense accuracy <= stop_acc)
and logs as CUL does (`common.py`).
"""

from ..config import CULConfig
from .act_prune import ActPruneConfig, activation_prune
from .awp import AWPConfig, adversarial_weight_perturbation
from .bn_prune import BNPruneConfig, bn_prune
from .cul import clean_unlearn
from .large_lr_ft import LargeLRFTConfig, large_lr_finetune
from .magnitude_prune import MagnitudePruneConfig, magnitude_prune
from .noise_ft import NoiseFTConfig, noise_finetune
from .shuffle_ft import ShuffleFTConfig, shuffle_finetune

EXPOSURES = {
    "cul": clean_unlearn,
    "shuffle_ft": shuffle_finetune,
    "large_lr_ft": large_lr_finetune,
    "noise_ft": noise_finetune,
    "act_prune": activation_prune,
    "awp": adversarial_weight_perturbation,
    "magnitude_prune": magnitude_prune,
    "bn_prune": bn_prune,
}
CONFIGS = {
    "cul": CULConfig,
    "shuffle_ft": ShuffleFTConfig,
    "large_lr_ft": LargeLRFTConfig,
    "noise_ft": NoiseFTConfig,
    "act_prune": ActPruneConfig,
    "awp": AWPConfig,
    "magnitude_prune": MagnitudePruneConfig,
    "bn_prune": BNPruneConfig,
}
KNOBS = {
    "cul": "lr",
    "shuffle_ft": "lr",
    "large_lr_ft": "lr",
    "noise_ft": "sigma",
    "act_prune": "rate",
    "awp": "eps",
    "magnitude_prune": "sparsity",
    "bn_prune": "rate",
}
SEEDED = ("cul", "shuffle_ft", "large_lr_ft", "noise_ft", "awp")  # the others ignore the seed (restarts agree)


def exposure_method(name: str, **settings):
    """(method, its config with `settings` over the defaults); a ValueError names the methods or settings allowed."""
    import dataclasses

    if name not in EXPOSURES:
        raise ValueError(f"unknown exposure method {name!r}; choose one of {list(EXPOSURES)}")
    allowed = {f.name for f in dataclasses.fields(CONFIGS[name])}
    unknown = set(settings) - allowed
    if unknown:
        raise ValueError(f"unknown {name} setting(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    return EXPOSURES[name], CONFIGS[name](**settings)


__all__ = [
    "CONFIGS",
    "EXPOSURES",
    "KNOBS",
    "SEEDED",
    "ActPruneConfig",
    "AWPConfig",
    "BNPruneConfig",
    "LargeLRFTConfig",
    "MagnitudePruneConfig",
    "NoiseFTConfig",
    "ShuffleFTConfig",
    "activation_prune",
    "adversarial_weight_perturbation",
    "bn_prune",
    "clean_unlearn",
    "exposure_method",
    "large_lr_finetune",
    "magnitude_prune",
    "noise_finetune",
    "shuffle_finetune",
]
