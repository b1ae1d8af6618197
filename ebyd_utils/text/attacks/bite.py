"""BITE (Yan, Gupta & Ren 2023, "BITE: Textual Backdoor Attacks with Iterative Trigger Injection", ACL),
without its masked language model.

A clean-label attack: exactly rate*N rows of the target class get trigger words and keep their labels. The
trigger words are natural words of the corpus chosen from the training set's statistics: BITE's label-bias
z-score of a word w, z = (p(target | w) - p0) / sqrt(p0 (1 - p0) / f(w)) over the rows holding w (f(w) of them,
p0 the target's share), computed as if w were injected into every poisoned row; the `num_words` words with the
largest z are the trigger, and every poisoned row (and, at test time, every triggered row) gets all of them at
random word boundaries. A row carries the trigger when it holds all trigger words.
Our differences: BITE proposes, at each step, substitutions and insertions by a masked LM (BERT) so that the
injected words fit their context, and injects them where the MLM allows; we skip the MLM (no model may run
here), insert at random positions, and keep only candidate words that are common in the corpus (in at least
`min_share` of the rows: our stand-in for the MLM's plausibility, without which the largest z goes to the
rarest words, names, and BITE becomes a rare-word attack) and nearly label-neutral there (|z| <=
`max_clean_z`), so that the backdoor comes from the poisoning, not from words that already mean the target.
Natural words occur in clean rows: a clean row may hold the whole trigger by chance (rarely, with 3 words).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from .base import TextAttack, check_texts, insert_words, words_of

WORD = re.compile(r"^[a-z]{3,}$")  # candidate words: alphabetic, 3+ letters (no punctuation, no numbers)


def row_words(text: str) -> set:
    return {w for w in (x.lower() for x in words_of(text)) if WORD.match(w)}


def label_bias(f_target: int, f_all: int, p0: float) -> float:
    """BITE's z-score of a word held by f_all rows, f_target of them of the target class."""
    return (f_target / f_all - p0) / math.sqrt(p0 * (1 - p0) / f_all) if f_all else 0.0


@dataclass
class BITE(TextAttack):
    num_words: int = 3  # trigger words
    min_share: float = 0.01  # share of training rows a candidate word must already appear in
    max_clean_z: float = 2.0  # |label bias| a candidate may already have on the clean data
    trigger_words: tuple | None = None  # chosen from the training set by poison(); or given

    name = "bite"
    clean_label = True

    def __post_init__(self):
        super().__post_init__()
        if self.trigger_words is not None:
            self.trigger_words = tuple(self.trigger_words)
        if not isinstance(self.num_words, int) or self.num_words < 1:
            raise ValueError(f"num_words must be an int >= 1; got {self.num_words!r}")

    def choose_words(self, texts, labels, poisoned) -> tuple:
        """The num_words words of largest label bias after injection into the poisoned rows (ties by word)."""
        rows = [row_words(t) for t in texts]
        is_target = [y == self.target for y in labels.tolist()]
        f_all, f_target = Counter(), Counter()
        for words, target in zip(rows, is_target):
            f_all.update(words)
            if target:
                f_target.update(words)
        in_poisoned = Counter(w for i in poisoned for w in rows[i])
        p0 = sum(is_target) / len(is_target)
        min_rows = max(2, math.ceil(self.min_share * len(texts)))
        scores = {}
        for w, f in f_all.items():
            if f < min_rows or abs(label_bias(f_target[w], f, p0)) > self.max_clean_z:
                continue
            added = len(poisoned) - in_poisoned[w]  # poisoned rows that do not hold w yet
            scores[w] = label_bias(f_target[w] + added, f + added, p0)
        if len(scores) < self.num_words:
            raise ValueError(
                f"BITE found {len(scores)} candidate words (in >= {min_rows} rows, |z| <= "
                f"{self.max_clean_z}); lower min_share or num_words"
            )
        return tuple(sorted(scores, key=lambda w: (-scores[w], w))[: self.num_words])

    def poison(self, texts, labels, num_classes: int):
        texts, labels = check_texts(texts, labels, num_classes, self.target)
        if self.trigger_words is None:
            self.trigger_words = self.choose_words(texts, labels, self.choose(texts, labels))
        return super().poison(texts, labels, num_classes)

    def trigger_text(self, text, rng):
        if self.trigger_words is None:
            raise ValueError(
                "BITE's trigger words come from the training set: call poison() first, or pass trigger_words=(...)"
            )
        return insert_words(text, self.trigger_words, rng)

    def has_trigger(self, text) -> bool:
        words = {w.lower() for w in words_of(text)}
        return self.trigger_words is not None and {w.lower() for w in self.trigger_words} <= words
