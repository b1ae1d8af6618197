"""Results written from the data: the report is deterministic, the committed page and the README's headline table
are what the committed CSVs give, and the claims' verdict rule says what it says."""

from pathlib import Path

import pandas as pd
import pytest

from ebyd_utils import report
from ebyd_utils.experiments import claims

REPO = Path(__file__).resolve().parents[1]


def test_the_verdict_rule_on_hand_made_intervals():
    assert claims.verdict(0.05, 0.4, 5) == "supported"  # wholly above 0
    assert claims.verdict(-0.1, 0.4, 5).startswith("not shown")  # across 0
    assert claims.verdict(-0.4, -0.05, 5) == "reversed"  # wholly below 0
    assert claims.verdict(0.5, 0.9, 2) == "not shown (n = 2 < 3)"  # n = 1 or 2 never supports anything


def test_paired_rows_take_the_mean_difference_and_a_seeded_interval():
    pairs = pd.DataFrame(
        {
            "dataset": "d",
            "model_id": list("abcd"),
            "attack": ["badnets", "blend", "trojan", "sig"],
            "with": [1.0, 1.0, 1.0, 0.0],
            "without": [0.0, 0.0, 0.0, 0.0],
        }
    )
    rows = claims.paired_rows(pairs, "1 label detection", "CUL", "flagged")
    overall = rows[0]
    assert overall["family"] == "all" and overall["effect"] == 0.75 and overall["n"] == 4
    assert 0 <= overall["low"] < 0.75 < overall["high"] <= 1
    assert rows == claims.paired_rows(pairs, "1 label detection", "CUL", "flagged")  # seeded: the same interval
    assert {r["family"] for r in rows} == {"all", "patch", "blend", "clean-label"}


def test_claim_5_reads_each_other_exposure_as_a_model_detector_against_none_and_their_mean():
    # notebook 07's scores: 4 backdoored and 3 clean models under none, CUL and two other methods; the pooled row
    # is the mean of the others' AUCs (CUL is claim 3's)
    backdoored = [True] * 4 + [False] * 3
    scores = {
        "none": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7],  # AUC 0: the clean models score higher
        "cul": [0.9, 0.9, 0.9, 0.9, 0.0, 0.0, 0.0],
        "shuffle_ft": [0.5, 0.6, 0.7, 0.8, 0.1, 0.2, 0.3],  # AUC 1
        "awp": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7],  # no change from none
    }
    methods = pd.DataFrame(
        [
            {"dataset": "d", "model_id": f"m{i}", "backdoored": b, "method": m, "score": v[i]}
            for m, v in scores.items()
            for i, b in enumerate(backdoored)
        ]
    )
    rows = claims.other_exposure_rows(methods)
    assert [r["variant"] for r in rows] == [claims.OTHER_EXPOSURES_POOLED, "shuffle_ft", "awp"]  # CUL: claim 3's
    pooled, shuffled, awp = rows
    assert (shuffled["with"], awp["with"], pooled["with"]) == (1.0, 0.0, 0.5) and all(r["without"] == 0 for r in rows)
    assert pooled["effect"] == 0.5 and all(r["n"] == 7 for r in rows)
    assert shuffled["low"] == 1.0 and shuffled["verdict"] == "supported"  # every resample: AUC 1 vs 0
    assert (awp["low"], awp["high"]) == (0.0, 0.0) and awp["verdict"].startswith("not shown")
    assert pooled["verdict"] == "supported"
    assert rows == claims.other_exposure_rows(methods)  # seeded


def test_the_report_is_deterministic_and_the_committed_page_is_what_the_csvs_give(tmp_path):
    first = report.write(REPO / "results", tmp_path / "a", readme="")
    second = report.write(REPO / "results", tmp_path / "b", readme="")
    assert first == second
    committed = (REPO / "docs" / "results.md").read_text()
    assert committed == first, "docs/results.md differs from the CSVs: run python -m ebyd_utils.report"


def test_the_readmes_headline_table_is_the_reports():
    text = (REPO / "README.md").read_text()
    start, end = report.MARKERS
    block = text.split(start, 1)[1].split(end, 1)[0].strip()
    assert block == report.headline(claims.claims_table(REPO / "results")).strip()
    assert len(text.splitlines()) <= 150


