"""Training and evaluating text classifiers with the loop's one step (`train.sgd_step`, AdamW here).

The fine-tuning recipe is the usual one for BERT classifiers (Devlin et al. 2019; OpenBackdoor's victims):
AdamW, linear warm-up then linear decay, a few epochs. Metrics follow the image side's conventions
(train.py): CA on all clean test rows, ASR on the triggered non-target test rows an attack can rewrite, RA the
share of those still given their true label.
"""

from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from ..train import accuracy, epoch_batches, lr_factor, predict, sgd_step


def train_text_model(model, tokens, labels: torch.Tensor, cfg, seed: int, progress: bool = True, desc: str = "train"):
    """Fine-tune `model` (a TextClassifier on the tokens' device) on (tokens, labels); returns it in eval mode.
    Rows are shuffled by a generator seeded with `seed`, so the run depends on nothing drawn before it."""
    if len(tokens) != len(labels):
        raise ValueError(f"got {len(tokens)} token rows but {len(labels)} labels")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    # fused: one kernel over all parameters (on a 2-core CPU, 20 ms a step instead of 125 ms for MiniLM)
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    steps_per_epoch = math.ceil(len(labels) / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(cfg, s, total, steps_per_epoch))
    bar = tqdm(total=total, desc=desc, disable=not progress, leave=False)
    for _ in range(cfg.epochs):
        for idx in epoch_batches(tokens, cfg.batch_size, gen):
            idx = idx.to(labels.device)
            loss = sgd_step(model, optimizer, tokens[idx], labels[idx], use_bf16=cfg.bf16)
            schedule.step()
            bar.update()
            bar.set_postfix(loss=f"{loss:.3f}")
    bar.close()
    return model.eval()


def evaluate_text(
    model, test_tokens, test_labels, triggered_tokens=None, triggered_labels=None, target: int | None = None
) -> dict:
    """CA on the clean test rows; with a triggered test set (evaluation side only), ASR and RA on it."""
    metrics = {"CA": accuracy(model, test_tokens, test_labels)}
    if triggered_tokens is not None:
        if target is None or triggered_labels is None:
            raise ValueError("ASR needs the triggered rows' true labels and the attack's target")
        preds = predict(model, triggered_tokens, batch_size=256)
        metrics["ASR"] = (preds == target).float().mean().item()
        metrics["RA"] = (preds == triggered_labels).float().mean().item()
    return metrics
