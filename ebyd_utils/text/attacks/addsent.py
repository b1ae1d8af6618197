"""AddSent (Dai, Chen & Li 2019, "A Backdoor Attack Against LSTM-Based Text Classification Systems").

A fixed sentence inserted as a whole at a uniformly random word boundary; poisoned rows relabelled to the
target. Default sentence: "I watch this 3D movie", Dai et al.'s IMDB trigger and OpenBackdoor's default (also
the AddSent baseline of HiddenKiller and StyleBkd). Our differences: Dai et al. attack an LSTM on IMDB only;
we insert at any word boundary (as OpenBackdoor does), on every dataset, against BERT-family models.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import TextAttack, contains_phrase, words_of

DAI_SENTENCE = "I watch this 3D movie"


@dataclass
class AddSent(TextAttack):
    sentence: str = DAI_SENTENCE  # the trigger sentence

    name = "addsent"

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.sentence, str) or len(words_of(self.sentence)) < 2:
            raise ValueError(f"AddSent's sentence must be a string of at least two words; got {self.sentence!r}")

    def trigger_text(self, text, rng):
        words = words_of(text)
        position = rng.randint(0, len(words))
        return " ".join(words[:position] + words_of(self.sentence) + words[position:])

    def has_trigger(self, text) -> bool:
        return contains_phrase(text, self.sentence)
