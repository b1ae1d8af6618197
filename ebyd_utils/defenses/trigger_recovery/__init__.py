"""Backdoor trigger recovery (EBYD, Li et al. 2024, Sec. 4.2): methods by name, one signature.

    recover_trigger(method, model, x, y, seed=..., **settings) -> a result record

The model is the suspect or its exposed copy; x, y are the defender's labelled clean images (uint8) and labels
(Neural Cleanse ignores the labels). Every record converts to (dict of tensors, JSON-able info) with
`to_tensors()` and back with `result_from_tensors(tensors, info)`, so that it can be cached as safetensors.
Defender-side: nothing here receives the trigger, the true target or test ASR.
"""

from __future__ import annotations

from .bti_dbf import BTIConfig, BTIResult, bti_dbf
from .neural_cleanse import NeuralCleanseConfig, NeuralCleanseResult, neural_cleanse


def _neural_cleanse(model, x, y=None, seed: int = 0, progress: bool = False, **settings) -> NeuralCleanseResult:
    """Neural Cleanse needs no labels: it sends every clean image to every class (or to `classes=`)."""
    return neural_cleanse(model, x, seed=seed, progress=progress, **settings)


TRIGGER_RECOVERY = {"nc": _neural_cleanse, "bti": bti_dbf}
RESULT_TYPES = {"nc": NeuralCleanseResult, "bti": BTIResult}
CONFIGS = {"nc": NeuralCleanseConfig, "bti": BTIConfig}


def _check_method(method) -> None:
    if method not in TRIGGER_RECOVERY:
        raise ValueError(f"unknown trigger-recovery method {method!r}; choose one of {sorted(TRIGGER_RECOVERY)}")


def recover_trigger(method: str, model, x, y, seed: int = 0, progress: bool = False, **settings):
    """Run trigger-recovery `method` ("nc" or "bti") with its settings (see CONFIGS[method])."""
    _check_method(method)
    return TRIGGER_RECOVERY[method](model, x, y, seed=seed, progress=progress, **settings)


def result_from_tensors(tensors: dict, info: dict):
    """Rebuild a cached record from its tensors and info (the method is read from info["method"])."""
    method = info.get("method") if isinstance(info, dict) else None
    _check_method(method)
    return RESULT_TYPES[method].from_tensors(tensors, info)
