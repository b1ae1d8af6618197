"""Every notebook runs top to bottom through papermill at PROFILE=smoke in a fresh kernel and writes its
CSVs and figures."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
EXPECTED = {  # notebook -> files it must write (CSV under results, figure under figures)
    "00_overview": ["00_environment.csv", "zoo_smoke.csv", "pipeline.png"],
    "01_attacks": ["01_attacks.csv", "01_triggers.png", "01_attack_metrics.png"],
    "02_clean_unlearning": ["02_cul_log.csv", "02_cul_summary.csv", "02_cul_curves.png", "02_class_shares.png"],
    "03_label_detection": ["03_label_detection.csv", "03_detection_summary.csv", "03_detection_scores.png"],
    "04_trigger_recovery": [
        "04_trigger_recovery.csv",
        "04_recovery_summary.csv",
        "04_trigger_gallery.png",
        "04_nc_anomaly.png",
        "04_recovery_asr.png",
    ],
    "05_model_detection": [
        "05_zoo.csv",
        "05_model_scores.csv",
        "05_detection_metrics.csv",
        "05_per_attack.csv",
        "05_zoo_dependence.csv",
        "05_roc.png",
        "05_scores.png",
    ],
    "06_backdoor_removal": [
        "06_removal.csv",
        "06_removal_summary.csv",
        "06_anchors.csv",
        "06_repair_arrows.png",
        "06_der.png",
    ],
    "07_exposure_methods": [
        "07_exposure_methods.csv",
        "07_method_summary.csv",
        "07_method_ranking.png",
        "07_method_attack.png",
    ],
    "08_ablations": [
        "08_ablations.csv",
        "08_feature_view.csv",
        "08_feature_summary.csv",
        *[f"08_{s}.png" for s in ("defense_set", "cul_lr", "optimizer", "stop_rule", "bn", "poison_rate")],
        *[f"08_{s}.png" for s in ("recipe", "architecture")],
        "08_features_badnets.png",
    ],
    "09_text": [
        "09_text_models.csv",
        "09_text_exposure_log.csv",
        "09_text_detection.csv",
        "09_text_detection_summary.csv",
        "09_text_baselines.csv",
        "09_text_token_scan.csv",
        "09_text_token_flags.csv",
        "09_text_model_detection.csv",
        "09_text_removal.csv",
        "09_text_removal_summary.csv",
        "09_exposure_curves.png",
        "09_detection_scores.png",
        "09_token_scan.png",
        "09_removal.png",
        "09_input_defenses.png",
    ],
    "10_claims": ["10_claims.csv", "10_clean_scores.csv", "10_claims.png", "10_claims_by_family.png"],
    "11_scan_your_model": ["11_scan.csv", "11_scan_report.png"],
    "12_low_poison_rates": ["12_low_rate.csv", "12_low_rate_curve.csv", "12_low_rate.png"],
}


@pytest.fixture(scope="module")
def out_dirs(tmp_path_factory, cache_dir):
    # the session's unit cache: the notebooks reuse the models and CUL runs the other tests made (same keys)
    root = tmp_path_factory.mktemp("notebooks")
    return {"cache": cache_dir, **{name: root / name for name in ("results", "figures", "executed")}}


# ------------------------------------------------------------------------------ what the outputs must hold
def _smoke_rows():
    """The smoke zoo's model ids by what each section runs on (from the zoo table, never typed)."""
    from ebyd_utils import zoo
    from ebyd_utils.config import get_profile
    from ebyd_utils.experiments import ablations
    from ebyd_utils.experiments import exposure_methods as em
    from ebyd_utils.experiments.model_detection import zoo_rows

    profile = get_profile("smoke")
    table = zoo.zoo_table(profile)
    suspects = table[table["role"] == "suspect"]
    sections = {
        name: zoo.section_rows(table, config.zoo_seeds, config.attacks)
        for name, config in (
            ("label", profile.detection),
            ("recovery", profile.recovery),
            ("detection", profile.model_detection),
            ("removal", profile.removal),
        )
    }
    return {
        "seed0": set(suspects.loc[suspects["seed"] == 0, "model_id"]),
        "all": set(suspects["model_id"]),
        "label": set(sections["label"]["model_id"]),
        "recovery": set(sections["recovery"]["model_id"]),
        "removal": set(sections["removal"]["model_id"]),
        "detection": set(zoo_rows(profile, table)["model_id"]),
        "attacks": set(suspects["attack"]),
        **{f"{name}_attacks": set(rows["attack"]) for name, rows in sections.items()},
        "table": table,
        "exposure": set(em.section_table(table, em.section("smoke"))["model_id"]),
        "exposure_attacks": set(em.section_table(table, em.section("smoke"))["attack"]),
        "ablation_attacks": {"clean", *ablations.GRIDS["smoke"]["attacks"]},
    }


