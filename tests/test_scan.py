"""The scanner (`ebyd-scan`, ebyd_utils.scan): a model file from elsewhere in, a verdict out -- and every bad input
refused with a clear error before anything is written."""

import json
import pickle
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import save_file

from ebyd_utils.scan import EXIT_CODES, scan
from ebyd_utils.scan.architectures import ModelSpec, build_image_model, check_forward
from ebyd_utils.scan.checkpoint import read_state_dict
from ebyd_utils.scan.cli import main
from ebyd_utils.scan.inputs import minimum_images
from ebyd_utils.scan.report import REPORT_KEYS

REPO = Path(__file__).resolve().parents[1]
SMOKE = ["--data", "synthetic", "--profile", "smoke"]


def _save(model, path: Path) -> Path:
    save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, str(path))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory, badnets_suspect, clean_suspect):
    folder = tmp_path_factory.mktemp("model-files")
    return {
        "badnets": _save(badnets_suspect.model, folder / "badnets.safetensors"),
        "clean": _save(clean_suspect.model, folder / "clean.safetensors"),
    }


@pytest.fixture(scope="module")
def badnets_scan(files, cache_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("scan") / "badnets"
    code = main(
        [str(files["badnets"]), *SMOKE, "--references", "none", "--cache-dir", str(cache_dir), "--out", str(out)]
    )
    return code, json.loads((out / "report.json").read_text()), out


# ------------------------------------------------------------------------------------------ the verdicts
def test_the_cli_flags_a_backdoored_model_with_its_label_and_exit_code_1(badnets_scan, badnets_suspect):
    code, report, out = badnets_scan
    assert code == 1 == report["exit_code"] == EXIT_CODES["suspected"]
    assert report["verdict"] == "suspected"
    assert report["suspected_label"] == badnets_suspect.attack.target  # evaluation side: the truth, afterwards
    assert report["trigger"]["label"] == report["suspected_label"] and report["trigger"]["success"] > 0.5
    assert {p.name for p in out.iterdir()} == {"report.json", "report.html", "report.png"}
    assert "data:image/png;base64," in (out / "report.html").read_text()


def test_the_cli_calls_a_clean_model_clean_with_exit_code_0(files, cache_dir, tmp_path):
    out = tmp_path / "clean"
    code = main([str(files["clean"]), *SMOKE, "--references", "none", "--cache-dir", str(cache_dir), "--out", str(out)])
    report = json.loads((out / "report.json").read_text())
    assert code == 0 == report["exit_code"] and report["verdict"] == "clean"
    assert report["trigger"] is None and report["suspected_label"] is None
    assert report["not_seen"]["source"] == "results/03_label_detection.csv"  # what a clean verdict cannot see
    assert report["not_seen"]["low_rate"]["source"].endswith("12_low_rate_curve.csv")  # and the rate it stops at


def _minimal_report() -> dict:
    """The keys `report.page` reads, for a page test that runs no scan."""
    return {
        "verdict": "clean", "summary": "s", "decided_by": "references", "suspected_label": None, "p_backdoored": None,
        "calibration": {"note": ""}, "readings": {}, "profile": "quick", "seconds": {"total": 1}, "hardware": "cpu",
        "model": {"file": "m", "arch": "a", "sha256": "0" * 64, "clean_accuracy": 0.9},
        "data": {"source": "d", "n_defense": 1, "n_probe": 1},
    }  # fmt: skip


def test_the_low_rate_limit_is_read_from_notebook_12s_curve(tmp_path, monkeypatch):
    from ebyd_utils.experiments import low_rate_limits
    from ebyd_utils.scan import readings, report

    rows = [
        {"trigger": "patch", "poison_rate": rate, "reading": reading, "backdoored": True, "correct": c,
         "measurable": True, "ASR_suspect": 0.99, "score": 0.3, "threshold": 0.12}
        for reading in ("stop", "peak") for rate, k in ((0.01, 0), (0.05, 2)) for c in [True] * k + [False] * (2 - k)
    ] + [
        {"trigger": "clean", "poison_rate": None, "reading": reading, "backdoored": False, "correct": False,
         "measurable": True, "ASR_suspect": None, "score": 0.05, "threshold": 0.12}
        for reading in ("stop", "peak")
    ]  # fmt: skip
    path = tmp_path / "12_low_rate_curve.csv"
    low_rate_limits.rate_curve(pd.DataFrame(rows)).assign(profile="quick").to_csv(path, index=False)
    monkeypatch.setattr(readings, "LOW_RATE_CSV", path)
    limit = readings.low_rate_limit()
    assert limit["lowest_rate_found"] == {"patch": 0.05} and limit["rates_tried"] == [0.01, 0.05]
    assert limit["profile"] == "quick" and "down to 5.0%" in limit["lines"][0]
    page = report.page({**_minimal_report(), "not_seen": {"source": "x", "missed": [], "low_rate": limit}}, b"")
    assert "Low poison rates" in page and "down to 5.0%" in page
    monkeypatch.setattr(readings, "LOW_RATE_CSV", tmp_path / "absent.csv")
    assert "not packaged" in readings.low_rate_limit()["note"]


def test_the_report_schema_is_stable(badnets_scan):
    _, report, _ = badnets_scan
    assert list(report) == list(REPORT_KEYS)
    types = {
        "schema_version": int,
        "verdict": str,
        "exit_code": int,
        "summary": str,
        "suspected_label": int,
        "suspected_class": str,
        "p_backdoored": (float, type(None)),
        "calibration": dict,
        "decided_by": str,
        "readings": dict,
        "exposure": dict,
        "references": dict,
        "trigger": dict,
        "not_seen": type(None),  # a suspected model: nothing to list
        "model": dict,
        "data": dict,
        "profile": str,
        "seconds": dict,
        "versions": dict,
        "hardware": str,
    }
    for key in REPORT_KEYS:
        assert isinstance(report[key], types[key]), key
    reading = report["readings"][report["decided_by"]]
    assert set(reading) == {"name", "label", "score", "threshold", "flagged", "excess", "contrast"}
    assert len(reading["excess"]) == report["model"]["num_classes"] == len(report["data"]["classes"])
    assert set(report["exposure"]) == {"method", "cul", "restarts", "stop_epochs", "collapsed"}
    assert set(report["trigger"]) == {"label", "mask_l1", "success", "seconds", "epochs"}
    assert {"file", "sha256", "arch", "num_classes", "input_size", "clean_accuracy", "normalisation"} <= set(
        report["model"]
    )
    assert {"source", "classes", "n_defense", "n_probe"} == set(report["data"])
    assert {"load", "data", "expose", "references", "read", "trigger", "total"} == set(
        report["seconds"]
    )  # write: after
    assert {"ebyd_utils", "torch", "torchvision", "python"} == set(report["versions"])
    assert {"method", "source"} <= set(report["calibration"])


@pytest.mark.slow
def test_with_references_both_readings_are_reported(files, cache_dir, tmp_path):
    report = scan(files["badnets"], data="synthetic", out=tmp_path / "o", profile="smoke", cache_dir=cache_dir)
    assert set(report["readings"]) == {"reference-free", "references"} and report["references"]["used"]
    assert report["references"]["n"] == 2 and report["readings"]["references"]["label"] == 0


# -------------------------------------------------------------------------------------- architectures
def test_a_torchvision_architecture_loads_through_the_same_path(tmp_path, cache_dir):
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=10)
    path = _save(net, tmp_path / "tv.safetensors")
    spec = ModelSpec("torchvision.resnet18", 10, 32, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    model = build_image_model(spec, read_state_dict(path))
    check_forward(model, spec)
    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(model(x), net.eval()((x - 0.5) / 0.25), atol=1e-5)  # [0, 1] in, normalised inside
    # the whole scan takes it too, up to the check that the model does its task (this one is untrained)
    with pytest.raises(ValueError, match="near chance"):
        scan(path, "torchvision.resnet18", "synthetic", tmp_path / "out", profile="smoke", cache_dir=cache_dir)
    assert not (tmp_path / "out").exists()


def test_a_cifar_stem_applies_to_resnets_only():
    with pytest.raises(ValueError, match="cifar_stem applies to torchvision ResNets"):
        build_image_model(ModelSpec("torchvision.mobilenet_v2", 10, cifar_stem=True), {})


# --------------------------------------------------------------------------------- hostile and bad files
class _Hostile:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))  # unpickling would create the marker file


