"""The results a reader sees, written from the CSVs: `python -m ebyd_utils.report` (run by `make figures` after the
notebooks) writes docs/results.md, and in README.md the headline table (between its `claims` markers) and the
measured poison-rate limit of exposure (between its `limit` markers, from notebook 12).

Nothing in either is typed by hand: every number is read from results/ by the functions the notebooks use
(`experiments/*.attack_lines`, `experiments/claims.py`), with n and its interval beside it; the same CSVs give the
same bytes (no dates, no timings of this run). A section whose CSVs are absent is said to be absent.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from .experiments import attacks, claims, clean_threshold, label_detection, low_rate_limits, model_detection, removal
from .experiments import exposure as cul
from .experiments import trigger_recovery as recovery
from .report_blocks import _bullets, _read, _section, _table, _where, benchmark_lines, exposure_and_ablation_sections
from .scan import readings
from .text.experiments import label_detection as text_detection

MARKERS = ("<!-- claims:start (written by python -m ebyd_utils.report; do not edit) -->", "<!-- claims:end -->")
LIMIT_MARKERS = ("<!-- limit:start (written by python -m ebyd_utils.report; do not edit) -->", "<!-- limit:end -->")
LOW_RATE_CSV = readings.LOW_RATE_CSV.name  # notebook 12's curve, the file the scanner also ships
# (claim, dataset prefix, variant or None for the claim's first two readings): at most 10 rows in all
HEADLINE = [
    ("1 label detection", "CIFAR-10", None),
    ("2 trigger recovery", "CIFAR-10", None),
    ("3 model detection", "CIFAR-10", None),
    ("4 removal", "CIFAR-10", None),
    ("5 other exposures", "CIFAR-10", claims.OTHER_EXPOSURES_POOLED),
    ("1 label detection", "SST-2", "cul-all"),
    ("1 label detection", "OffensEval", "cul-all"),
]


METRIC_COLUMNS = [
    "detector",
    "exposure",
    "roc_auc",
    "auc_low",
    "auc_high",
    "rule_tpr",
    "rule_fpr",
    "n_backdoored",
    "n_clean",
]


def image_sections(results: Path) -> list[str]:
    out = []
    models = _read(results, "01_attacks.csv")
    if models is not None:
        lines = attacks.attack_lines(attacks.attack_summary(models))
        out += _section("01 · Attacks", f"From `results/01_attacks.csv` ({_where(models)}).", _bullets(lines))
    log = _read(results, "02_cul_log.csv")
    if log is not None:
        lines = cul.attack_lines(cul.cul_summary(log))
        out += _section("02 · Clean Unlearning", "From `results/02_cul_log.csv`.", _bullets(lines))
    detections = _read(results, "03_label_detection.csv")
    if detections is not None:
        summary = label_detection.detection_summary(detections).reset_index()
        lines = label_detection.attack_lines(detections)
        out += _section(
            "03 · Label detection", "From `results/03_label_detection.csv`.", _table(summary), _bullets(lines)
        )
    recovered = _read(results, "04_trigger_recovery.csv")
    if recovered is not None:
        verdicts = recovery.recovery_verdicts(recovery.recovery_summary(recovered))
        lines = recovery.attack_lines(recovered)
        out += _section(
            "04 · Trigger recovery", "From `results/04_trigger_recovery.csv`.", _bullets(verdicts), _bullets(lines)
        )
    metrics = _read(results, "05_detection_metrics.csv")
    per_attack = _read(results, "05_per_attack.csv")
    if metrics is not None:
        source = "From `results/05_detection_metrics.csv` (ROC AUC with its 95% bootstrap interval over the models)."
        blocks = [_table(metrics[METRIC_COLUMNS]), _bullets(model_detection.verdicts(metrics))]
        if per_attack is not None:
            blocks.append(_bullets(model_detection.attack_lines(per_attack)))
        out += _section("05 · Model detection", source, *blocks)
    repaired = _read(results, "06_removal.csv")
    if repaired is not None:
        verdicts = removal.removal_verdicts(removal.removal_summary(repaired))
        lines = removal.attack_lines(repaired)
        source = "From `results/06_removal.csv` (DER: 1 a perfect repair, 0.5 no change)."
        out += _section("06 · Removal", source, _bullets(verdicts), _bullets(lines))
    return out + exposure_and_ablation_sections(results)


def low_rate_section(results: Path) -> list[str]:
    curve = _read(results, LOW_RATE_CSV)
    if curve is None:
        return []
    source = (
        f"From `results/{LOW_RATE_CSV}` ({_where(curve)}): per trigger, rate and reading, the suspects flagged with "
        "their target (k of n, exact 95% interval) beside the clean controls."
    )
    return _section("12 · Low poison rates", source, _bullets(low_rate_limits.verdict_lines(curve)))


def limit_block(results: Path) -> str:
    """The README's statement of where exposure stops seeing a backdoor, one line a trigger (notebook 12's)."""
    head = "**Where exposure stops seeing.** The claims above judge backdoors at the zoo's poison rates. Notebook 12"
    curve = _read(results, LOW_RATE_CSV)
    if curve is None:
        return f"{head} measures lower rates; it has not run in this checkout (`make figures` runs it)."
    return (
        f"{head} reads {curve['trigger'].nunique()} trigger(s) at lower rates beside clean controls; below the rate a "
        "line names, a clean verdict "
        "says little about that kind of backdoor (the scanner's report says the same):\n"
        + _bullets(low_rate_limits.front_lines(curve))
    )


def text_sections(results: Path) -> list[str]:
    out = []
    for path in sorted(results.glob("09_text_detection*.csv")):
        if "summary" in path.name:
            continue
        detections = _read(results, path.name)
        name = str(detections["dataset"].iloc[0])
        blocks = [_bullets(text_detection.attack_lines(detections))]
        models = _read(results, path.name.replace("detection", "model_detection"))
        if models is not None:
            blocks.append(_table(models[METRIC_COLUMNS]))
        out += _section(f"09 · Text, {name}", f"From `results/{path.name}` ({_where(detections)}).", *blocks)
    return out


def claims_section(results: Path) -> tuple[list[str], pd.DataFrame]:
    table = claims.claims_table(results)
    lines = [
        "## 10 · What holds",
        "",
        f"Every claim row (notebook 10's rule: supported only with n >= {claims.MIN_N} and a 95% interval above 0).",
        "",
    ]
    if len(table):
        lines += [_table(table.drop(columns=["measure"])), ""]
    clean = clean_threshold.clean_scores(results)
    if len(clean):
        thr = _threshold(results)
        ff = clean_threshold.false_flags(clean["score"], thr)
        lines += [
            f"Clean models flagged by label detection's threshold {thr}: {ff['flagged']} of {ff['n_clean']} "
            f"(95% interval [{ff['low']:.2f}, {ff['high']:.2f}]); the largest clean score is "
            f"{ff['largest_clean_score']:.3f}.",
            "",
        ]
    return lines, table


def _threshold(results: Path) -> float:
    detections = _read(results, "03_label_detection.csv")
    return float(detections["threshold"].iloc[0]) if detections is not None else float("nan")


def timing_section(results: Path) -> list[str]:
    """What each notebook took: the committed quick runs (results/) and, where one was committed, a smoke run's
    (results/smoke/: only its two timing tables are kept in git, so a reader sees what a first run costs)."""
    lines = []
    for where, folder in (("results", results), ("results/smoke", results / "smoke")):
        times = _read(folder, "notebook_times.csv")
        if times is None:
            continue
        lines += [
            f"From `{where}/notebook_times.csv` (`units_at_start` 0: a run from an empty cache; "
            "empty: recorded before the column existed).",
            "",
            _table(times),
            "",
            *_cost_lines(_read(folder, "figures_cost.csv"), f"{where}/figures_cost.csv"),
        ]
    lines += ci_lines(results)
    lines += benchmark_lines(results)
    return ["## Wall time", "", *lines] if lines else []


def ci_lines(results: Path) -> list[str]:
    """What `bash .ci/run` (lint, install and `make test`) took on a fresh clone, per CPU kind: its log read by
    benchmarks/ci_time.py into results/ci_times.csv."""
    runs = _read(results, "ci_times.csv")
    if runs is None:
        return []
    intro = (
        "From `results/ci_times.csv` (`benchmarks/ci_time.py` on the log of `bash .ci/run` from a fresh clone; "
        "seconds; lint_install_s includes building .venv)."
    )
    return [intro, "", _table(runs), ""]


def _cost_lines(costs: pd.DataFrame | None, where: str) -> list[str]:
    """Where each run's wall time went (a figures_cost.csv): seconds by unit kind, one row per run."""
    if costs is None:
        return []
    seconds = costs.pivot_table("seconds", ["notebook", "profile", "hardware"], "kind", aggfunc="sum", fill_value=0)
    intro = f"From `{where}`: seconds computing units, by kind, and the rest of the run as (other)."
    return [intro, "", _table(seconds.reset_index(), 1), ""]


