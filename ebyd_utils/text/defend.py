"""The text track's defenses after label detection (EBYD Sec. 4.2-4.4 on text): trigger (token) recovery, model
detection and removal, each with and without exposure, the clean controls beside every number.

- **Token scan** (`defenses/token_scan.py`): the tokens whose embeddings moved most from the public checkpoint
  are inserted into clean probe rows, on the suspect ("none") and on each exposed copy (the exposure's name);
  a token set is flagged when it flips rows more than it does on every clean reference, read the same way,
  by a margin.
- **Model detection**: one score per model and detector over the clean controls and the backdoored models,
  judged by ROC AUC (`detection_metrics`): the exposure score of label detection (text/exposure.py, argmax-share
  reading; "none" = the model as it is) and the token scan's score (its largest flip rate above the references').
- **Removal**: FT (the plain baseline: every weight fine-tuned on the defense rows) and the token reset (the
  flagged tokens' embeddings set to [PAD], as BTU unlearns them), the reset decided on the suspect or on an
  exposed copy; CA, ASR and DER (removal.der) before and after, on the evaluation side.
Scans, the references' readings of them and FT repairs are cached units (kinds "textscan", "textscanref",
"textrepair"), keyed by the models they read.
"""
from __future__ import annotations

import pandas as pd

from ..config import as_dict
from ..detection_metrics import metrics_table
from ..removal import der
from ..units import cached_unit
from .config import TextTrainConfig
from .defenses.token_scan import label_flip_rates, reset_tokens, scan
from .models import checkpoint_embeddings
from .pipeline import TextSetup, context, evaluate, model_from_tensors
from .train import train_text_model

NO_EXPOSURE = "none"


def _exposed_by_key(exposed: dict) -> dict:
    """{exposure name: {model key: (exposed model, its exposure unit's key)}} over the zoo's and the references'
    exposed models."""
    return {name: {r["suspect"].key: (r["model"], r["log"].attrs["key"]) for r in (*zoo, *refs)}
            for name, (zoo, refs) in exposed.items()}


def scan_table(setup: TextSetup, suspects, references, exposed: dict) -> pd.DataFrame:
    """The token scan of every zoo model, on the model itself and on each exposed copy, each candidate set also
    read on the clean references exposed the same way. Columns: attack, seed, exposure, tokens (ids,
    space-separated), words, drift, flip_label, flip_rate, reference_read (whether the set was read on the
    references: only sets flipping more than the profile's scan.margin of the rows are) and reference_rate (the
    references' highest flip rate of the same tokens to the same label; NaN where a reference has too few rows
    off that label to tell; 0 where not read)."""
    margin = setup.profile.scan.margin
    reference = checkpoint_embeddings(setup.profile.train.model)
    decode = _word_decoder(setup)
    copies = _exposed_by_key(exposed)
    frames = {}
    for name in (NO_EXPOSURE, *copies):
        read = lambda s: (s.model, None) if name == NO_EXPOSURE else copies[name][s.key]  # noqa: E731
        tables = {s.key: _cached_scan(setup, s, *read(s), name, reference) for s in suspects}
        tested = sorted({t for table in tables.values() for t in table.loc[table["flip_rate"] > margin, "tokens"]})
        rates = [_cached_reference_rates(setup, r, *read(r), name, tested) for r in references]
        for s in suspects:
            table = tables[s.key]
            table["reference_read"] = table["flip_rate"] > margin
            table["reference_rate"] = [_highest_rate(rates, t, label) if read else 0.0
                                       for t, label, read in zip(table["tokens"], table["flip_label"],
                                                                 table["reference_read"])]
            frames[(s.key, name)] = table.assign(attack=s.label, seed=s.seed, exposure=name,
                                                 words=[decode(t) for t in table["tokens"]])
    order = [(s.key, name) for s in suspects for name in (NO_EXPOSURE, *copies)]
    return pd.concat([frames[k] for k in order], ignore_index=True).assign(**context(setup))


def _highest_rate(rates: list, tokens: str, label) -> float:
    """The highest flip rate of `tokens` to `label` over the references' {tokens: {label: rate}}; NaN when a
    reference cannot tell (too few rows off the label) or there are no references."""
    values = [r[tokens].get(int(label), float("nan")) for r in rates]
    return max(values) if values and not any(pd.isna(v) for v in values) else float("nan")


