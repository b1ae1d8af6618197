"""Text trigger (token) recovery with and without exposure (EBYD Sec. 4.2 on text; the image track's
`experiments/trigger_recovery.py`).

The token scan (`defenses/token_scan.py`): the tokens whose embeddings moved most from the public checkpoint are
inserted into clean probe rows, on the suspect ("none") and on each exposed copy (the exposure's name); a token
set is flagged when it flips rows more than it does on every clean reference, read the same way, by a margin.
Scans and the references' readings of them are cached units (kinds "textscan", "textscanref"), keyed by the
models they read.
"""

from __future__ import annotations

import pandas as pd

from ...config import as_dict
from ...core.units import cached_unit
from ..defenses.token_scan import label_flip_rates, scan
from ..models import checkpoint_embeddings
from ..pipeline import TextSetup, context

NO_EXPOSURE = "none"
SCAN_VERSION = 2  # 2: a scan records the labels it cannot read (unmeasured_labels)


def _exposed_by_key(exposed: dict) -> dict:
    """{exposure name: {model key: (exposed model, its exposure unit's key)}} over the zoo's and the references'
    exposed models."""
    return {
        name: {r["suspect"].key: (r["model"], r["log"].attrs["key"]) for r in (*zoo, *refs)}
        for name, (zoo, refs) in exposed.items()
    }


def scan_table(setup: TextSetup, suspects, references, exposed: dict) -> pd.DataFrame:
    """The token scan of every zoo model, on the model itself and on each exposed copy, each candidate set also
    read on the clean references exposed the same way. Columns: model_id, attack, seed, exposure, tokens (ids,
    space-separated), words, drift, flip_label, flip_rate, unmeasured_labels (labels this model's scan cannot
    read: too few probe rows off them), reference_read (whether the set was read on the
    references: only sets flipping more than the profile's scan.margin of the rows are) and reference_rate (the
    references' highest flip rate of the same tokens to the same label; NaN where a reference has too few rows
    off that label to tell; 0 where not read)."""
    margin = setup.profile.scan.margin
    reference = checkpoint_embeddings(setup.profile.train.model)
    decode = _word_decoder(setup)
    copies = _exposed_by_key(exposed)
    frames = {}
    for name in (NO_EXPOSURE, *copies):
        read = lambda s, name=name: (s.model, None) if name == NO_EXPOSURE else copies[name][s.key]  # noqa: E731
        tables = {s.key: _cached_scan(setup, s, *read(s), name, reference) for s in suspects}
        tested = sorted({t for table in tables.values() for t in table.loc[table["flip_rate"] > margin, "tokens"]})
        rates = [_cached_reference_rates(setup, r, *read(r), name, tested) for r in references]
        for s in suspects:
            table = tables[s.key]
            table["reference_read"] = table["flip_rate"] > margin
            table["reference_rate"] = [
                _highest_rate(rates, t, label) if read else 0.0
                for t, label, read in zip(table["tokens"], table["flip_label"], table["reference_read"])
            ]
            frames[(s.key, name)] = table.assign(
                model_id=s.model_id,
                attack=s.label,
                seed=s.seed,
                exposure=name,
                words=[decode(t) for t in table["tokens"]],
            )
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

    params = {
        "version": SCAN_VERSION,
        "suspect": suspect.key,
        "exposure": exposure_key,
        "scan": as_dict(p.scan),
        "probe": setup.data.fingerprint(),
    }
    unit = cached_unit(
        "textscan",
        params,
        compute,
        setup.cache_dir,
        device=setup.device,
        label=f"{exposure_name} on {suspect.model_id}",
    )
    return pd.DataFrame(unit.info["rows"])


