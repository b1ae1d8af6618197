"""Backdoor attacks, one file each, one interface (`base.Attack`): a name-to-class registry.

The official EBYD code's ten CIFAR triggers (BadNets, Blend, Trojan, SIG, One-pixel, WaNet, LC, Smooth, IAD,
Nashville) and the anchors' others (SSBA, BPP, Adap-Blend, Adap-Patch). LC, IAD and SSBA train a component of
their own (`needs_fit`; `pipeline.prepare_attack` caches it)."""

from __future__ import annotations

from .adaptive import AdapBlend, AdapPatch
from .badnets import BadNets
from .base import Attack
from .blend import Blend
from .bpp import BPP
from .iad import IAD
from .lc import LC
from .nashville import Nashville
from .onepixel import OnePixel
from .sig import SIG
from .smooth import Smooth
from .ssba import SSBA
from .trojan import Trojan
from .wanet import WaNet

ATTACKS = {
    cls.name: cls
    for cls in (
        BadNets,
        Blend,
        Trojan,
        SIG,
        OnePixel,
        WaNet,
        LC,
        Smooth,
        IAD,
        Nashville,
        SSBA,
        BPP,
        AdapBlend,
        AdapPatch,
    )
}


def make_attack(name: str, **params) -> Attack:
    """Build attack `name` with its parameters (target, rate, seed, all_to_all and the attack's own trigger
    settings); a ValueError lists the registered names, or the attack's allowed values."""
    if name not in ATTACKS:
        raise ValueError(f"unknown attack {name!r}; choose one of {sorted(ATTACKS)}")
    return ATTACKS[name](**params)


__all__ = [
    "ATTACKS",
    "AdapBlend",
    "AdapPatch",
    "Attack",
    "BPP",
    "BadNets",
    "Blend",
    "IAD",
    "LC",
    "Nashville",
    "OnePixel",
    "SIG",
    "SSBA",
    "Smooth",
    "Trojan",
    "WaNet",
    "make_attack",
]
