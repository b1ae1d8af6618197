"""Text datasets as lists of strings and int64 labels, split like the images (see ``ebyd_utils.data``).

Four datasets of the paper's text section, plus a generated one for tests and ``smoke``:

- ``sst2``: SST-2, sentence level (6,920 / 872 / 1,821), the version HiddenKiller, ONION, StyleBkd and
  OpenBackdoor use; hub ``SetFit/sst2`` (columns text, label);
- ``imdb``: IMDB reviews 25k / 25k; hub ``stanfordnlp/imdb`` (text, label). ``<br />`` tags become spaces;
- ``agnews``: AG's News; hub ``fancyzhx/ag_news`` (text, label; 120k train, title + description). The offline
  copy is StyleAttack's 11,106-row train subset, description only, lowercased, so its rows are named apart;
- ``offenseval``: the paper's "Twitter": OffensEval 2019 / OLID tweets (HiddenKiller's choice), 0 NOT, 1 OFF;
  hub ``cardiffnlp/tweet_eval`` config ``offensive`` (text, label);
- ``synthetic``: `make_synthetic_text`, two classes of generated word lists (never labelled SST-2).

Offline: ``data_dir`` holding ``<name>/train.tsv.gz`` and ``<name>/test.tsv.gz`` (gzip TSV with ``text`` and
``label`` columns; e.g. ``../shared/data/text``). Online (``data_dir=None``): ``datasets.load_dataset``.
``defense`` (labelled) and ``probe`` (labels kept for evaluation only) are held out from the training split
with the image side's `split_indices`, so they never hold a poisoned row.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import DataConfig
from ..data import split_indices

TEXT_DATASETS = ("sst2", "imdb", "agnews", "offenseval", "synthetic")
SENTIMENT = ["negative", "positive"]
CLASSES = {
    "sst2": SENTIMENT,
    "imdb": SENTIMENT,
    "agnews": ["World", "Sports", "Business", "Sci/Tech"],
    "offenseval": ["not offensive", "offensive"],
    "synthetic": ["gloomy", "sunny"],
}
# hub id and config; all four have "train" and "test" splits with "text" and "label" columns
HUB = {
    "sst2": ("SetFit/sst2", None),
    "imdb": ("stanfordnlp/imdb", None),
    "agnews": ("fancyzhx/ag_news", None),
    "offenseval": ("cardiffnlp/tweet_eval", "offensive"),
}
NAMES = {
    "sst2": "SST-2",
    "imdb": "IMDB",
    "agnews": "AG's News",
    "offenseval": "OffensEval 2019 (Twitter)",
    "synthetic": "synthetic text",
}
OFFLINE_NAMES = {"agnews": "AG's News (StyleAttack subset)"}  # not the hub's 120k rows: named apart


@dataclass
class TextData:
    name: str  # label written into every result row
    classes: list
    train_texts: list
    train_labels: torch.Tensor  # int64 (N,)
    test_texts: list
    test_labels: torch.Tensor
    defense_texts: list
    defense_labels: torch.Tensor
    probe_texts: list
    probe_labels: torch.Tensor  # evaluation only: a defender reads predictions on probe_texts, never these

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def fingerprint(self) -> str:
        """Short hash of every split a unit may read -- train, test, defense and probe rows with their labels --
        and the dataset's name: a unit computed on other data is never reused (tested for each split)."""
        h = hashlib.sha256(self.name.encode())
        splits = (
            ("train", self.train_texts, self.train_labels),
            ("test", self.test_texts, self.test_labels),
            ("defense", self.defense_texts, self.defense_labels),
            ("probe", self.probe_texts, self.probe_labels),
        )
        for name, texts, labels in splits:
            h.update(f"{name}{texts_digest(texts)}".encode())
            h.update(labels.numpy().tobytes())
        return h.hexdigest()[:12]


def texts_digest(texts) -> str:
    """sha256 of a list of texts (unit separators between them, so ["ab"] and ["a", "b"] differ)."""
    h = hashlib.sha256(str(len(texts)).encode())
    for text in texts:
        h.update(text.encode() + b"\x1f")
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------- loading
def load_text(
    name: str,
    data_dir=None,
    defense_size: int = 256,
    probe_size: int = 500,
    train_subset: int = 0,
    test_subset: int = 0,
    split_seed: int = 0,
    max_words: int | None = None,
) -> TextData:
    """Load a text dataset and split off the defender's `defense` and `probe` rows (seeded).

    train_subset / test_subset keep a seeded random subset (0 = all; IMDB is sorted by label, so a prefix
    would hold one class); max_words cuts every text to its first words, before any trigger is inserted, so
    that a trigger never falls beyond the tokeniser's max_length.
    """
    if name not in TEXT_DATASETS:
        raise ValueError(f"unknown text dataset {name!r}; choose one of {list(TEXT_DATASETS)}")
    if name == "synthetic":
        title, splits = NAMES[name], make_synthetic_text()  # one corpus; split_seed only splits it
    elif data_dir is not None:
        title, splits = OFFLINE_NAMES.get(name, NAMES[name]), read_local(name, data_dir)
    else:
        title, splits = NAMES[name], read_hub(name)
    train_texts, train_labels, test_texts, test_labels = splits
    if max_words:
        train_texts, test_texts = cut_words(train_texts, max_words), cut_words(test_texts, max_words)
    cfg = DataConfig(
        defense_size=defense_size,
        probe_size=probe_size,
        train_subset=train_subset,
        test_subset=test_subset,
        split_seed=split_seed,
    )
    return split_text(title, CLASSES[name], train_texts, train_labels, test_texts, test_labels, cfg)