def _word_decoder(setup: TextSetup):
    """space-separated token ids -> their WordPiece tokens, space-separated (for reading the tables)."""
    tokenizer = setup.tokenizer
    return lambda ids: " ".join(tokenizer.convert_ids_to_tokens([int(t) for t in str(ids).split()]))


def _cached_scan(setup: TextSetup, suspect, model, exposure_key, exposure_name: str, reference) -> pd.DataFrame:
    """The scan of `model` (the suspect, or its copy exposed by the unit `exposure_key`), cached."""
    p = setup.profile

    def compute():
        table = scan(model, reference, setup.probe, setup.data.num_classes, p.scan, drift_of=suspect.model)
        table["tokens"] = [" ".join(str(t) for t in ids) for ids in table["tokens"]]
        return {}, {"rows": table.to_dict("records")}

    params = {"suspect": suspect.key, "exposure": exposure_key, "scan": as_dict(p.scan),
              "probe": setup.data.fingerprint()}
    unit = cached_unit("textscan", params, compute, setup.cache_dir, device=setup.device,
                       label=f"{exposure_name} on {suspect.label} seed {suspect.seed}")
    return pd.DataFrame(unit.info["rows"])


def _cached_reference_rates(setup: TextSetup, ref, model, exposure_key, exposure_name: str, tested: list) -> dict:
    """{tokens: {label: flip rate}} of the token sets `tested` (space-separated ids) on a clean reference (or its
    copy exposed by the unit `exposure_key`), cached."""
    p = setup.profile
    token_sets = [tuple(int(t) for t in tokens.split()) for tokens in tested]

    def compute():
        rates = label_flip_rates(model, setup.probe, token_sets, setup.data.num_classes, p.scan) if tested else []
        return {}, {"rows": [{"tokens": t, "label": c, "rate": r}
                             for t, by_label in zip(tested, rates) for c, r in by_label.items()]}

    params = {"reference": ref.key, "exposure": exposure_key, "tested": tested, "scan": as_dict(p.scan),
              "probe": setup.data.fingerprint()}
    unit = cached_unit("textscanref", params, compute, setup.cache_dir, device=setup.device,
                       label=f"{len(tested)} token sets on the {exposure_name} reference seed {ref.seed}")
    out = {t: {} for t in tested}
    for row in unit.info["rows"]:
        out[row["tokens"]][int(row["label"])] = row["rate"]
    return out


def flag_scans(scans: pd.DataFrame, margin: float) -> pd.DataFrame:
    """Per zoo model and exposure: the largest excess of a candidate's flip rate over the references' rate of
    the same tokens (its score), flagged when that exceeds `margin` (the threshold), and the tokens to reset:
    those flagged alone, and both of a flagged pair neither of whose tokens is flagged alone (a combined
    trigger). A reference rate that cannot be told (NaN) counts as 1, and a set the references never read
    (`reference_read` false: scan_table reads only those above the profile's margin) is never flagged, whatever
    `margin` is given here: nothing the references cannot read is flagged."""
    missing = {"reference_read", "reference_rate", "flip_rate"} - set(scans.columns)
    if missing:
        raise ValueError(f"the scan table lacks {sorted(missing)}: build it with defend.scan_table (a table from "
                         f"before the per-token reference reading cannot be flagged)")
    rows = []
    for (attack, seed, exposure), g in scans.groupby(["attack", "seed", "exposure"], sort=False):
        excess = g["flip_rate"].fillna(0.0) - g["reference_rate"].fillna(1.0)
        hits = g[(excess > margin) & g["reference_read"].astype(bool)]
        alone = {t for t in hits["tokens"] if " " not in t}
        pairs = [t.split() for t in hits["tokens"] if " " in t]
        reset = sorted({int(t) for t in alone} |
                       {int(t) for pair in pairs if not set(pair) & alone for t in pair})
        top = g.loc[excess.idxmax()]
        rows.append({"attack": attack, "seed": seed, "exposure": exposure, "score": float(excess.max()),
                     "threshold": margin, "flagged": bool(len(hits)), "top_words": top["words"],
                     "top_label": top["flip_label"], "top_flip_rate": top["flip_rate"],
                     "top_reference_rate": top["reference_rate"],
                     "reset_tokens": " ".join(map(str, reset))})
    return pd.DataFrame(rows)