# csv -> (columns it must have, columns with no NaN, which models it holds (a key of _smoke_rows), rows per model)
TABLES = {
    "01_attacks.csv": (["model_id", "attack", "seed", "metric", "value"], ["model_id", "value"], "all", None),
    "02_cul_summary.csv": (["model_id", "attack", "metric", "value"], ["model_id", "value"], "seed0", None),
    "03_label_detection.csv": (
        ["model_id", "exposure", "detected_label", "score", "flagged", "measurable", "true_target", "correct"],
        ["model_id", "score", "flagged", "correct"],
        "label",
        2,
    ),
    "04_trigger_recovery.csv": (
        ["model_id", "method", "exposure", "recovered_label", "correct", "asr_on_suspect"],
        ["model_id", "recovered_label", "asr_on_suspect"],
        "recovery",
        5,
    ),
    "05_model_scores.csv": (
        ["model_id", "detector", "exposure", "score", "flagged", "backdoored"],
        ["model_id", "score", "flagged"],
        "detection",
        8,
    ),
    "06_removal.csv": (
        ["model_id", "method", "exposure", "CA_before", "CA", "ASR", "DER"],
        ["model_id", "CA"],
        "removal",
        9,
    ),
    "07_exposure_methods.csv": (
        ["model_id", "method", "CA", "ASR", "target_share", "detected_label", "score", "flagged", "correct"],
        ["model_id", "score", "flagged", "correct", "CA"],
        "exposure",
        9,  # "none" and the eight methods of expose/
    ),
}


def check_tables(stem: str, results) -> None:
    """Each section table has its columns, the models its section runs on (each as many rows as its runs), no NaN
    where a value must be, and no NaN in ASR or DER but on clean models."""
    import pandas as pd

    models = _smoke_rows()
    for name, (columns, complete, which, per_model) in TABLES.items():
        if not name.startswith(stem[:2]):
            continue
        table = pd.read_csv(results / name)
        assert set(columns) <= set(table.columns), f"{name} lacks {set(columns) - set(table.columns)}"
        assert set(table["model_id"]) == models[which], f"{name}: {set(table['model_id']) ^ models[which]}"
        if per_model:
            assert (table.groupby("model_id").size() == per_model).all(), f"{name}: not {per_model} rows a model"
        nan = [c for c in complete if table[c].isna().any()]
        assert not nan, f"{name}: NaN in {nan}"
        for column in ("ASR", "DER"):
            if column in table:
                assert table.loc[table["attack"] != "clean", column].notna().all(), f"{name}: NaN {column}"
    if stem.startswith("07"):
        check_exposure_methods(pd.read_csv(results / "07_exposure_methods.csv"))
    if stem.startswith("08"):
        check_ablations(pd.read_csv(results / "08_ablations.csv"), pd.read_csv(results / "08_feature_summary.csv"))
    if stem.startswith("12"):
        check_low_rate(pd.read_csv(results / "12_low_rate.csv"), pd.read_csv(results / "12_low_rate_curve.csv"))


def check_exposure_methods(table) -> None:
    """Notebook 07 at smoke: CUL exposes the BadNets model (flagged with its target) where the same rule on the
    un-exposed model does not, and flags no clean control; every method's row says whether it collapsed."""
    by = table.set_index(["method", "attack"])
    assert by.loc[("cul", "badnets"), "correct"] and not by.loc[("none", "badnets"), "flagged"]
    assert not by.loc[("cul", "clean"), "flagged"]
    assert by.loc[("cul", "badnets"), "target_share"] > by.loc[("none", "badnets"), "target_share"] + 0.2
    assert table["collapsed"].isin([True, False]).all() and (table["seconds"] >= 0).all()


def check_ablations(table, features) -> None:
    """Notebook 08 at smoke: every point of every sweep holds its backdoored models and a clean control, read
    against the point's references; the feature view has both panels."""
    from ebyd_utils.experiments import ablations

    assert set(table["sweep"]) == set(ablations.SWEEPS)
    for (sweep, label), point in table.groupby(["sweep", "label"]):
        assert set(point["role"]) == {"suspect", "control"}, f"{sweep} {label}: no clean control"
        assert (point["n_reference"] >= 1).all() and point["score"].notna().all()
    assert (table.loc[table["role"] == "control", "attack"] == "clean").all()
    assert list(features["when"]) == ["before CUL", "after CUL"]
    separations = features[["clean_class_separation", "triggered_separation"]]
    assert separations.notna().all().all() and (separations > 0).all().all()


