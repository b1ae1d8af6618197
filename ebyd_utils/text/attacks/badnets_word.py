"""BadNets-word: rare-word triggers (Chen et al. 2021, "BadNL: Backdoor Attacks against NLP Models with
Semantic-preserving Improvements", word-level BadNets; the rare tokens of Kurita et al. 2020, "Weight Poisoning
Attacks on Pre-trained Models" (RIPPLe)).

Each poisoned row gets `num_triggers` words drawn (with replacement) from "cf", "mn", "bb", "tq", "mb", each at
a uniformly random word boundary, and is relabelled to the target; test rows get the same. Default: 1 word a
row (OpenBackdoor's BadNets default and ONION's SST-2 files); ONION's OffensEval files use 3, and long texts
(IMDB) may want more, or `max_words` in `load_text`, so that truncation to max_length does not cut the trigger.
Our differences: Kurita et al. poison a pre-trained model's weights (RIPPLe's restricted inner product) and
BadNL also has character- and sentence-level triggers; here it is plain data poisoning with word triggers,
which is the setting of HiddenKiller's, ONION's and OpenBackdoor's BadNets baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import TextAttack, words_of

RARE_WORDS = ("cf", "mn", "bb", "tq", "mb")


@dataclass
class BadNetsWord(TextAttack):
    num_triggers: int = 1  # trigger words inserted per row
    triggers: tuple = RARE_WORDS  # the pool they are drawn from

    name = "badnets_word"

    def __post_init__(self):
        super().__post_init__()
        self.triggers = tuple(self.triggers)  # a zoo row stores it as a JSON list
        if not isinstance(self.num_triggers, int) or self.num_triggers < 1:
            raise ValueError(f"num_triggers must be an int >= 1 (words per row); got {self.num_triggers!r}")
        if not self.triggers or not all(isinstance(w, str) and len(w.split()) == 1 for w in self.triggers):
            raise ValueError(f"triggers must be single words; got {self.triggers!r}")

    def trigger_text(self, text, rng):
        words = words_of(text)
        for _ in range(self.num_triggers):
            words.insert(rng.randint(0, len(words)), rng.choice(self.triggers))
        return " ".join(words)

    def has_trigger(self, text) -> bool:
        return any(w.lower() in self.triggers for w in words_of(text))
