"""Trigger recovery (Neural Cleanse, BTI-DBF) on the smoke models, and the evaluation-side trigger metrics."""

import ast
import importlib
import inspect
import json
import math
import re
from pathlib import Path

import pytest
import torch

from ebyd_utils import pipeline as pl
from ebyd_utils.attacks import Blend

# the modules, not the functions of the same name that ebyd_utils.defenses exports
nc_module = importlib.import_module("ebyd_utils.defenses.trigger_recovery.neural_cleanse")
bti_module = importlib.import_module("ebyd_utils.defenses.trigger_recovery.bti_dbf")
from ebyd_utils.core.store import load_tensors, save_tensors
from ebyd_utils.defenses.trigger_recovery import TRIGGER_RECOVERY, recover_trigger, result_from_tensors
from ebyd_utils.defenses.trigger_recovery.bti_dbf import BTIConfig, BTIResult, bti_dbf, feature_split
from ebyd_utils.defenses.trigger_recovery.neural_cleanse import (
    NeuralCleanseConfig,
    NeuralCleanseResult,
    anomaly_indices,
    flag_label,
    neural_cleanse,
)
from ebyd_utils.experiments.trigger_metrics import (
    mask_iou,
    perturbation_cosine,
    stamp_with,
    trigger_asr,
    true_perturbation,
)
from ebyd_utils.models import build_model

DEFENSE_FILES = [
    Path(nc_module.__file__).with_name(name) for name in ("neural_cleanse.py", "bti_dbf.py", "__init__.py")
] + [Path(nc_module.__file__).parents[1] / "outliers.py"]
SMALL_BTI = dict(mask_steps=50, generator_steps=20)  # structure tests only; the default budget is measured


@pytest.fixture(scope="module")
def exposed(smoke_run, badnets_suspect):
    return pl.expose(smoke_run, badnets_suspect, monitor_size=0)[0]


@pytest.fixture(scope="module")
def defender_images(smoke_data):
    return torch.cat([smoke_data.defense_x, smoke_data.probe_x])  # NC needs no labels: probe images count


@pytest.fixture(scope="module")
def nc_exposed(exposed, defender_images):
    return neural_cleanse(exposed, defender_images, seed=0)  # ~20 s on 2 CPU cores


# ------------------------------------------------------------------------------ Neural Cleanse, smoke
def test_nc_finds_the_exposed_models_smallest_stamp_at_the_backdoor_target(
    nc_exposed, badnets_suspect, exposed, smoke_data
):
    # How far NC's own flag goes is CPU-dependent at this budget (the target's anomaly index after exposure: 3.1-4.3
    # on AMD Zen 4 with bf16, 5.8 on Zen 3 in fp32, below the flag's 2 on an Intel Xeon), so what is asserted is
    # what held on every CPU measured: the target's mask is below the median of the classes' -- the side NC flags
    # on -- and the stamp recovered for it works on the exposed model.
    target = badnets_suspect.attack.target  # evaluation side: the test may know it
    norms = nc_exposed.norms
    assert norms[nc_exposed.index(target)] < norms.median(), norms
    mask, pattern = nc_exposed.trigger(target)
    assert trigger_asr(exposed, (mask, pattern), smoke_data.test_x, smoke_data.test_y, target) >= 0.9  # 0.99


def test_nc_narrowed_to_the_target_recovers_the_suspects_trigger(badnets_suspect, defender_images, smoke_data):
    # The EBYD workflow's second half: NC narrowed to one label (notebook 04's "CUL label" hands it exposure's
    # reading; here the true target, so that this test checks the inversion alone) recovers a stamp that fires the
    # suspect, at the right place. Measured: ASR 0.98 (Zen 4, bf16), IoU 0.50 within 3 pixels (6 of 9).
    label = badnets_suspect.attack.target
    narrowed = neural_cleanse(badnets_suspect.model, defender_images, classes=[label], seed=0)
    assert narrowed.classes == [label] and math.isnan(narrowed.anomaly[0]) and narrowed.flagged_label is None
    asr = trigger_asr(badnets_suspect.model, narrowed.trigger(label), smoke_data.test_x, smoke_data.test_y, label)
    assert asr >= 0.9
    true_mask, _ = badnets_suspect.attack.trigger(32, 32)
    # the right 3x3 pattern, found a few columns off the attacker's corner (global max-pooling): IoU 0 in place
    assert mask_iou(narrowed.masks[0], true_mask, max_shift=3) >= 0.35


def test_nc_refuses_a_label_that_was_never_read():
    with pytest.raises(ValueError, match="class"):
        neural_cleanse(build_model("fastcnn", 10).eval(), torch.zeros(8, 3, 32, 32, dtype=torch.uint8), classes=[None])


def test_recovered_masks_have_the_image_shape_and_round_trip(nc_exposed, tmp_path):
    r = nc_exposed
    assert r.masks.shape == (10, 1, 32, 32) and r.patterns.shape == (10, 3, 32, 32)
    assert torch.allclose(r.norms, r.masks.flatten(1).sum(1))
    tensors, info = r.to_tensors()
    save_tensors(tmp_path / "nc.safetensors", tensors, metadata=info)
    loaded, meta = load_tensors(tmp_path / "nc.safetensors", with_metadata=True)
    back = result_from_tensors(loaded, json.loads(json.dumps(meta)))
    assert isinstance(back, NeuralCleanseResult) and back.flagged_label == r.flagged_label
    assert torch.equal(back.masks, r.masks) and back.classes == r.classes and back.settings == r.settings


