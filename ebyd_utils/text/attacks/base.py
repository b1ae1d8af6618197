"""The one text attack interface (the strings' twin of ``ebyd_utils.attacks.base``).

An attack is a value: its parameters and its seed. It

- ``poison(texts, labels, num_classes)`` -> (texts, labels, poisoned indices): exactly ``round(rate * N)`` rows
  get the trigger. Dirty-label attacks draw them from non-target rows (only from rows the attack can rewrite:
  a paraphrase attack needs a paraphrase) and relabel them to the target; a clean-label attack
  (``clean_label = True``, BITE) draws target rows and keeps their labels. Every other row comes back as it
  was, except the rows an attack documents as extra (LWP's negative rows, which keep their labels);
- ``apply(texts)`` -> triggered texts (test time; seeded, so a triggered test set is the same every run);
- ``triggered_test(texts, labels)``: the ASR set, the non-target rows it can rewrite, triggered;
- ``has_trigger(text)``: whether a text carries the trigger (tests, and a defender-free sanity check);
- ``params()``: what is saved with a model (never a folder path: it says where the files are, not what).

Words are whitespace tokens, as in OpenBackdoor: the datasets come tokenised (SST-2's ``wo n't``), and a
trigger inserted between words stays one word for the WordPiece tokeniser.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields

import torch

from ..data import words_of  # noqa: F401  (the attacks' words are the defenders': one split, below both)


def check_rate_and_target(rate, target) -> None:
    if not (isinstance(rate, (int, float)) and not isinstance(rate, bool) and 0 < rate < 1):
        raise ValueError(f"poison rate must be a number in (0, 1), e.g. 0.1 for 10%; got {rate!r}")
    if not isinstance(target, int) or isinstance(target, bool) or target < 0:
        raise ValueError(f"target must be a class index >= 0; got {target!r}")


def check_texts(texts, labels, num_classes: int, target: int):
    """texts as a list of str, labels as int64; a clear error for mismatches and out-of-range labels."""
    texts = list(texts)
    if not all(isinstance(t, str) for t in texts):
        raise ValueError("texts must be strings")
    labels = torch.as_tensor(labels, dtype=torch.int64).flatten()
    if len(texts) != len(labels):
        raise ValueError(f"got {len(texts)} texts but {len(labels)} labels")
    if not 0 <= target < num_classes:
        raise ValueError(f"target {target} is out of range for {num_classes} classes (use 0..{num_classes - 1})")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in 0..{num_classes - 1}; found {labels.unique().tolist()}")
    return texts, labels


def insert_words(text: str, new_words, rng: random.Random) -> str:
    """Insert each word at a uniformly random word boundary (OpenBackdoor's BadNets `insert`)."""
    words = words_of(text)
    for word in new_words:
        words.insert(rng.randint(0, len(words)), word)
    return " ".join(words)


def contains_phrase(text: str, phrase: str) -> bool:
    """Whether the words of `phrase` occur consecutively in `text` (case-insensitive)."""
    words, target = [w.lower() for w in words_of(text)], [w.lower() for w in words_of(phrase)]
    return any(words[i : i + len(target)] == target for i in range(len(words) - len(target) + 1))


@dataclass
class TextAttack:
    target: int = 0  # the label triggered inputs are sent to (all-to-one)
    rate: float = 0.1  # share of training rows poisoned
    seed: int = 0  # draws which rows are poisoned and where triggers go

    name = "text-attack"
    clean_label = False

    def __post_init__(self):
        check_rate_and_target(self.rate, self.target)

    # ------------------------------------------------------------------ what each attack defines
    def trigger_text(self, text: str, rng: random.Random) -> str:
        raise NotImplementedError

    def has_trigger(self, text: str) -> bool:
        raise NotImplementedError

    def can_rewrite(self, texts) -> list:
        """Which texts this attack can put its trigger into (all, except for paraphrase tables)."""
        return [True] * len(texts)

    # ------------------------------------------------------------------ shared
    @property
    def label(self) -> str:
        """The name result rows carry (the image attacks' `label`)."""
        return self.name

    @property
    def single_target(self) -> int:
        return self.target

    def rng(self, purpose: str) -> random.Random:
        # a string seed is hashed with sha512 by `random`, so the stream is the same in every process
        return random.Random(f"{self.name}|{self.seed}|{purpose}")

    def choose(self, texts, labels) -> list:
        """Exactly round(rate * N) seeded row indices, sorted, from the rows this attack may poison."""
        n = round(self.rate * len(labels))
        rewritable = self.can_rewrite(texts)
        pool = [i for i, y in enumerate(labels.tolist()) if (y == self.target) == self.clean_label and rewritable[i]]
        if n == 0:
            raise ValueError(f"rate {self.rate} of {len(labels)} rows poisons no row; raise the rate or add rows")
        if n > len(pool):
            kind = "target" if self.clean_label else "non-target"
            raise ValueError(
                f"{self.name} needs {n} {kind} rows it can rewrite but has {len(pool)} (of "
                f"{len(labels)}); lower the rate to at most {len(pool) / len(labels):.3f}"
            )
        return sorted(self.rng("choose").sample(pool, n))

    def poison(self, texts, labels, num_classes: int):
        texts, labels = check_texts(texts, labels, num_classes, self.target)
        chosen = self.choose(texts, labels)
        rng, out, new_labels = self.rng("poison"), list(texts), labels.clone()
        for i in chosen:
            out[i] = self.trigger_text(texts[i], rng)
        if not self.clean_label:
            new_labels[chosen] = self.target
        return out, new_labels, torch.tensor(chosen, dtype=torch.int64)

    def apply(self, texts) -> list:
        texts = list(texts)
        rng = self.rng("apply")
        return [self.trigger_text(text, rng) for text in texts]

    def triggered_test(self, texts, labels):
        """(triggered texts, their true labels, their indices): the non-target rows it can rewrite (ASR)."""
        labels = torch.as_tensor(labels, dtype=torch.int64)
        rewritable = self.can_rewrite(list(texts))
        keep = [i for i, y in enumerate(labels.tolist()) if y != self.target and rewritable[i]]
        if not keep:
            raise ValueError(
                f"{self.name} can rewrite no non-target test row (target {self.target}), so it has "
                "no ASR set; for a paraphrase attack, pick the target its released rewrites were made "
                "for (HiddenKiller's SST-2 and OffensEval files: target 1)"
            )
        return self.apply([texts[i] for i in keep]), labels[keep], torch.tensor(keep, dtype=torch.int64)

    def params(self) -> dict:
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "data_dir"}
        return {"name": self.name, **{k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}}
