"""Text backdoor removal with and without exposure (EBYD Sec. 4.4 on text; the image track's
`experiments/removal.py`): FT (the plain baseline: every weight fine-tuned on the defense rows) and the token
reset (the flagged tokens' embeddings set to [PAD], as BTU unlearns them), the reset decided on the suspect or on
an exposed copy; CA, ASR and DER (`core/metrics.der`) before and after, on the evaluation side. FT repairs and
the evaluations after a repair are cached units (kinds "textrepair", "textremovaleval").
"""

from __future__ import annotations

import pandas as pd

from ...config import as_dict
from ...core.metrics import der
from ...core.units import cached_unit
from ..config import TextTrainConfig
from ..defenses.token_scan import reset_tokens
from ..pipeline import TextSetup, context, evaluate, model_from_tensors
from ..train import train_text_model
from .trigger_recovery import NO_EXPOSURE


def ft_config(setup: TextSetup) -> TextTrainConfig:
    """FT's recipe: the training recipe at the removal settings' epochs and learning rate."""
    p = setup.profile
    return TextTrainConfig(**{**as_dict(p.train), "epochs": p.removal.ft_epochs, "lr": p.removal.ft_lr})


def fine_tuned(setup: TextSetup, suspect):
    """FT: a copy of the suspect fine-tuned on the defense rows (cached unit "textrepair")."""
    cfg = ft_config(setup)

    def compute():
        model = model_from_tensors(setup, {k: v.clone() for k, v in suspect.model.state_dict().items()})
        model = train_text_model(model, setup.defense, setup.defense_labels, cfg, seed=0, progress=False, desc="FT")
        return dict(model.state_dict()), {"method": "ft"}

    params = {"suspect": suspect.key, "method": "ft", "train": as_dict(cfg), "defense": setup.data.fingerprint()}
    unit = cached_unit(
        "textrepair", params, compute, setup.cache_dir, device=setup.device, label=f"FT on {suspect.model_id}"
    )
    return model_from_tensors(setup, unit.tensors)


def repaired_metrics(setup: TextSetup, suspect, change: dict, repair) -> dict:
    """CA / ASR (evaluation side) of the suspect after a repair, cached (unit "textremovaleval"): `change` names
    the repair in full ({"method": "ft", "train": ...} or {"method": "token reset", "tokens": ...}) and
    `repair()` builds the repaired model, only when the unit is not in the cache."""
    unit = cached_unit(
        "textremovaleval",
        {"suspect": suspect.key, "change": change},
        lambda: ({}, evaluate(setup, repair(), suspect.attack)),
        setup.cache_dir,
        device=setup.device,
        label=f"{change['method']} on {suspect.model_id}",
    )
    return unit.info


def removal_table(setup: TextSetup, suspects, flags: pd.DataFrame) -> pd.DataFrame:
    """FT and the token reset (decided on the suspect and on each exposed copy) for every zoo model: CA and ASR
    before and after (evaluation side) and DER. A reset that flags nothing leaves the model as it is."""
    ft = {"method": "ft", "train": as_dict(ft_config(setup))}
    rows = []
    for s in suspects:
        before = {"CA": s.record["CA"], "ASR": s.record.get("ASR")}
        variants = [("FT", NO_EXPOSURE, "", repaired_metrics(setup, s, ft, lambda s=s: fine_tuned(setup, s)))]
        measured = {"": before}  # reset tokens -> metrics: each distinct reset is built and evaluated once
        for _, f in flags[flags["model_id"] == s.model_id].iterrows():
            tokens = f["reset_tokens"]
            if tokens not in measured:
                measured[tokens] = repaired_metrics(
                    setup,
                    s,
                    {"method": "token reset", "tokens": tokens},
                    lambda s=s, t=tokens: reset_tokens(s.model, t.split()),
                )
            variants.append(("token reset", f["exposure"], tokens, measured[tokens]))
        for method, exposure, tokens, after in variants:
            row = {
                **context(setup),
                "model_id": s.model_id,
                "attack": s.label,
                "seed": s.seed,
                "method": method,
                "exposure": exposure,
                "reset_tokens": tokens,
                "CA_before": before["CA"],
                "ASR_before": before["ASR"],
                "CA": after["CA"],
                "ASR": after.get("ASR"),
            }
            row["DER"] = der(before["CA"], after["CA"], before["ASR"], after["ASR"]) if s.attack else None
            rows.append(row)
    return pd.DataFrame(rows)


def removal_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean over backdoored models per (method, exposure): CA, ASR, DER; and the clean controls' mean CA loss."""
    bad = table[table["attack"] != "clean"]
    clean = table[table["attack"] == "clean"]
    out = bad.groupby(["method", "exposure"], sort=False)[["CA_before", "CA", "ASR_before", "ASR", "DER"]].mean()
    loss = (clean["CA_before"] - clean["CA"]).groupby([clean["method"], clean["exposure"]], sort=False).mean()
    return out.assign(clean_CA_loss=loss).reset_index()
