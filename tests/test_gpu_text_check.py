"""The GPU text check's own logic (benchmarks/gpu_text_check.py); its run needs a GPU and is not a test."""

import argparse
import importlib.util
from pathlib import Path

import pytest
import torch

pytest.importorskip("transformers")

from ebyd_utils.text.config import REFERENCE_SEED  # noqa: E402
from ebyd_utils.text.pipeline import TextSetup  # noqa: E402

spec = importlib.util.spec_from_file_location(
    "gpu_text_check", Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_text_check.py"
)
check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check)


def args(**kw):
    base = dict(model="some/folder", dataset="offenseval", attacks="", clean_seeds="", references=0, dry=False)
    return argparse.Namespace(**{**base, **kw})


def test_the_paper_profile_runs_with_the_given_model_and_dataset():
    p = check.build_profile(args())
    assert (p.name, p.train.model, p.data.dataset, p.data.max_length, p.train.epochs) == (
        "paper",
        "some/folder",
        "offenseval",
        128,
        3,
    )
    assert p.clean_seeds == (0, 1, 2, 3, 4) and p.detection.n_reference == 3
    small = check.build_profile(args(attacks="addsent,lwp", clean_seeds="0", references=1, dry=True))
    assert small.attacks == ("addsent", "lwp") and small.clean_seeds == (0,) and small.detection.n_reference == 1
    assert small.data.train_subset == 400 and all(e.cul.epochs == 2 for e in small.exposures)


def test_tables_are_assembled_from_finished_units_only():
    p = check.build_profile(args(attacks="addsent,lwp", clean_seeds="0,1", references=2))
    setup = TextSetup(p, None, torch.device("cpu"), "cache", None)
    done = ["expose:addsent:0", "expose:clean:1", f"expose:clean:{REFERENCE_SEED + 1}"]
    kept = check.finished_only(setup, done).profile
    # lwp never finished; reference 1000 failed, so 1001 alone cannot stand in for "the first n"
    assert kept.attacks == ("addsent",) and kept.clean_seeds == (1,) and kept.detection.n_reference == 0
    assert (
        check.finished_only(
            setup,
            [f"expose:{a}:0" for a in ("addsent", "lwp", "clean")]
            + ["expose:clean:1", f"expose:clean:{REFERENCE_SEED}", f"expose:clean:{REFERENCE_SEED + 1}"],
        ).profile
        == p
    )