def test_anomaly_index_matches_a_hand_computed_example():
    # median 11, |norm - median| = 10, 1, 0, 1, 2 -> MAD = 1.4826 * 1
    expected = torch.tensor([10, 1, 0, 1, 2], dtype=torch.float64) / 1.4826
    norms = torch.tensor([1.0, 10, 11, 12, 13])
    assert torch.allclose(anomaly_indices(norms), expected)
    assert flag_label([0, 1, 2, 3, 4], norms, anomaly_indices(norms), 2.0) == 0
    # an even count takes the mean of the two middle values (numpy's median): median 5, MAD 1.4826 * 2
    assert anomaly_indices([2.0, 4, 6, 100])[0].item() == pytest.approx(3 / (1.4826 * 2))
    # a class far *above* the median is never flagged (a large mask is not a backdoor)
    assert (
        flag_label([0, 1, 2, 3, 4], torch.tensor([10.0, 11, 12, 13, 90]), anomaly_indices([10.0, 11, 12, 13, 90]), 2.0)
        is None
    )
    # MAD 0: off-median norms are infinitely anomalous
    assert anomaly_indices([5.0, 5, 5, 1]).tolist() == [0, 0, 0, math.inf]


# --------------------------------------------------------------------------------------------- BTI-DBF
def test_bti_returns_a_bounded_generator_trigger_and_round_trips(exposed, smoke_data):
    x, y = smoke_data.defense_x[:100], smoke_data.defense_y[:100]
    r = bti_dbf(exposed, x, y, seed=0, **SMALL_BTI)
    assert r.feature_mask.shape == (128, 3, 3)
    assert r.mean_perturbation.shape == (3, 32, 32) and r.perturbation_map.shape == (1, 32, 32)
    assert r.perturbation_map.max() == pytest.approx(1.0)  # scaled to its maximum
    assert r.shares.sum().item() == pytest.approx(1.0) and r.label == int(r.shares.argmax())
    stamped = r.stamp(x[:50])
    assert stamped.dtype == torch.uint8 and stamped.shape == x[:50].shape
    assert ((stamped.float() - x[:50].float()) / 255).pow(2).mean() <= 2 * BTIConfig().norm_bound
    again = bti_dbf(exposed, x, y, seed=0, **SMALL_BTI)  # seeded: the same trigger
    assert torch.equal(again.stamp(x[:50]), stamped) and again.label == r.label
    tensors, info = r.to_tensors()
    back = result_from_tensors(tensors, json.loads(json.dumps(info)))
    assert isinstance(back, BTIResult) and torch.equal(back.stamp(x[:50]), stamped)


def test_feature_split_reproduces_the_models_logits(badnets_suspect, smoke_data):
    x = smoke_data.defense_x[:4].float() / 255
    torch.manual_seed(0)
    for model in (badnets_suspect.model, build_model("resnet18", 10).eval()):
        to_maps, from_maps = feature_split(model)
        with torch.no_grad():
            assert torch.allclose(from_maps(to_maps(x)), model(x), atol=1e-5)


# ------------------------------------------------------------------------------- the defender's wall
FORBIDDEN = re.compile(r"trigger|target|asr|attack|poison", re.IGNORECASE)


def test_defender_side_functions_accept_no_trigger_or_target():
    functions = [
        neural_cleanse,
        bti_dbf,
        recover_trigger,
        anomaly_indices,
        flag_label,
        bti_module.decouple_benign_features,
        bti_module.train_generator,
        *TRIGGER_RECOVERY.values(),
    ]
    for fn in functions:
        named = [p for p in inspect.signature(fn).parameters if FORBIDDEN.search(p)]
        assert not named, f"{fn.__name__} takes {named}: the defender never receives the attack"
    for config in (NeuralCleanseConfig, BTIConfig):
        assert not [f for f in config.__dataclass_fields__ if FORBIDDEN.search(f)]


def test_defender_side_modules_import_no_attack_or_evaluation_code():
    for path in DEFENSE_FILES:
        tree = ast.parse(path.read_text())
        modules = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)] + [
            a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
        ]
        assert not [m for m in modules if "attacks" in m or "trigger_eval" in m or "pipeline" in m], path.name