def model_scores(detections: pd.DataFrame, flags: pd.DataFrame) -> pd.DataFrame:
    """One row per (detector, exposure, zoo model): backdoored, score, flagged; the references are not scored
    (they define the scores)."""
    share = detections[detections["reading"] == "share"]
    label = share.assign(detector="exposure score")[["detector", "exposure", "attack", "seed", "backdoored",
                                                     "score", "flagged"]]
    token = flags.assign(detector="token scan", backdoored=flags["attack"] != "clean")
    return pd.concat([label, token[label.columns]], ignore_index=True)


def model_detection(scores: pd.DataFrame, resamples: int = 2000) -> pd.DataFrame:
    """ROC AUC (bootstrap interval), TPR at 5% FPR and the rules' TPR / FPR per detector and exposure."""
    return metrics_table(scores, resamples=resamples)


def ft_config(setup: TextSetup) -> TextTrainConfig:
    """FT's recipe: the training recipe at the removal settings' epochs and learning rate."""
    p = setup.profile
    return TextTrainConfig(**{**as_dict(p.train), "epochs": p.removal.ft_epochs, "lr": p.removal.ft_lr})


def fine_tuned(setup: TextSetup, suspect):
    """FT: a copy of the suspect fine-tuned on the defense rows (cached unit "textrepair")."""
    cfg = ft_config(setup)

    def compute():
        model = model_from_tensors(setup, {k: v.clone() for k, v in suspect.model.state_dict().items()})
        model = train_text_model(model, setup.defense, setup.defense_labels, cfg, seed=0, progress=False,
                                 desc="FT")
        return dict(model.state_dict()), {"method": "ft"}

    params = {"suspect": suspect.key, "method": "ft", "train": as_dict(cfg), "defense": setup.data.fingerprint()}
    unit = cached_unit("textrepair", params, compute, setup.cache_dir, device=setup.device,
                       label=f"FT on {suspect.label} seed {suspect.seed}")
    return model_from_tensors(setup, unit.tensors)


def repaired_metrics(setup: TextSetup, suspect, change: dict, repair) -> dict:
    """CA / ASR (evaluation side) of the suspect after a repair, cached (unit "textremovaleval"): `change` names
    the repair in full ({"method": "ft", "train": ...} or {"method": "token reset", "tokens": ...}) and
    `repair()` builds the repaired model, only when the unit is not in the cache."""
    unit = cached_unit("textremovaleval", {"suspect": suspect.key, "change": change},
                       lambda: ({}, evaluate(setup, repair(), suspect.attack)), setup.cache_dir,
                       device=setup.device, label=f"{change['method']} on {suspect.label} seed {suspect.seed}")
    return unit.info


def removal_table(setup: TextSetup, suspects, flags: pd.DataFrame) -> pd.DataFrame:
    """FT and the token reset (decided on the suspect and on each exposed copy) for every zoo model: CA and ASR
    before and after (evaluation side) and DER. A reset that flags nothing leaves the model as it is."""
    ft = {"method": "ft", "train": as_dict(ft_config(setup))}
    rows = []
    for s in suspects:
        before = {"CA": s.record["CA"], "ASR": s.record.get("ASR")}
        variants = [("FT", NO_EXPOSURE, "", repaired_metrics(setup, s, ft, lambda s=s: fine_tuned(setup, s)))]
        measured = {"": before}        # reset tokens -> metrics: each distinct reset is built and evaluated once
        for _, f in flags[(flags["attack"] == s.label) & (flags["seed"] == s.seed)].iterrows():
            tokens = f["reset_tokens"]
            if tokens not in measured:
                measured[tokens] = repaired_metrics(setup, s, {"method": "token reset", "tokens": tokens},
                                                    lambda s=s, t=tokens: reset_tokens(s.model, t.split()))
            variants.append(("token reset", f["exposure"], tokens, measured[tokens]))
        for method, exposure, tokens, after in variants:
            row = {**context(setup), "attack": s.label, "seed": s.seed, "method": method, "exposure": exposure,
                   "reset_tokens": tokens, "CA_before": before["CA"], "ASR_before": before["ASR"],
                   "CA": after["CA"], "ASR": after.get("ASR")}
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
