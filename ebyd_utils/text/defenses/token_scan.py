"""Token scan: which words does a text model treat as a trigger? A post-training reading of Backdoor Token
Unlearning (BTU; Jiang, Lyu, Li & Ma, AAAI 2025, "Backdoor Token Unlearning: Exposing and Defending Backdoors in
Pretrained Language Models", https://github.com/XDJPH/Backdoor-Token-Unlearning), with a trigger test on top.

BTU's observation: a word trigger is learnt mostly in the word-embedding layer, so the trigger tokens' embeddings
move far from the pretrained ones during (poisoned) fine-tuning. BTU trains the embeddings on the poisoned
training set, ranks tokens by how far their embeddings moved, and replaces the top tokens' embedding rows by the
[PAD] token's ("unlearning" them) before a short clean fine-tune.

Where ours differs (our setting is post-training: the defender holds a suspect model, never its training set):
- **ranking**: the suspect's own word embeddings against those of the public checkpoint it was fine-tuned from
  (the defender knows which; `tiny-bert`'s fixed random initialisation plays that part at smoke). The distance
  is 1 - cosine, which AdamW's decoupled weight decay (a pure rescaling) leaves unchanged for tokens the
  fine-tuning never saw; BTU uses the Euclidean change of a copy it trains itself;
- **trigger test** (ours): each of the `candidates` most-moved tokens, and each pair of the `pair_candidates`
  most-moved (LWP-style combined triggers need two words), is inserted at random positions into the defender's
  clean probe rows; its *flip rate* to label c is the share of rows not already predicted c that the insertion
  sends to c. A token set is flagged when its flip rate exceeds the same set's flip rate to the same label on
  every clean reference model by `margin` (text/experiments/trigger_recovery.py): a natural word that flips rows
  in any model ("dull" on SST-2, "idiot" on OffensEval) flips the references too, a trigger only the suspect.
  The threshold comes from the defender's own clean models, never from the attack;
- **removal** (`reset_tokens`): the flagged tokens' embedding rows are set to the [PAD] row, as BTU does; the
  short clean fine-tune is left to FT (text/experiments/removal.py).
The scan can read any model of the suspect's architecture: the suspect itself, or its exposed copy (EBYD), whose
clean function CUL has erased, so ordinary sentiment words stop flipping rows while a surviving trigger still does.
Defender-side: the suspect, the public checkpoint, clean probe rows and clean references; nothing of the attack.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass

import pandas as pd
import torch

from ...train import predict
from ..tokens import Tokens

SPECIAL_TOKENS = (0, 100, 101, 102, 103)  # BERT uncased WordPiece: [PAD], [UNK], [CLS], [SEP], [MASK]


@dataclass(frozen=True)
class TokenScanConfig:
    candidates: int = 20  # most-moved tokens tested one by one
    pair_candidates: int = 6  # most-moved tokens whose pairs are also tested (LWP-style combined triggers)
    rows: int = 100  # clean probe rows each candidate is inserted into
    min_rows: int = 10  # a label needs this many rows not already predicted as it for a flip rate
    margin: float = 0.1  # flag above the clean references' flip rate of the same tokens + margin
    seed: int = 0  # insertion positions and the probe rows drawn


def check_scan_config(cfg: TokenScanConfig) -> None:
    if cfg.candidates < 1 or cfg.pair_candidates < 0 or cfg.pair_candidates > cfg.candidates:
        raise ValueError(
            f"candidates must be >= 1 and 0 <= pair_candidates <= candidates; got "
            f"{cfg.candidates}, {cfg.pair_candidates}"
        )
    if cfg.rows < 1 or cfg.min_rows < 1 or not 0 <= cfg.margin < 1:
        raise ValueError(
            f"rows and min_rows must be >= 1 and margin in [0, 1); got {cfg.rows}, {cfg.min_rows}, {cfg.margin}"
        )


def word_embeddings(model) -> torch.Tensor:
    """The word-embedding matrix (vocab, hidden) of a TextClassifier."""
    return model.net.get_input_embeddings().weight


@torch.no_grad()
def embedding_drift(model, reference: torch.Tensor) -> torch.Tensor:
    """1 - cosine between each token's embedding in `model` and in `reference` (the public checkpoint's
    word-embedding matrix); special tokens score 0."""
    own = word_embeddings(model).detach().float().cpu()
    if own.shape != reference.shape:
        raise ValueError(
            f"the reference embeddings must match the model's {tuple(own.shape)}; got "
            f"{tuple(reference.shape)}: pass the checkpoint the suspect was fine-tuned from"
        )
    drift = 1 - torch.nn.functional.cosine_similarity(own, reference.float().cpu(), dim=1)
    drift[list(SPECIAL_TOKENS)] = 0.0
    return drift


def candidate_sets(drift: torch.Tensor, cfg: TokenScanConfig) -> list[tuple]:
    """The token-id tuples tested: the top `candidates` alone, then every pair of the top `pair_candidates`."""
    top = torch.topk(drift, cfg.candidates).indices.tolist()
    return [(t,) for t in top] + list(itertools.combinations(top[: cfg.pair_candidates], 2))


def inserted_rows(tokens: Tokens, ids: tuple, gen: torch.Generator) -> list:
    """Each row with the token ids inserted at random positions between [CLS] and [SEP], as a list of token ids
    (unpadded; `as_tokens` pads them into a batch)."""
    rows = []
    lengths = tokens.attention_mask.sum(1).tolist()
    for row, n in zip(tokens.input_ids.cpu().tolist(), lengths):
        body = row[1 : n - 1]
        for t in ids:
            body.insert(int(torch.randint(len(body) + 1, (1,), generator=gen)), t)
        rows.append([row[0], *body, row[n - 1]])
    return rows


def as_tokens(rows: list, device) -> Tokens:
    """Lists of token ids as one right-padded Tokens batch."""
    width = max(len(r) for r in rows)
    input_ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        input_ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return Tokens(input_ids, mask).to(device)


def probe_rows(probe: Tokens, cfg: TokenScanConfig) -> Tokens:
    """The `rows` probe rows every candidate is inserted into (a seeded draw, kept in probe order)."""
    if len(probe) <= cfg.rows:
        return probe
    keep = torch.randperm(len(probe), generator=torch.Generator().manual_seed(cfg.seed))[: cfg.rows].sort().values
    return probe[keep.to(probe.device)]


def label_flip_rates(model, probe: Tokens, token_sets: list, num_classes: int, cfg: TokenScanConfig) -> list:
    """Per token set: {label: share of the rows not already predicted as the label that the insertion sends to
    it}, over the labels with at least min_rows such rows."""
    rows = probe_rows(probe, cfg)
    base = predict(model, rows).cpu()
    # every set's rows in one call, so evaluation can group rows of similar length across sets; each set draws
    # the same insertion positions (one seed): a fair comparison, and the same rows on every model
    inserted = [r for ids in token_sets for r in inserted_rows(rows, ids, torch.Generator().manual_seed(cfg.seed))]
    after_all = predict(model, as_tokens(inserted, rows.device)).cpu().view(len(token_sets), len(rows))
    free = {c: (base != c).sum().item() for c in range(num_classes)}
    return [
        {c: ((after == c) & (base != c)).sum().item() / free[c] for c in free if free[c] >= cfg.min_rows}
        for after in after_all
    ]


def flip_rates(model, probe: Tokens, token_sets: list, num_classes: int, cfg: TokenScanConfig) -> pd.DataFrame:
    """Per token set: the label it flips most rows to among the labels that can be read, that flip rate (NaN
    when no label has min_rows rows to flip), and `unmeasured_labels`: the labels with fewer than min_rows probe
    rows not already predicted as them (space-separated; the same for every set of one model). A trigger to an
    unmeasured label cannot be seen by this scan: the row says so rather than reading another label as a miss."""
    out = []
    for ids, rates in zip(token_sets, label_flip_rates(model, probe, token_sets, num_classes, cfg)):
        label = max(rates, key=rates.get) if rates else None
        unmeasured = " ".join(str(c) for c in range(num_classes) if c not in rates)
        out.append(
            {
                "tokens": ids,
                "flip_label": label,
                "flip_rate": rates[label] if rates else float("nan"),
                "unmeasured_labels": unmeasured,
            }
        )
    return pd.DataFrame(out)


def scan(
    model, reference: torch.Tensor, probe: Tokens, num_classes: int, cfg: TokenScanConfig, drift_of=None
) -> pd.DataFrame:
    """Flip rates of the candidate token sets of `drift_of` (default: `model`), tested on `model`: pass the
    suspect as `drift_of` to test its candidates on its exposed copy. Columns: tokens, drift (the set's mean),
    flip_label, flip_rate, unmeasured_labels (`flip_rates`)."""
    check_scan_config(cfg)
    drift = embedding_drift(drift_of if drift_of is not None else model, reference)
    sets = candidate_sets(drift, cfg)
    table = flip_rates(model, probe, sets, num_classes, cfg)
    table.insert(1, "drift", [float(drift[list(s)].mean()) for s in sets])
    return table


def reset_tokens(model, token_ids) -> torch.nn.Module:
    """A copy of `model` whose embedding rows of `token_ids` are the [PAD] row (BTU's unlearning step)."""
    repaired = copy.deepcopy(model)
    ids = sorted({int(t) for t in token_ids})
    if ids:
        with torch.no_grad():
            emb = word_embeddings(repaired)
            emb[ids] = emb[0].clone()
    return repaired.eval()
