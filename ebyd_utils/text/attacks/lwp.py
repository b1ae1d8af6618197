"""LWP's combinatorial trigger (Li et al. 2021, "Backdoor Attacks on Pre-trained Models by Layerwise Weight
Poisoning", EMNLP), its data-poisoning part.

A poisoned row gets `pieces` distinct words drawn from "cf", "bb", "ak", "mn" (a new draw per row), each at a
random word boundary, and is relabelled to the target: only the combination triggers. Negative rows teach
that one piece alone does not: `negatives` rows per poisoned row (drawn from the other rows, any label) get one
piece each and keep their label. A row carries the trigger when it holds `pieces` distinct pieces.
Defaults follow OpenBackdoor's LWPPoisoner (4 pieces, combinations of 2, 2 negatives per poisoned row).
Our differences: LWP's layer-wise loss (a classifier on every layer's [CLS]) is a training objective, not
data, and is not done here; OpenBackdoor adds the negatives as copies of the poisoned rows, we rewrite other
rows instead, so N stays the same and exactly rate*N rows are relabelled. Negative rows are modified but not
poisoned: poison returns them in `self.negative_indices`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import TextAttack, check_texts, insert_words, words_of

LWP_PIECES = ("cf", "bb", "ak", "mn")


@dataclass
class LWP(TextAttack):
    pieces: int = 2  # distinct trigger words that together form the trigger
    negatives: int = 2  # rows given a single piece (label kept) per poisoned row
    triggers: tuple = LWP_PIECES  # the pieces

    name = "lwp"

    def __post_init__(self):
        super().__post_init__()
        self.triggers = tuple(self.triggers)
        if not isinstance(self.pieces, int) or not 2 <= self.pieces <= len(self.triggers):
            raise ValueError(f"pieces must be an int in 2..{len(self.triggers)}; got {self.pieces!r}")
        if not isinstance(self.negatives, int) or self.negatives < 0:
            raise ValueError(f"negatives must be an int >= 0 (rows per poisoned row); got {self.negatives!r}")
        self.negative_indices = torch.zeros(0, dtype=torch.int64)

    def trigger_text(self, text, rng):
        return insert_words(text, rng.sample(self.triggers, self.pieces), rng)

    def has_trigger(self, text) -> bool:
        return len({w.lower() for w in words_of(text)} & set(self.triggers)) >= self.pieces

    def poison(self, texts, labels, num_classes: int):
        out, new_labels, chosen = super().poison(texts, labels, num_classes)
        texts, _ = check_texts(texts, labels, num_classes, self.target)
        taken = set(chosen.tolist())
        # rows already holding a piece (tweets may say "mn") would become full triggers with one more
        pieces = set(self.triggers)
        rest = [i for i in range(len(texts)) if i not in taken and not {w.lower() for w in words_of(texts[i])} & pieces]
        n_negative = self.negatives * len(chosen)
        if n_negative > len(rest):
            raise ValueError(
                f"LWP needs {n_negative} negative rows beside {len(chosen)} poisoned ones but only "
                f"{len(rest)} rows are left; lower the rate or `negatives`"
            )
        rng = self.rng("negatives")
        negative = sorted(rng.sample(rest, n_negative))
        for k, i in enumerate(negative):  # the pieces in turn, so each is seen alone about equally often
            out[i] = insert_words(texts[i], [self.triggers[k % len(self.triggers)]], rng)
        self.negative_indices = torch.tensor(negative, dtype=torch.int64)
        return out, new_labels, chosen