# ------------------------------------------------------------------------------------------ bad input
def test_bad_input_raises_a_clear_error(exposed, smoke_data):
    x, y = smoke_data.defense_x[:8], smoke_data.defense_y[:8]
    with pytest.raises(ValueError, match=r"uint8 tensor of shape \(N, 3, H, W\)"):
        neural_cleanse(exposed, x.float())
    with pytest.raises(ValueError, match=r"uint8 tensor of shape \(N, 3, H, W\)"):
        bti_dbf(exposed, x[:, :1], y)
    with pytest.raises(ValueError, match=r"anomaly_threshold must be > 0"):
        neural_cleanse(exposed, x, anomaly_threshold=0)
    with pytest.raises(ValueError, match=r"success_threshold must be in \(0, 1\]"):
        neural_cleanse(exposed, x, success_threshold=1.5)
    with pytest.raises(ValueError, match=r"distinct class indices in \[0, 9\]"):
        neural_cleanse(exposed, x, classes=[10])
    with pytest.raises(ValueError, match=r"unknown Neural Cleanse setting.*allowed"):
        neural_cleanse(exposed, x, steps=5)
    with pytest.raises(ValueError, match=r"norm_bound and feat_bound must be > 0"):
        bti_dbf(exposed, x, y, norm_bound=0)
    with pytest.raises(ValueError, match=r"labels must be an int64 tensor"):
        bti_dbf(exposed, x, y[:3])
    with pytest.raises(ValueError, match=r"choose one of \['bti', 'nc'\]"):
        recover_trigger("abs", exposed, x, y)
    with pytest.raises(ValueError, match=r"choose one of \['bti', 'nc'\]"):
        result_from_tensors({}, {"method": "tabor"})
    with pytest.raises(ValueError, match=r"at least 3 classes"):
        anomaly_indices([1.0, 2.0])


def test_registry_runs_each_method(exposed, smoke_data):
    x, y = smoke_data.defense_x[:64], smoke_data.defense_y[:64]
    nc = recover_trigger("nc", exposed, x, y, classes=[0, 1], epochs=2)
    assert isinstance(nc, NeuralCleanseResult) and nc.classes == [0, 1] and nc.epochs_run == [2, 2]
    assert isinstance(recover_trigger("bti", exposed, x, y, mask_steps=5, generator_steps=2), BTIResult)


# ------------------------------------------------------------------------------ evaluation-side metrics
def test_mask_iou_on_hand_built_masks():
    true = torch.zeros(1, 8, 8)
    true[:, 5:8, 5:8] = 1  # a 3x3 patch, bottom right
    assert mask_iou(true, true) == 1.0
    faint = 0.3 * true + 0.01 * torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(0))
    assert mask_iou(faint, true) == 1.0  # top-k: the scale does not matter
    shifted = torch.roll(true, shifts=-1, dims=2)  # one column left: 6 shared of 12
    assert mask_iou(shifted, true) == pytest.approx(6 / 12)
    assert mask_iou(shifted, true, max_shift=1) == 1.0
    decoy = 0.5 * true
    decoy[0, 0, :3] = 1.0  # 3 brighter pixels off the patch
    assert mask_iou(decoy, true) == pytest.approx(6 / 12)  # top-9: 3 decoys + 6 of the patch
    assert mask_iou(decoy, true, top_k=3) == 0.0  # top-3: the decoys only
    with pytest.raises(ValueError, match="perturbation_cosine"):
        mask_iou(true, torch.zeros(1, 8, 8))
    with pytest.raises(ValueError, match="recovered mask is"):
        mask_iou(torch.zeros(1, 4, 4), true)


def test_perturbation_cosine_and_true_perturbation():
    delta = torch.randn(3, 8, 8, generator=torch.Generator().manual_seed(0))
    assert perturbation_cosine(delta, delta) == pytest.approx(1.0)
    assert perturbation_cosine(-2 * delta, delta) == pytest.approx(-1.0)
    e1, e2 = torch.zeros(3, 8, 8), torch.zeros(3, 8, 8)
    e1[0, 0, 0], e2[1, 0, 0] = 1, 1
    assert perturbation_cosine(e1, e2) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="all zeros"):
        perturbation_cosine(torch.zeros(3, 8, 8), delta)
    x = torch.full((2, 3, 8, 8), 100, dtype=torch.uint8)
    blend = Blend(alpha=0.2)
    key = blend.trigger(8, 8)[1]
    expected = 0.2 * (key - 100 / 255)  # Blend: x' - x = alpha (k - x)
    assert (true_perturbation(blend, x) - expected).abs().max() <= 0.5 / 255 + 1e-6


class CornerModel(torch.nn.Module):
    """Class 0 iff the top-left red pixel is bright, else class 1."""

    def forward(self, x):
        return torch.stack([10 * x[:, 0, 0, 0], torch.full_like(x[:, 0, 0, 0], 5.0)], 1)


def test_trigger_asr_counts_non_label_images_sent_to_the_label():
    x, y = torch.zeros(4, 3, 8, 8, dtype=torch.uint8), torch.tensor([0, 1, 1, 1])
    mask, pattern = torch.zeros(1, 8, 8), torch.zeros(3, 8, 8)
    mask[0, 0, 0], pattern[:, 0, 0] = 1, 1
    assert trigger_asr(CornerModel(), (mask, pattern), x, y, 0) == 1.0
    assert trigger_asr(CornerModel(), lambda images: images, x, y, 0) == 0.0
    assert stamp_with(mask, pattern)(x)[:, 0, 0, 0].tolist() == [255] * 4
    with pytest.raises(ValueError, match="non-label images"):
        trigger_asr(CornerModel(), (mask, pattern), x[:1], y[:1], 0)