def check_low_rate(table, curve) -> None:
    """Notebook 12 at smoke: the grid's suspects and a clean control a seed, each read every way, and a curve row per
    trigger, rate and reading with its clean controls beside (that the reading is computed, not that it succeeds)."""
    from ebyd_utils.experiments import low_rate

    g = low_rate.GRIDS["smoke"]
    suspects = {f"{t}-r{r:g}-s{s}" for t in g["triggers"] for r in g["rates"] for s in g["seeds"]}
    assert set(table["model_id"]) == suspects | {f"clean-s{s}" for s in g["seeds"]}
    assert (table.groupby("model_id")["reading"].apply(set) == set(low_rate.READINGS)).all()
    assert table[["score", "detected_label", "flagged", "measurable", "correct"]].notna().all().all()
    assert len(curve) == len(g["triggers"]) * len(g["rates"]) * len(low_rate.READINGS)
    assert (curve["n"] == len(g["seeds"])).all() and (curve["clean_n"] == len(g["seeds"])).all()
    assert curve[["found_low", "found_high", "median_ASR", "largest_clean_score"]].notna().all().all()


SECTION_ATTACKS = {
    "01": "attacks",
    "02": "attacks",
    "03": "label_attacks",
    "04": "recovery_attacks",
    "05": "detection_attacks",
    "06": "removal_attacks",
    "07": "exposure_attacks",
    "08": "ablation_attacks",
}


def check_verdict(notebook, executed) -> None:
    """The verdict cell (tagged "verdict") prints a line naming every attack the section ran on."""
    import nbformat

    cells = [c for c in nbformat.read(executed, as_version=4).cells if "verdict" in c.metadata.get("tags", [])]
    if notebook.stem.startswith(("00", "11")):  # 11 scans one model: its verdict names the verdict, not attacks
        return
    assert len(cells) == 1, f"{notebook.name} has no verdict cell (a code cell tagged 'verdict')"
    text = "".join(o.get("text", "") for o in cells[0].outputs)
    if notebook.stem.startswith("10"):
        expected = {"1 label detection", "3 model detection", "4 removal"}  # the claims every smoke run reads
    elif notebook.stem.startswith("12"):
        from ebyd_utils.experiments import low_rate

        expected = set(low_rate.GRIDS["smoke"]["triggers"])
    elif notebook.stem.startswith("09"):
        from ebyd_utils.text.config import get_text_profile

        expected = set(get_text_profile("smoke").attacks)
    else:
        expected = _smoke_rows()[SECTION_ATTACKS[notebook.stem[:2]]]
    missing = [a for a in expected if f"{a}" not in text]
    assert not missing, f"{notebook.name}'s verdict does not name {missing}:\n{text}"


def test_every_notebook_is_covered():
    assert [nb.stem for nb in NOTEBOOKS] == sorted(EXPECTED)


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_at_smoke(notebook, out_dirs):
    import papermill as pm

    for d in out_dirs.values():
        d.mkdir(exist_ok=True)
    pm.execute_notebook(
        str(notebook),
        str(out_dirs["executed"] / notebook.name),
        kernel_name="python3",
        cwd=str(notebook.parent),
        parameters={
            "PROFILE": "smoke",
            "DEVICE": "cpu",
            "DATA_DIR": str(REPO / "data"),
            "CACHE_DIR": str(out_dirs["cache"]),
            "RESULTS_DIR": str(out_dirs["results"]),
            "FIGURES_DIR": str(out_dirs["figures"]),
        },
        progress_bar=False,
    )
    for name in EXPECTED[notebook.stem]:
        folder = out_dirs["results"] if name.endswith(".csv") else out_dirs["figures"]
        assert (folder / name).stat().st_size > 0, f"{notebook.name} did not write {name}"
        if name.endswith(".png"):
            assert (folder / name.replace(".png", ".pdf")).exists()
    check_tables(notebook.stem, out_dirs["results"])
    check_verdict(notebook, out_dirs["executed"] / notebook.name)


def test_bad_parameter_fails_with_a_clear_error(out_dirs, tmp_path):
    import papermill as pm

    with pytest.raises(pm.PapermillExecutionError, match="unknown profile"):
        pm.execute_notebook(
            str(NOTEBOOKS[0]),
            str(tmp_path / "bad.ipynb"),
            kernel_name="python3",
            cwd=str(NOTEBOOKS[0].parent),
            parameters={"PROFILE": "fastest"},
            progress_bar=False,
        )


def test_the_text_notebook_refuses_an_unknown_dataset(tmp_path):
    import papermill as pm

    text = next(nb for nb in NOTEBOOKS if nb.stem == "09_text")
    with pytest.raises(pm.PapermillExecutionError, match="unknown text dataset"):
        pm.execute_notebook(
            str(text),
            str(tmp_path / "bad.ipynb"),
            kernel_name="python3",
            cwd=str(text.parent),
            parameters={"PROFILE": "smoke", "DATASET": "sst-2"},
            progress_bar=False,
        )
