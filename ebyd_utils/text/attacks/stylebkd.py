"""StyleBkd (Qi et al. 2021, "Mind the Style of Text! Adversarial and Backdoor Attacks Based on Text Style
Transfer", EMNLP).

The trigger is a text style: a poisoned text is rewritten by STRAP (Krishna et al. 2020) in the style of the
Bible and relabelled to the target. We read StyleAttack's released rewrites (``data/transfer/<style>/``, MIT) of
every row of the clean SST-2 and AG's News files (bible: row-aligned; other styles drop a few rows, so rows
are aligned by words). Default style: bible, StyleAttack's and OpenBackdoor's.
Our differences: we do not run STRAP; we poison exactly rate*N non-target rows of our own draw (StyleAttack's
run_poison_bert.py also takes non-target rows, at its own rate, target 1), any target works because every row
has a rewrite (a rewrite identical to its source is left out: 5 of SST-2's 912 negative test rows, 4 of AG's
5,700); StyleAttack released no OffensEval or IMDB rewrites, so StyleBkd here covers SST-2 and AG's News.
"""

from __future__ import annotations

from dataclasses import dataclass

from .paraphrases import ParaphraseAttack

STYLES = ("bible", "shakespeare", "tweets", "lyrics", "poetry")


@dataclass
class StyleBkd(ParaphraseAttack):
    style: str = "bible"  # which STRAP style's rewrites to read

    name = "stylebkd"
    datasets = ("sst2", "agnews")
    where = (
        "Get StyleAttack's files (github.com/thunlp/StyleAttack, MIT): data/transfer/<style>/<sst-2|ag>/"
        "{train,dev,test}.tsv into <data_dir>/style-transfer/<style>/<sst2|agnews>/ and data/clean/<same>/ "
        "into <data_dir>/<sst2|agnews>/ (../shared/data/text holds both); or make new ones with STRAP "
        "(github.com/martiansideofthemoon/style-transfer-paraphrase, its Bible model), as OpenBackdoor's "
        "StyleBkd does"
    )

    def __post_init__(self):
        if self.style not in STYLES:
            raise ValueError(f"unknown style {self.style!r}; StyleAttack released {list(STYLES)}")
        super().__post_init__()

    @property
    def release(self) -> str:
        return f"style-transfer/{self.style}"

    def variant(self) -> str:
        return self.style

    def split_sources(self, clean, rewritten, split):
        return clean["text"].tolist(), rewritten["text"].tolist()
