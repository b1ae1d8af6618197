"""Paraphrase-table attacks (SynBkd, StyleBkd): the trigger is a rewrite of the whole text by a trained
paraphraser (SCPN syntax, STRAP style) that we do not run, so the attack reads the rewrites the papers released
and looks each row up by its text.

``data_dir`` is the caller's folder (e.g. ``../shared/data/text``) holding, per dataset and split, the clean
file ``<dataset>/<split>.tsv.gz`` and its rewrites ``<release>/<dataset>/<split>.tsv.gz`` (gzip TSV, or plain
``.tsv``, with a ``text`` or ``sentence`` column and ``label``). The table maps a normalised clean text
(lowercased, single spaces) to its rewrite. Rows are paired by a monotone alignment on shared content words,
because the released files drop or add a row here and there (OffensEval's SCPN train is one row off); a split
whose pairs share little more than random pairs do (SCPN's AG dev rewrites other rows) is skipped and reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .base import TextAttack

WORD = re.compile(r"[a-z0-9']+")
MIN_SPLIT_OVERLAP = 0.25  # mean word overlap of a usable split (measured: aligned 0.38-0.68, random 0.06-0.08)
MAX_LENGTH_GAP = 0.05  # files whose row counts differ by more are not rewrites of the same rows (AG's SCPN dev)
MIN_GAP_ROWS = 20  # ... unless they differ by at most this many rows (small files)
SPLITS = ("train", "dev", "test")
_TABLES: dict = {}  # (attack name, folder, dataset, variant) -> (table, report); built once a process


def normalise(text: str) -> str:
    return " ".join(str(text).lower().split())


def content_words(text: str) -> set:
    return {w for w in WORD.findall(text.lower()) if len(w) > 2}


def overlap(a: set, b: set) -> float:
    return len(a & b) / max(1, min(len(a), len(b)))


def align(sources, rewrites, band: int = 10, gap: float = 0.3) -> list:
    """(i, j) pairs of a monotone alignment maximising word overlap, each skipped row costing `gap`.

    A banded global alignment (j - i stays within `band` of the length difference): the released files keep
    the clean order and only drop or add a few rows.
    """
    a, b = [content_words(t) for t in sources], [content_words(t) for t in rewrites]
    n, m = len(a), len(b)
    lo, hi = min(0, m - n) - band, max(0, m - n) + band  # the band of j - i
    width, neg = hi - lo + 1, float("-inf")
    score = [[neg] * width for _ in range(n + 1)]
    move = [[0] * width for _ in range(n + 1)]
    score[0][-lo] = 0.0
    for i in range(n + 1):
        for k in range(width):
            j = i + lo + k
            if j < 0 or j > m or (i == 0 and j == 0):
                continue
            best, how = neg, 0
            if i and j and score[i - 1][k] > neg:  # pair source i-1 with rewrite j-1
                best, how = score[i - 1][k] + overlap(a[i - 1], b[j - 1]), 1
            if i and k + 1 < width and score[i - 1][k + 1] - gap > best:  # skip source i-1
                best, how = score[i - 1][k + 1] - gap, 2
            if k and score[i][k - 1] - gap > best:  # skip rewrite j-1
                best, how = score[i][k - 1] - gap, 3
            score[i][k], move[i][k] = best, how
    pairs, i, k = [], n, m - n - lo
    while i or i + lo + k:
        how = move[i][k]
        if how == 1:
            pairs.append((i - 1, i + lo + k - 1))
            i -= 1
        elif how == 2:
            i, k = i - 1, k + 1
        else:
            k -= 1
    return pairs[::-1]


def read_rows(path_stem: Path):
    """The DataFrame at path_stem.tsv.gz or .tsv (column `sentence` renamed `text`), or None if absent."""
    import pandas as pd

    for path in (path_stem.with_name(path_stem.name + ".tsv.gz"), path_stem.with_name(path_stem.name + ".tsv")):
        if path.exists():
            return pd.read_csv(path, sep="\t", keep_default_na=False).rename(columns={"sentence": "text"})
    return None


def pair_split(sources, rewrites, report: dict) -> dict:
    """{normalised source: rewrite} of one split; empty if the alignment is no better than chance."""
    if abs(len(sources) - len(rewrites)) > max(MIN_GAP_ROWS, MAX_LENGTH_GAP * max(len(sources), len(rewrites))):
        report.update(
            sources=len(sources),
            rewrites=len(rewrites),
            pairs=0,
            used=False,
            why="lengths differ too much: the rewrites are of other rows",
        )
        return {}
    # equal lengths: the release is row-aligned (StyleBkd's bible files), pair row i with row i
    pairs = [(i, i) for i in range(len(sources))] if len(sources) == len(rewrites) else align(sources, rewrites)
    overlaps = [overlap(content_words(sources[i]), content_words(rewrites[j])) for i, j in pairs]
    mean = sum(overlaps) / max(1, len(overlaps))
    usable = mean >= MIN_SPLIT_OVERLAP
    report.update(
        sources=len(sources),
        rewrites=len(rewrites),
        pairs=len(pairs) if usable else 0,
        mean_overlap=round(mean, 3),
        used=usable,
    )
    # a rewrite equal to its source (STRAP sometimes copies short inputs) carries no trigger: leave it out
    return {
        normalise(sources[i]): rewrites[j]
        for i, j in pairs
        if usable and normalise(sources[i]) != normalise(rewrites[j])
    }


@dataclass
class ParaphraseAttack(TextAttack):
    dataset: str = "sst2"  # which released rewrites to read (the data set's short name)
    data_dir: str | None = None  # folder with <dataset>/ and the release's folder; not saved with the model

    release = ""  # the rewrites' folder under data_dir
    datasets = ()  # the data sets the papers released rewrites for
    where = ""  # where to get the files / how to make new ones (for error messages)

    def __post_init__(self):
        super().__post_init__()
        if self.dataset not in self.datasets:
            raise ValueError(
                f"{self.name} reads released rewrites, which exist for {list(self.datasets)}; "
                f"got dataset={self.dataset!r}. {self.where}"
            )

    def variant(self) -> str:
        return ""

    def split_sources(self, clean, rewritten, split):
        """(clean texts, rewritten texts) to align for one split; attacks override."""
        raise NotImplementedError

    def folder(self) -> Path:
        if self.data_dir is None:
            raise ValueError(
                f"{self.name} needs data_dir: a folder holding {self.dataset}/ and "
                f"{self.release}/{self.dataset}/ (e.g. ../shared/data/text). {self.where}"
            )
        folder = Path(self.data_dir).expanduser()
        if not (folder / self.release / self.dataset).is_dir():
            raise ValueError(f"{self.name} found no {folder / self.release / self.dataset}/. {self.where}")
        return folder

    def table_and_report(self):
        folder = self.folder()
        key = (self.name, str(folder.resolve()), self.dataset, self.variant())
        if key not in _TABLES:
            table, report = {}, []
            for split in SPLITS:
                clean = read_rows(folder / self.dataset / split)
                rewritten = read_rows(folder / self.release / self.dataset / split)
                if clean is None or rewritten is None:
                    continue
                report.append({"split": split})
                table.update(pair_split(*self.split_sources(clean, rewritten, split), report[-1]))
            if not table:
                raise ValueError(
                    f"{self.name}: no usable clean/rewrite pairs under {folder} for {self.dataset} "
                    f"({report}). {self.where}"
                )
            _TABLES[key] = (table, report)
        return _TABLES[key]

    @property
    def table(self) -> dict:
        return self.table_and_report()[0]

    def choose(self, texts, labels) -> list:
        try:
            return super().choose(texts, labels)
        except ValueError as err:  # too few rows have a released rewrite: say where more come from
            raise ValueError(f"{err}. Only rows with a released rewrite can be poisoned. {self.where}") from err

    def can_rewrite(self, texts) -> list:
        table = self.table
        return [normalise(t) in table for t in texts]

    def trigger_text(self, text, rng):
        return self.table[normalise(text)]

    def apply(self, texts) -> list:
        texts = list(texts)
        missing = [t for t, ok in zip(texts, self.can_rewrite(texts)) if not ok]
        if missing:
            raise ValueError(
                f"{self.name} has no released rewrite for {len(missing)} of {len(texts)} texts "
                f"(first: {missing[0][:60]!r}); keep the rows attack.can_rewrite(texts) marks "
                "(triggered_test does)"
            )
        return super().apply(texts)

    def has_trigger(self, text) -> bool:
        name = ("rewrites", self.name, self.data_dir, self.dataset, self.variant())
        if name not in _TABLES:
            _TABLES[name] = {normalise(v) for v in self.table.values()}
        return normalise(text) in _TABLES[name]