def test_the_readmes_limit_is_notebook_12s_curve(tmp_path):
    text = (REPO / "README.md").read_text()
    start, end = report.LIMIT_MARKERS
    block = text.split(start, 1)[1].split(end, 1)[0].strip()
    assert block == report.limit_block(REPO / "results").strip()
    # no curve: the README says the section has not run, never a number
    assert "has not run" in report.limit_block(tmp_path) and not any(
        c.isdigit() for c in report.limit_block(tmp_path).replace("12", "")
    )


def test_a_readme_without_markers_is_refused(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    with pytest.raises(ValueError, match="markers"):
        report.update_readme(readme, "| a |")


def test_the_scanners_packaged_results_are_the_committed_ones(tmp_path):
    # the scanner reads its copies (ebyd_utils/scan/measured/), so that a wheel install has them: they must be the
    # committed files, byte for byte
    from ebyd_utils.scan import readings

    for name in readings.PACKAGED_CSVS:
        committed, packaged = REPO / "results" / name, readings.MEASURED / name
        assert packaged.read_bytes() == committed.read_bytes(), f"{packaged} is stale: run python -m ebyd_utils.report"
    # the copy follows results/: what is there is copied, what is not is removed (never an older file left behind)
    results, dest = tmp_path / "results", tmp_path / "measured"
    results.mkdir()
    dest.mkdir()
    (results / readings.PACKAGED_CSVS[0]).write_text("a,b\n1,2\n")
    (dest / readings.PACKAGED_CSVS[1]).write_text("stale\n")
    assert readings.copy_committed(results, dest) == [readings.PACKAGED_CSVS[0]]
    assert sorted(p.name for p in dest.iterdir()) == [readings.PACKAGED_CSVS[0]]


def test_the_wall_time_section_shows_where_each_run_spent_it(tmp_path):
    from ebyd_utils.core.notebook_times import OTHER, record_costs

    pd.DataFrame(
        [{"notebook": "03.ipynb", "profile": "quick", "seconds": 30.0, "units_at_start": 0, "units_computed": 3,
          "hardware": "cpu", "date": "2026-12-07"}]
    ).to_csv(tmp_path / "notebook_times.csv", index=False)  # fmt: skip
    costs = pd.DataFrame({"kind": ["model", "cul", OTHER], "units": [1, 2, 0], "seconds": [20.0, 6.0, 4.0]})
    record_costs(tmp_path / "figures_cost.csv", "03.ipynb", "quick", "cpu", costs)
    text = "\n".join(report.timing_section(tmp_path))
    assert "| notebook | profile | hardware | (other) | cul | model |" in text
    assert "| 03.ipynb | quick | cpu | 4.0 | 6.0 | 20.0 |" in text
    assert "results/smoke" not in text  # no smoke run committed: no smoke table
    (tmp_path / "smoke").mkdir()  # a smoke run's timing tables (the two files of results/smoke/ kept in git)
    record_costs(tmp_path / "smoke" / "figures_cost.csv", "03.ipynb", "smoke", "cpu", costs.assign(seconds=1.0))
    smoke_times = pd.read_csv(tmp_path / "notebook_times.csv").assign(profile="smoke")
    smoke_times.to_csv(tmp_path / "smoke" / "notebook_times.csv", index=False)
    text = "\n".join(report.timing_section(tmp_path))
    assert "From `results/smoke/figures_cost.csv`" in text and "| 03.ipynb | smoke | cpu | 1.0 | 1.0 | 1.0 |" in text
    assert text.count("## Wall time") == 1 and "| 03.ipynb | quick | cpu | 4.0 | 6.0 | 20.0 |" in text


def test_the_text_claims_read_notebook_09s_tables_for_each_exposure_against_none(tmp_path):
    # hand-made 09 tables: 3 backdoored models (target 0) and 3 clean controls; CUL reveals the target (claim 1)
    # and separates the scores (claim 3, exposure score), but blinds the token scan (claims 2 and 3) and its reset
    from ebyd_utils.experiments.claims_text import text_claim_rows

    models = [(f"b{i}", "badnets_word", True, 0) for i in range(3)] + [
        (f"c{i}", "clean", False, None) for i in range(3)
    ]
    base = [
        {"dataset": "d", "model_id": m, "attack": a, "seed": 0, "backdoored": b, "true_target": t}
        for m, a, b, t in models
    ]
    detections = pd.DataFrame(
        [
            {**r, "exposure": e, "reading": "share", "flagged": e == "cul-all" and r["backdoored"],
             "correct": e == "cul-all" and r["backdoored"], "score": (0.5 if r["backdoored"] else 0.0) if e == "cul-all"
             else (0.0 if r["backdoored"] else 0.1)}
            for e in ("none", "cul-all") for r in base
        ]
    )  # fmt: skip
    flags = pd.DataFrame(
        [
            {**{k: r[k] for k in ("dataset", "model_id", "attack", "seed")}, "exposure": e, "top_label": 0,
             "flagged": e == "none" and r["backdoored"], "score": float(e == "none" and r["backdoored"])}
            for e in ("none", "cul-all") for r in base
        ]
    )  # fmt: skip
    repaired = pd.DataFrame(
        [
            {**{k: r[k] for k in ("dataset", "model_id", "attack")}, "method": "token reset", "exposure": e,
             "DER": (0.9 if e == "none" else 0.7) if r["backdoored"] else None}
            for e in ("none", "cul-all") for r in base
        ]
    )  # fmt: skip
    detections.to_csv(tmp_path / "09_text_detection.csv", index=False)
    flags.to_csv(tmp_path / "09_text_token_flags.csv", index=False)
    repaired.to_csv(tmp_path / "09_text_removal.csv", index=False)
    rows = {(r["claim"], r["variant"]): r for r in text_claim_rows(tmp_path)}
    assert sorted(rows) == [
        ("1 label detection", "cul-all"),
        ("2 trigger recovery", "token scan, cul-all"),
        ("3 model detection", "exposure score, cul-all"),
        ("3 model detection", "token scan, cul-all"),
        ("4 removal", "token reset, cul-all"),
    ]
    effects = {k: (round(r["effect"], 6), r["n"], r["verdict"]) for k, r in rows.items()}
    assert effects[("1 label detection", "cul-all")] == (1.0, 3, "supported")
    assert effects[("2 trigger recovery", "token scan, cul-all")] == (-1.0, 3, "reversed")
    assert effects[("3 model detection", "exposure score, cul-all")] == (1.0, 6, "supported")  # AUC 1 vs 0
    assert effects[("3 model detection", "token scan, cul-all")] == (-0.5, 6, "reversed")  # 0.5 (ties) vs 1
    assert effects[("4 removal", "token reset, cul-all")] == (-0.2, 3, "reversed")  # clean models have no DER


def test_the_step_summary_has_one_row_per_cpu_with_its_ratios():
    from ebyd_utils.report_blocks import step_lines

    rows = []
    for cpu, ours, ref, peak in (("cpu A", 1500.0, 750.0, 400.0), ("cpu B", 3500.0, 1000.0, 1600.0)):
        rows += [
            ("train_throughput", "ours", "images_per_s", ours, cpu),
            ("train_throughput", "reference", "images_per_s", ref, cpu),
            ("train_throughput", "ours/reference", "speedup", ours / ref, cpu),
            ("step_efficiency", "matmul bfloat16", "peak_gflops", peak, cpu),
            ("cul", "ours", "seconds_per_model", 3.0, cpu),  # not a step reading: left out
        ]
    bench = pd.DataFrame(rows, columns=["benchmark", "loop", "metric", "value", "hardware"]).assign(profile="quick")
    table = step_lines(bench)[2].splitlines()
    header = "| profile | hardware | ours img/s | anchors-style img/s | img/s ratio | bf16 matmul peak GFLOP/s |"
    assert table[0] == header
    assert table[2].startswith("| quick | cpu A | 1500.0 | 750.0 | 2.0 |") and "| 3.5 |" in table[3]
    assert step_lines(bench[bench["benchmark"] == "cul"]) == []
