"""Speed without timed tests: the fast GPU recipe trains through the one training step, and the benchmark's step
efficiency counts FLOPs the way it says (the times themselves live in make bench and results/)."""

import dataclasses
import sys
from pathlib import Path

import torch

import ebyd_utils.train as train
from ebyd_utils import pipeline as pl
from ebyd_utils.config import as_dict, get_profile

REPO = Path(__file__).resolve().parents[1]


def test_the_fast_gpu_recipe_is_the_paper_zoo_trained_through_the_one_step(smoke_data, monkeypatch):
    fast, paper = get_profile("paper-fast"), get_profile("paper")
    # the same models, data, exposure, detection and zoo: only the training schedule differs
    for section in ("data", "cul", "detection", "zoo", "recovery", "model_detection", "removal"):
        assert as_dict(getattr(fast, section)) == as_dict(getattr(paper, section)), section
    assert fast.train.model == paper.train.model and fast.train.batch_size > paper.train.batch_size
    calls = []
    real_step = train.sgd_step
    monkeypatch.setattr(train, "sgd_step", lambda *a, **k: calls.append(len(a[2])) or real_step(*a, **k))
    cfg = dataclasses.replace(fast.train, epochs=1, batch_size=32)
    model = pl.new_model(fast, smoke_data, seed=0)
    train.train_model(model, smoke_data.train_x[:64], smoke_data.train_y[:64], cfg, seed=0, progress=False)
    assert calls == [32, 32]  # every step of the GPU recipe is train.sgd_step, the CPU profiles' step


def test_step_flops_count_a_known_layer():
    sys.path.insert(0, str(REPO / "benchmarks"))
    from step_efficiency import step_flops

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 10, bias=False))
    x, y = torch.randint(0, 256, (8, 3, 4, 4), dtype=torch.uint8), torch.zeros(8, dtype=torch.long)
    # forward: one matmul, 2 * N * in * out; backward: the weight's gradient only (the images need none)
    flops = step_flops(model, x, y, use_bf16=False)
    forward = 2 * 8 * 48 * 10
    assert flops == 2 * forward, flops
