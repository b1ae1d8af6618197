"""MM-BD (`ebyd_utils.defenses.mm_bd`): the Gamma-null p-value, detection of a planted backdoor in a tiny
conv model, input validation and the defender-side signature. Tiny models only (< 1 s each)."""

import inspect
import math

import pytest
import torch
from scipy import stats as scipy_stats
from torch import nn

from ebyd_utils.defenses.model_detection.mm_bd import MMBDConfig, MMBDResult, mm_bd, mm_bd_p_value

SHAPE = (3, 8, 8)
BACKDOOR_CLASS = 3


def tiny_model(backdoor: bool, seed: int = 0) -> nn.Module:
    """A linear classifier as an 8x8 conv (so channels_last and autocast paths run): random weights, and with
    `backdoor` the logit of class 3 gains 20 per channel when the top-left pixel is bright."""
    gen = torch.Generator().manual_seed(seed)
    conv = nn.Conv2d(3, 10, 8)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(10, *SHAPE, generator=gen) * 0.1)
        conv.bias.zero_()
        if backdoor:
            conv.weight[BACKDOOR_CLASS, :, 0, 0] += 20.0
    return nn.Sequential(conv, nn.Flatten())


# ------------------------------------------------------------------------------------------ p-value
def test_p_value_matches_an_explicit_gamma_fit():
    stats = [6.6, 7.3, 8.7, 7.8, 6.6, 5.4, 9.9, 8.2, 6.3, 6.2]
    null = sorted(stats)[:-1]
    shape, loc, scale = scipy_stats.gamma.fit(null)
    expected = 1 - scipy_stats.gamma.cdf(max(stats), shape, loc=loc, scale=scale) ** len(stats)  # ^K, not ^(K-1)
    assert 1e-4 < expected < 0.999  # a case where the exponent and the fit both matter
    assert mm_bd_p_value(stats) == pytest.approx(expected, rel=1e-12)
    assert mm_bd_p_value(stats[::-1]) == pytest.approx(expected, rel=1e-12)  # free of the class order
    assert mm_bd_p_value(torch.tensor(stats, dtype=torch.float64)) == pytest.approx(expected, rel=1e-12)


def test_p_value_separates_an_outlier_from_near_identical_statistics():
    near = [5.0, 5.01, 4.99, 5.02, 4.98, 5.005, 4.995, 5.015, 4.985, 5.0]
    assert mm_bd_p_value(near) > 0.05
    assert mm_bd_p_value(near[:-1] + [8.0]) < 0.05
    assert mm_bd_p_value([1.0, 1.0, 1.0, 3.0]) == 0.0  # no spread in the null: any larger value is an outlier
    assert mm_bd_p_value([1.0, 1.0, 1.0]) == 1.0


# ------------------------------------------------------------------------------------------ detection
def test_names_and_flags_a_planted_backdoor_and_passes_a_clean_model():
    model = tiny_model(backdoor=True).train()
    result = mm_bd(model, SHAPE, num_classes=10, seed=0)
    assert isinstance(result, MMBDResult) and result.statistics.shape == (10,)
    assert result.label == BACKDOOR_CLASS and result.flagged and result.flagged_label == BACKDOOR_CLASS
    assert result.p_value < 1e-6
    # the target's margin gains 3 x 20 from the trigger pixel (at most: pixels stay in [0, 1]) on top of a
    # clean margin like the others' (< 20); every other class stays far below
    others = torch.cat([result.statistics[:BACKDOOR_CLASS], result.statistics[BACKDOOR_CLASS + 1 :]])
    assert 80 > result.statistics[BACKDOOR_CLASS] > 50 > 2 * others.max()
    assert model.training and all(p.grad is None for p in model.parameters())  # mode restored, model untouched

    clean = mm_bd(tiny_model(backdoor=False), SHAPE, seed=0)  # num_classes read off the model
    assert not clean.flagged and clean.flagged_label is None and clean.p_value > 0.05
    assert clean.statistics.max() < 20


def test_same_seed_same_statistics_early_stop_and_round_trip():
    model = tiny_model(backdoor=True)
    a = mm_bd(model, SHAPE, seed=1, steps=5)
    b = mm_bd(model, SHAPE, seed=1, steps=5)
    assert torch.equal(a.statistics, b.statistics) and a.steps_run == 5
    assert a.settings["seed"] == 1 and a.settings["steps"] == 5 and a.settings["image_shape"] == list(SHAPE)
    # the official stop: a class whose loss changes by a relative < tolerance (from 1000 at the start) stops
    assert mm_bd(model, SHAPE, seed=1, steps=5, tolerance=10.0).steps_run == 1
    back = MMBDResult.from_tensors(*a.to_tensors())
    assert torch.equal(back.statistics, a.statistics) and (back.label, back.p_value) == (a.label, a.p_value)


# ------------------------------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(image_shape=(8, 8)), "image_shape must be"),
        (dict(image_shape=(3, 8, 0)), "image_shape must be"),
        (dict(image_shape="3x8x8"), "image_shape must be"),
        (dict(num_classes=2), "num_classes must be an int >= 3"),
        (dict(num_classes=7), "model outputs 10 logits"),
        (dict(alpha=0.0), "alpha must be in"),
        (dict(alpha=1.5), "alpha must be in"),
        (dict(steps=0), "steps and starts must be >= 1"),
        (dict(starts=0), "steps and starts must be >= 1"),
        (dict(lr=-1.0), "lr must be > 0"),
        (dict(trigger=torch.zeros(SHAPE)), "unknown MM-BD setting"),
    ],
)
def test_bad_input_raises_a_clear_value_error(kwargs, message):
    kwargs = {"image_shape": SHAPE, **kwargs}
    with pytest.raises(ValueError, match=message):
        mm_bd(tiny_model(backdoor=False), **kwargs)


def test_two_class_model_and_bad_statistics_are_refused():
    two = nn.Sequential(nn.Conv2d(3, 2, 8), nn.Flatten())
    with pytest.raises(ValueError, match="num_classes >= 3"):
        mm_bd(two, SHAPE)
    with pytest.raises(ValueError, match="at least 3 finite statistics"):
        mm_bd_p_value([1.0, 2.0])
    with pytest.raises(ValueError, match="at least 3 finite statistics"):
        mm_bd_p_value([1.0, 2.0, math.nan])


# ------------------------------------------------------------------------------------------ defender side
def test_signature_takes_nothing_about_the_attack():
    names = list(inspect.signature(mm_bd).parameters) + [f.name for f in MMBDConfig.__dataclass_fields__.values()]
    assert not [n for n in names if any(bad in n.lower() for bad in ("trigger", "target", "asr"))]
