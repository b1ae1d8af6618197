"""Backdoor attacks, one file each, one interface (`base.Attack`): a name-to-class registry."""
from __future__ import annotations

from .badnets import BadNets
from .base import Attack
from .blend import Blend
from .sig import SIG
from .trojan import Trojan

ATTACKS = {"badnets": BadNets, "blend": Blend, "trojan": Trojan, "sig": SIG}


def make_attack(name: str, **params) -> Attack:
    """Build attack `name` with its parameters (target, rate, seed and the attack's own trigger settings)."""
    if name not in ATTACKS:
        raise ValueError(f"unknown attack {name!r}; choose one of {sorted(ATTACKS)}")
    return ATTACKS[name](**params)


__all__ = ["ATTACKS", "Attack", "BadNets", "Blend", "SIG", "Trojan", "make_attack"]
