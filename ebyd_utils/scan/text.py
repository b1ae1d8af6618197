"""Text, the documented minimum: a Hugging Face sequence classifier folder and a CSV/TSV of clean labelled texts.

What is done: the folder is loaded from safetensors only (`config.json` + `*.safetensors` + the tokeniser's files;
a `pytorch_model.bin` pickle is refused), every weight file is checked as an image checkpoint is (truncation,
NaN/inf), the class count is checked against the data's labels, and the scan runs the same exposure and the same
label reading as for images: CUL on the texts' defense half with the text profile's settings (`text/config.py`:
all weights ascend; stop at the defense rows' chance accuracy + `stop_above_chance`), class shares read on the
probe half, excess over 1/K.

What is not done (stated in the report): no references (a clean text model of the user's recipe would be a
fine-tune of the user's base model, which the scanner does not have), no calibrated probability (the
trained-elsewhere measurement is on images only), and no trigger recovery (Neural Cleanse inverts pixels; the
text track's token scan, notebook 09, needs the base checkpoint's embeddings). On SST-2 every model, clean ones
included, drifted onto label 1 under CUL (README, "Text"), so on text a flag is a lead to check, not a verdict.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import torch

from ..text.config import get_text_profile
from .checkpoint import read_state_dict
from .inputs import CleanData, check_count, split_half

TEXT_COLUMNS = ("text", "sentence", "review")  # the first of these a header holds is the text column


def load_text_model(folder, num_classes: int | None):
    """(TextClassifier, tokenizer, num_labels) from a Hugging Face folder, safetensors only."""
    from ..text.models import TextClassifier, _transformers

    folder = Path(folder).expanduser()
    if not (folder / "config.json").is_file():
        raise ValueError(f"{folder} is not a Hugging Face model folder: it has no config.json")
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        pickles = sorted(p.name for p in folder.glob("*.bin"))
        raise ValueError(
            f"{folder} has no *.safetensors weights{f' (only the pickle(s) {pickles})' if pickles else ''}; the "
            "scanner reads safetensors only. Where you trust the files: AutoModelForSequenceClassification."
            "from_pretrained(folder).save_pretrained(folder) (transformers >= 4.35 writes safetensors)"
        )
    for path in weights:
        read_state_dict(path)  # truncation and NaN/inf, before transformers reads it
    tf = _transformers()
    net = tf.AutoModelForSequenceClassification.from_pretrained(
        str(folder), use_safetensors=True, local_files_only=True
    ).float()
    labels = net.config.num_labels
    if num_classes is not None and labels != num_classes:
        raise ValueError(f"wrong class count: {folder}/config.json says {labels} labels, the data has {num_classes}")
    try:
        tokenizer = tf.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as err:
        raise ValueError(
            f"{folder} has no tokeniser files ({err}); save the tokeniser beside the model: "
            "tokenizer.save_pretrained(folder)"
        ) from err
    return TextClassifier(net).eval(), tokenizer, labels


def read_texts(path, n: int, seed: int = 0) -> tuple[list, torch.Tensor]:
    """(texts, int64 labels) of a seeded draw of at most n rows of a CSV/TSV with a header: a text column (one of
    TEXT_COLUMNS) and a `label` column of integers."""
    path = Path(path).expanduser()
    if not path.is_file() or path.suffix.lower() not in (".csv", ".tsv"):
        raise ValueError(f"text data must be a .csv or .tsv file with 'text' and 'label' columns; got {path}")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t" if path.suffix.lower() == ".tsv" else ","))
    header = list(rows[0]) if rows else []
    column = next((c for c in TEXT_COLUMNS if c in header), None)
    if column is None or "label" not in header:
        raise ValueError(f"{path} needs a header with a text column {list(TEXT_COLUMNS)} and 'label'; got {header}")
    try:
        labels = [int(r["label"]) for r in rows]
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: every label must be an integer class index ({err})") from err
    pick = torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed))[:n].tolist()
    return [rows[i][column] for i in pick], torch.tensor([labels[i] for i in pick], dtype=torch.int64)


def text_data(path, tokenizer, num_classes: int, profile_name: str, n: int | None, class_names=None, seed=0):
    """CleanData of tokenised texts (defense half labelled, probe half counted), sizes from the text profile."""
    from ..text.tokens import Tokens

    p = get_text_profile(profile_name)
    texts, labels = read_texts(path, n or p.data.defense_size + p.data.probe_size, seed)
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"{path}: labels must lie in [0, {num_classes - 1}] (the model has {num_classes} labels)")
    check_count(len(labels), num_classes, path)
    enc = tokenizer(texts, truncation=True, max_length=p.data.max_length, padding="longest", return_tensors="pt")
    tokens = Tokens(enc["input_ids"].to(torch.int64), enc["attention_mask"].to(torch.int64))
    classes = list(class_names) if class_names else [f"label {i}" for i in range(num_classes)]
    return CleanData(str(path), classes, *split_half(tokens, labels, p.data.defense_size, p.data.probe_size, seed))


def text_cul(profile_name: str, defense_y: torch.Tensor, num_classes: int):
    """The text profile's main exposure, its stop set at the defense rows' chance accuracy + stop_above_chance
    (as text/pipeline.stop_rule), and the profile's restarts and threshold."""
    p = get_text_profile(profile_name)
    exposure = p.exposures[0]
    chance = torch.bincount(defense_y, minlength=num_classes).max().item() / len(defense_y)
    cul = dataclasses.replace(exposure.cul, stop_acc=min(round(chance + exposure.stop_above_chance, 4), 0.99))
    return cul, p.detection