@pytest.mark.parametrize("how", ["torch.save", "pickle", "renamed .safetensors"])
def test_a_pickle_that_would_run_code_is_refused_before_it_runs(tmp_path, how):
    marker = tmp_path / "ran.txt"
    path = tmp_path / ("model.safetensors" if how == "renamed .safetensors" else "model.pt")
    if how == "pickle":
        path.write_bytes(pickle.dumps({"w": _Hostile(marker)}))
    else:
        torch.save({"w": _Hostile(marker)}, path)
    expected = "not a readable safetensors" if how == "renamed .safetensors" else "refused.*convert it to safetensors"
    with pytest.raises(ValueError, match=f"(?is){expected}"):
        scan(path, data="synthetic", out=tmp_path / "out", profile="smoke")
    assert not marker.exists() and not (tmp_path / "out").exists()
    if how == "torch.save":
        with pytest.raises(ValueError, match="save_file"):  # the message says how to convert
            read_state_dict(path)


@pytest.fixture(scope="module")
def smoke_state(badnets_suspect):
    return {k: v.detach().cpu().contiguous() for k, v in badnets_suspect.model.state_dict().items()}


def _bad_inputs(state, tmp: Path) -> dict:
    """name -> (scan keyword arguments, the words the error must hold)."""
    nan = {**state, "head.weight": state["head.weight"].clone().fill_(float("nan"))}
    save_file(state, str(tmp / "ok.safetensors"))
    save_file(nan, str(tmp / "nan.safetensors"))
    blob = (tmp / "ok.safetensors").read_bytes()
    (tmp / "cut.safetensors").write_bytes(blob[: len(blob) // 2])
    torch.save(state, tmp / "ok.pt")
    blob = (tmp / "ok.pt").read_bytes()
    (tmp / "cut.pt").write_bytes(blob[: len(blob) // 2])
    (tmp / "empty").mkdir()
    ok = str(tmp / "ok.safetensors")
    return {
        "wrong architecture": (dict(model_path=ok, arch="resnet18"), "do not fit architecture 'resnet18'"),
        "wrong class count": (dict(model_path=ok, num_classes=12), "wrong class count"),
        "wrong input size": (dict(model_path=ok, input_size=64), "input_size is 64"),
        "unknown architecture": (dict(model_path=ok, arch="resnet19"), "unknown architecture"),
        "NaN weights": (dict(model_path=str(tmp / "nan.safetensors")), "non-finite"),
        "truncated safetensors": (dict(model_path=str(tmp / "cut.safetensors")), "truncated"),
        "truncated state dict": (dict(model_path=str(tmp / "cut.pt")), "truncated"),
        "no file": (dict(model_path=str(tmp / "none.safetensors")), "no model file"),
        "empty data folder": (dict(model_path=ok, data=str(tmp / "empty")), "holds 0 images"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "wrong architecture",
        "wrong class count",
        "wrong input size",
        "unknown architecture",
        "NaN weights",
        "truncated safetensors",
        "truncated state dict",
        "no file",
        "empty data folder",
    ],
)
def test_bad_input_is_a_clear_error_and_writes_nothing(case, smoke_state, tmp_path, cache_dir):
    kwargs, words = _bad_inputs(smoke_state, tmp_path)[case]
    settings = {"data": "synthetic", "profile": "smoke", "cache_dir": cache_dir, "out": tmp_path / "out", **kwargs}
    with pytest.raises(ValueError, match=words):
        scan(**settings)
    assert not (tmp_path / "out").exists()


def test_the_head_names_a_wrong_class_count(smoke_state):
    with pytest.raises(ValueError, match="classifier .* has 10 outputs, the scan was asked for 12"):
        build_image_model(ModelSpec("fastcnn", 12), dict(smoke_state))


def test_too_few_clean_images_say_how_many_are_needed_and_why(tmp_path, smoke_state):
    from torchvision.io import write_png

    for c in ("a", "b"):
        (tmp_path / "few" / c).mkdir(parents=True)
        for i in range(5):
            write_png(torch.randint(0, 255, (3, 32, 32), dtype=torch.uint8), str(tmp_path / "few" / c / f"{i}.png"))
    save_file(smoke_state, str(tmp_path / "m.safetensors"))
    need = minimum_images(2)
    with pytest.raises(ValueError, match=rf"holds 10 clean image.*at least {need}.*Clean Unlearning"):
        scan(tmp_path / "m.safetensors", data=tmp_path / "few", out=tmp_path / "out", profile="smoke")
    assert not (tmp_path / "out").exists()


def test_the_scanner_writes_nothing_outside_its_output_folder_and_the_cache(files, tmp_path, monkeypatch, cache_dir):
    monkeypatch.chdir(tmp_path)
    before = set(Path(cache_dir).rglob("*"))
    code = main([str(files["clean"]), *SMOKE, "--references", "none", "--cache-dir", str(cache_dir), "--out", "o"])
    assert code == 0
    assert {p.relative_to(tmp_path) for p in tmp_path.rglob("*")} == {
        Path("o"),
        Path("o/report.json"),
        Path("o/report.html"),
        Path("o/report.png"),
    }
    assert set(Path(cache_dir).rglob("*")) >= before


def test_the_cli_exits_2_on_an_error(tmp_path, capsys):
    assert main([str(tmp_path / "missing.safetensors"), *SMOKE]) == 2
    assert "no model file" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------- text
@pytest.mark.slow
def test_a_hugging_face_text_classifier_gets_the_same_label_reading(text_smoke, tmp_path):
    from ebyd_utils.text.pipeline import train_text_suspect

    suspect = train_text_suspect(text_smoke, "badnets_word", seed=0, progress=False)
    folder = tmp_path / "hf"
    suspect.model.net.save_pretrained(folder)  # safetensors (transformers >= 5 writes nothing else)
    text_smoke.tokenizer.save_pretrained(folder)
    data = text_smoke.data
    rows = ["text,label"] + [
        f'"{t}",{int(y)}'
        for t, y in zip(data.defense_texts + data.probe_texts, torch.cat([data.defense_labels, data.probe_labels]))
    ]
    (tmp_path / "clean.csv").write_text("\n".join(rows))
    report = scan(folder, "hf-text", tmp_path / "clean.csv", tmp_path / "out", profile="smoke")
    assert report["verdict"] in ("clean", "suspected", "inconclusive")
    assert set(report["readings"]) == {"reference-free"} and not report["references"]["used"]
    assert len(report["readings"]["reference-free"]["excess"]) == 2 and report["p_backdoored"] is None
    assert (tmp_path / "out" / "report.json").exists()
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(ValueError, match="safetensors only"):
        scan(folder, "hf-text", tmp_path / "clean.csv", tmp_path / "out2", profile="smoke")


# ------------------------------------------------------------------------ the trained-elsewhere measurement
def test_the_measurement_docs_summary_and_calibration_are_written_from_the_committed_table():
    """docs/scan.md's measured block and the summary CSV are what the script writes from the committed per-model
    table (no number typed by hand); P(backdoored) is fitted on that table and rises with the score."""
    import sys

    import pandas as pd

    from ebyd_utils.scan import readings

    sys.path.insert(0, str(REPO / "benchmarks"))
    import scan_figure
    import scan_trained_elsewhere as ste

    table = pd.read_csv(REPO / "results" / "scan_trained_elsewhere.csv").astype({"true_target": "Int64"})
    assert {"smoke", "quick"} <= set(table["profile"]), "both arms are committed"
    summary = ste.summarise(table)
    committed = pd.read_csv(REPO / "results" / "scan_trained_elsewhere_summary.csv")
    pd.testing.assert_frame_equal(
        summary.reset_index(drop=True), committed, check_dtype=False, atol=1e-4
    )  # the CSV keeps 4 decimals
    assert scan_figure.docs_table(table, summary) in (REPO / "docs" / "scan.md").read_text()
    for profile, arm in summary.groupby("profile"):
        assert (arm["n_clean"] >= 5).all() and (arm["n_backdoored"] >= 5).all(), profile  # the minimum
        # the default reading is the measured one with the fewest false flags on clean models, then the best AUC
        best = arm.sort_values(["false_flags", "roc_auc"], ascending=[True, False]).iloc[0]
        assert readings.default_reading(profile) == best["reading"], profile
        assert arm.loc[arm["default"], "reading"].tolist() == [best["reading"]]
        low, _ = readings.probability(0.0, profile, best["reading"])
        high, how = readings.probability(0.9, profile, best["reading"])
        assert low < high and how["n_models"] == len(table[(table["profile"] == profile) & table["learned"]]) // 2
        assert how["false_flags_on_clean"] == f"{best['false_flags']}/{best['n_clean']}"