def headline(table: pd.DataFrame) -> str:
    """The README's headline table: one row per claim and main dataset (all models), effect, interval, verdict."""
    rows, shown = [], []
    for claim, dataset, variant in HEADLINE:
        match = table[(table["claim"] == claim) & table["dataset"].str.startswith(dataset) & (table["family"] == "all")]
        if variant is not None:
            match = match[match["variant"] == variant]
        shown += list(match.head(2).index)
        for r in match.head(2).itertuples():
            rows.append(
                {
                    "claim": claim,
                    "dataset": r.dataset,
                    "reading": r.variant,
                    "effect [95% interval]": f"{r.effect:+.2f} [{r.low:+.2f}, {r.high:+.2f}]",
                    "n": r.n,
                    "verdict": r.verdict,
                }
            )
    if not rows:
        return "No section has run yet: `make figures` writes this table."
    return _table(pd.DataFrame(rows[:10])) + "\n\n" + _others_line(table.drop(index=shown[:10]))


def _others_line(rest: pd.DataFrame) -> str:
    """One line on the rows over all models the headline leaves out: how many of each verdict, the reversed ones by
    claim, so that the table's choice of rows hides no verdict."""
    rest = rest[rest["family"] == "all"]
    verdicts = rest["verdict"].str.split(" ").str[0]
    reversed_by = rest[verdicts == "reversed"].groupby("claim", sort=True).size()
    where = "; ".join(f"{claim} {n}" for claim, n in reversed_by.items())
    return (
        f"The {len(rest)} other rows over all models (other readings and datasets, text included; "
        f"[docs/results.md](docs/results.md)): {int((verdicts == 'supported').sum())} supported, "
        f"{int((verdicts == 'reversed').sum())} reversed{f' ({where})' if where else ''}, "
        f"{int((verdicts == 'not').sum())} not shown."
    )