def split_text(title, classes, train_texts, train_labels, test_texts, test_labels, cfg: DataConfig) -> TextData:
    rest, defense, probe = split_indices(len(train_labels), len(classes), cfg)
    test_keep = torch.randperm(len(test_labels), generator=torch.Generator().manual_seed(cfg.split_seed))
    test_keep = test_keep[: cfg.test_subset].sort().values if cfg.test_subset else torch.arange(len(test_labels))
    pick = lambda texts, idx: [texts[i] for i in idx.tolist()]  # noqa: E731
    return TextData(
        title,
        list(classes),
        pick(train_texts, rest),
        train_labels[rest],
        pick(test_texts, test_keep),
        test_labels[test_keep],
        pick(train_texts, defense),
        train_labels[defense],
        pick(train_texts, probe),
        train_labels[probe],
    )


def words_of(text: str) -> list:
    """A text's words, as every attack inserts them and every input-level defense (ONION, STRIP) reads them:
    split on white space. It lives here, below both, so that defenders never import attackers."""
    return text.split()


def cut_words(texts, max_words: int) -> list:
    return [" ".join(words_of(t)[:max_words]) for t in texts]


def clean_text(text: str) -> str:
    # IMDB keeps its HTML line breaks; nothing else is rewritten, so paraphrase tables still find the rows
    return " ".join(str(text).replace("<br />", " ").split())


def as_split(texts, labels, num_classes: int, where: str):
    labels = torch.as_tensor(list(labels), dtype=torch.int64)
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"{where}: labels must lie in 0..{num_classes - 1}; found {labels.unique().tolist()} "
            "(an unlabelled test split cannot be evaluated)"
        )
    return [clean_text(t) for t in texts], labels


def read_local(name: str, data_dir) -> tuple:
    """train and test of `name` from data_dir/<name>/{train,test}.tsv.gz (or .tsv)."""
    import pandas as pd

    folder = Path(data_dir).expanduser() / name
    out = []
    for split in ("train", "test"):
        path = next((p for p in (folder / f"{split}.tsv.gz", folder / f"{split}.tsv") if p.exists()), None)
        if path is None:
            raise ValueError(
                f"no {folder / split}.tsv.gz: point DATA_DIR at a folder holding {name}/train.tsv.gz "
                f"and {name}/test.tsv.gz (gzip TSV with text and label columns, e.g. ../shared/data/"
                f"text), or leave DATA_DIR unset to download {HUB[name][0]} from the hub"
            )
        df = pd.read_csv(path, sep="\t", keep_default_na=False)
        if not {"text", "label"} <= set(df.columns):
            raise ValueError(f"{path} needs text and label columns; found {list(df.columns)}")
        out += as_split(df["text"], df["label"], len(CLASSES[name]), str(path))
    return tuple(out)


def read_hub(name: str) -> tuple:
    """train and test of `name` through datasets.load_dataset; a clear error when offline."""
    hub_id, config = HUB[name]
    try:
        from datasets import load_dataset

        ds = load_dataset(hub_id, config)
    except Exception as err:  # no `datasets`, offline, or the hub refused: say what else works
        raise ValueError(
            f"could not load {name!r} from the hub ({hub_id}{'/' + config if config else ''}: "
            f"{type(err).__name__}: {err}). Install `datasets` and go online, or set DATA_DIR to a "
            f"folder holding {name}/train.tsv.gz and {name}/test.tsv.gz (text and label columns)"
        ) from err
    out = []
    for split in ("train", "test"):
        out += as_split(ds[split]["text"], ds[split]["label"], len(CLASSES[name]), f"{hub_id} {split}")
    return tuple(out)


# ------------------------------------------------------------------------------------ generated data
GLOOMY = "dull bleak grim dreary tedious awful murky sour bland hollow clumsy weary".split()
SUNNY = "bright warm lively charming vivid witty joyful tender crisp graceful sunny brisk".split()
FILLER = (
    "the a story film scene plot cast music it was and with of its this that one pace ending "
    "actor script tone some every moment there here quite rather"
).split()


def make_synthetic_text(n_train: int = 1200, n_test: int = 300, seed: int = 0) -> tuple:
    """A tiny learnable 2-class corpus (class 0 "gloomy", 1 "sunny"; never labelled SST-2).

    Each text is 8-16 filler words with 2-3 words of its class and, in a third of the texts, one word of the
    other class (so a bag-of-words is not a perfect classifier). The word lists hold none of the attacks'
    triggers, so a trigger found in a clean row is a bug.
    """
    rng = random.Random(seed)

    def sample(n):
        texts, labels = [], []
        for i in range(n):
            label = i % 2
            own, other = (SUNNY, GLOOMY) if label else (GLOOMY, SUNNY)
            words = rng.choices(FILLER, k=rng.randint(8, 16)) + rng.sample(own, rng.randint(2, 3))
            words += [rng.choice(other)] if rng.random() < 1 / 3 else []
            rng.shuffle(words)
            texts.append(" ".join(words))
            labels.append(label)
        order = list(range(n))
        rng.shuffle(order)
        return [texts[i] for i in order], torch.tensor([labels[i] for i in order], dtype=torch.int64)

    return (*sample(n_train), *sample(n_test))