def _cached_reference_rates(setup: TextSetup, ref, model, exposure_key, exposure_name: str, tested: list) -> dict:
    """{tokens: {label: flip rate}} of the token sets `tested` (space-separated ids) on a clean reference (or its
    copy exposed by the unit `exposure_key`), cached."""
    p = setup.profile
    token_sets = [tuple(int(t) for t in tokens.split()) for tokens in tested]

    def compute():
        rates = label_flip_rates(model, setup.probe, token_sets, setup.data.num_classes, p.scan) if tested else []
        return {}, {
            "rows": [
                {"tokens": t, "label": c, "rate": r} for t, by_label in zip(tested, rates) for c, r in by_label.items()
            ]
        }

    params = {
        "reference": ref.key,
        "exposure": exposure_key,
        "tested": tested,
        "scan": as_dict(p.scan),
        "probe": setup.data.fingerprint(),
    }
    unit = cached_unit(
        "textscanref",
        params,
        compute,
        setup.cache_dir,
        device=setup.device,
        label=f"{len(tested)} token sets on the {exposure_name} reference seed {ref.seed}",
    )
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
    `margin` is given here: nothing the references cannot read is flagged.

    `measurable` is False, with its reason, where nothing was flagged and some label could not be read on this
    model (`unmeasured_labels`): a trigger to that label is invisible here, so the row is "not measurable", never
    a miss or a pass."""
    missing = {"model_id", "reference_read", "reference_rate", "flip_rate", "unmeasured_labels"} - set(scans.columns)
    if missing:
        raise ValueError(
            f"the scan table lacks {sorted(missing)}: build it with trigger_recovery.scan_table (a "
            f"table from before the per-token reference reading cannot be flagged)"
        )
    rows = []
    for (model_id, exposure), g in scans.groupby(["model_id", "exposure"], sort=False):
        excess = g["flip_rate"].fillna(0.0) - g["reference_rate"].fillna(1.0)
        hits = g[(excess > margin) & g["reference_read"].astype(bool)]
        alone = {t for t in hits["tokens"] if " " not in t}
        pairs = [t.split() for t in hits["tokens"] if " " in t]
        reset = sorted({int(t) for t in alone} | {int(t) for pair in pairs if not set(pair) & alone for t in pair})
        top = g.loc[excess.idxmax()]
        unmeasured = str(g["unmeasured_labels"].fillna("").iloc[0])
        measurable = bool(len(hits)) or not unmeasured
        reason = (
            ""
            if measurable
            else (
                f"label(s) {unmeasured}: the model already sends almost every probe row "
                f"there, leaving fewer than the scan's min_rows rows to flip"
            )
        )
        rows.append(
            {
                "model_id": model_id,
                "attack": g["attack"].iloc[0],
                "seed": g["seed"].iloc[0],
                "exposure": exposure,
                "score": float(excess.max()),
                "threshold": margin,
                "flagged": bool(len(hits)),
                "measurable": measurable,
                "unmeasured_labels": unmeasured,
                "unmeasurable_reason": reason,
                "top_words": top["words"],
                "top_label": top["flip_label"],
                "top_flip_rate": top["flip_rate"],
                "top_reference_rate": top["reference_rate"],
                "reset_tokens": " ".join(map(str, reset)),
            }
        )
    return pd.DataFrame(rows)


def attack_lines(flags: pd.DataFrame) -> list[str]:
    """Per attack of flag_scans: for each exposure, the models whose scan flagged a token set out of those it could
    read, and the models it could not read (a label with too few rows off it) counted apart -- never as misses."""
    lines = []
    for attack, g in flags.groupby("attack", sort=False):
        parts = []
        for exposure, e in g.groupby("exposure", sort=False):
            unread = int((~e["measurable"].astype(bool)).sum())
            parts.append(
                f"{exposure}: {int(e['flagged'].sum())} of {len(e) - unread} flagged"
                + (
                    f", {unread} not measurable ({e.loc[~e['measurable'].astype(bool), 'unmeasured_labels'].iloc[0]})"
                    if unread
                    else ""
                )
            )
        lines.append(f"token scan, {attack}: " + "; ".join(parts) + f" (threshold {g['threshold'].iloc[0]}).")
    return lines