def write(results_dir="results", docs_dir="docs", readme="README.md") -> str:
    """docs/results.md and the README's headline table from the CSVs in results_dir; returns the page."""
    results = Path(results_dir)
    claim_lines, table = claims_section(results)
    page = [
        "# Results",
        "",
        "Written by `python -m ebyd_utils.report` from the CSVs in `results/`; every number "
        'here is read from them, nothing is typed by hand. n and an interval stand beside every count; "not '
        'flagged" always with its threshold and the largest clean score.',
        "",
        *claim_lines,
        *image_sections(results),
        *low_rate_section(results),
        *text_sections(results),
        *timing_section(results),
    ]
    text = "\n".join(page).rstrip() + "\n"
    Path(docs_dir).mkdir(parents=True, exist_ok=True)
    (Path(docs_dir) / "results.md").write_text(text)
    if readme and Path(readme).exists():
        update_readme(Path(readme), headline(table))
        update_readme(Path(readme), limit_block(results), LIMIT_MARKERS)
    return text


def update_readme(path: Path, table: str, markers: tuple[str, str] = MARKERS) -> None:
    """Replace what lies between the README's markers (the claims table's by default) with `table`."""
    text = path.read_text()
    start, end = markers
    if start not in text or end not in text:
        raise ValueError(f"{path} has no markers {start!r} ... {end!r}; put them where the generated block goes")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{start}\n{table}\n{end}{tail}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results-dir", default="results")
    ap.add_argument("--docs-dir", default="docs")
    ap.add_argument("--readme", default="README.md", help="the README whose headline table is rewritten ('' = none)")
    ap.add_argument("--no-scanner-copies", action="store_true", help="leave the scanner's packaged copies as they are")
    args = ap.parse_args(argv)
    write(args.results_dir, args.docs_dir, args.readme)
    # the committed results the scanner reports (calibration, notebook 03's misses, notebook 12's limit) ship in the
    # package, so that an installed wheel reports them as a checkout does
    copied = [] if args.no_scanner_copies else readings.copy_committed(args.results_dir)
    print(
        f"wrote {Path(args.docs_dir) / 'results.md'}"
        + (f", {args.readme}'s headline table and limit" if args.readme else "")
        + (f", the scanner's copies of {', '.join(copied)} in {readings.MEASURED}" if copied else "")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
