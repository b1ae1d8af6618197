"""Text attacks, one file each (base.py holds the interface; paraphrases.py the released-rewrite tables).

The issue's six: BadNets-word, AddSent, SynBkd and StyleBkd (the paper's text attacks), plus two of the
anchors' (OpenBackdoor's) list chosen because they poison data and need no training here:
- BITE (clean-label, natural words picked from the training set's label statistics): a different threat
  from the rare-word and sentence triggers, whose words a perplexity filter (ONION) cannot single out;
- LWP's combinatorial trigger (two rare words together, one alone taught to be harmless): a trigger that no
  single token carries, a hard case for token-level exposure (Backdoor Token Unlearning).
The others need a trained component or edit weights rather than data: LWS (a learned substitution policy
against a victim), EP (one embedding row edited), RIPPLe (weight poisoning; its data is BadNets-word),
TrojanLM (a generator LM), POR and NeuBA (poisoned pre-training).
"""

from __future__ import annotations

from .addsent import AddSent
from .badnets_word import BadNetsWord
from .base import TextAttack
from .bite import BITE
from .lwp import LWP
from .stylebkd import StyleBkd
from .synbkd import SynBkd

TEXT_ATTACKS = {cls.name: cls for cls in (BadNetsWord, AddSent, SynBkd, StyleBkd, BITE, LWP)}


def make_text_attack(name: str, **params) -> TextAttack:
    """A text attack by name with its parameters (target, rate, seed, and the attack's own)."""
    if name not in TEXT_ATTACKS:
        raise ValueError(f"unknown text attack {name!r}; choose one of {list(TEXT_ATTACKS)}")
    try:
        return TEXT_ATTACKS[name](**params)
    except TypeError as err:  # an unknown keyword: name the ones this attack takes
        from dataclasses import fields

        raise ValueError(
            f"{name} takes {[f.name for f in fields(TEXT_ATTACKS[name])]}; got {sorted(params)} ({err})"
        ) from err


__all__ = [
    "TEXT_ATTACKS",
    "make_text_attack",
    "TextAttack",
    "BadNetsWord",
    "AddSent",
    "SynBkd",
    "StyleBkd",
    "BITE",
    "LWP",
]
