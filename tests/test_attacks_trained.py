"""LC, IAD and SSBA: attacks with a trained component (a surrogate, generators, a steganography encoder).

The fast tests fit each component on 128-200 random images for one or two steps (tiny budget fields), which is
enough to check the poisoning rules, bounds, seeding and errors; the slow test trains one smoke model per attack
through the pipeline (component as a cached unit) and checks that the backdoor is implanted.
"""

import pytest
import torch

from ebyd_utils.attacks.badnets import OFFICIAL_GRID
from ebyd_utils.attacks.iad import IAD
from ebyd_utils.attacks.lc import LC
from ebyd_utils.attacks.ssba import SSBA

TINY = {  # budget fields that make each fit a second or two
    "lc": dict(fit_images=200, surrogate_epochs=1, steps=2),
    "iad": dict(fit_images=128, mask_epochs=1, epochs=1, batch_size=64),
    "ssba": dict(fit_images=128, epochs=1),
}
CLASSES = {"lc": LC, "iad": IAD, "ssba": SSBA}


@pytest.fixture(scope="module")
def data():
    gen = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (300, 3, 32, 32), dtype=torch.uint8, generator=gen), torch.arange(300) % 10


def fitted(name, data, **kwargs):
    attack = CLASSES[name](**{**TINY[name], **kwargs})
    attack.load_component(attack.fit(*data, num_classes=10))
    return attack


@pytest.fixture(scope="module")
def attacks(data):
    """Each attack fitted at seed 0, twice (determinism), and at seed 1."""
    return {name: [fitted(name, data, seed=s) for s in (0, 0, 1)] for name in CLASSES}


def untouched_outside(x, px, py, y, changed):
    keep = torch.ones(len(y), dtype=torch.bool)
    keep[changed] = False
    return torch.equal(px[keep], x[keep]) and torch.equal(py[keep], y[keep])


# ------------------------------------------------------------------------------------ (1) who is poisoned
def test_lc_poisons_target_images_keeps_labels_and_stays_within_eps(attacks, data):
    x, y = data
    attack = attacks["lc"][0]
    px, py, idx = attack.poison(x, y, 10)
    assert len(idx) == round(0.05 * 300) == len(torch.unique(idx)) and (y[idx] == 0).all()
    assert torch.equal(py, y) and untouched_outside(x, px, py, y, idx)
    mask, pattern = attack.trigger(32, 32)
    on_patch = mask[0].bool()
    delta = (px[idx].int() - x[idx].int()).abs()
    assert delta[:, :, ~on_patch].max() <= 8  # PGD stays within eps = 8/255
    assert torch.equal(px[idx][:, :, on_patch], (pattern[:, on_patch] * 255).to(torch.uint8).expand(len(idx), -1, -1))


def test_iad_relabels_its_rate_and_adds_disjoint_cross_trigger_samples(attacks, data):
    x, y = data
    attack = attacks["iad"][0]
    px, py, idx = attack.poison(x, y, 10)
    cross = attack.extra_indices(y, idx)
    assert len(idx) == round(0.1 * 300) and (y[idx] != 0).all() and (py[idx] == 0).all()
    assert len(cross) == round(attack.cross_ratio * len(idx)) == 30
    assert not set(cross.tolist()) & set(idx.tolist())
    assert torch.equal(py[cross], y[cross])  # cross-trigger samples keep their labels
    assert (px[cross] != x[cross]).any() and untouched_outside(x, px, py, y, torch.cat([idx, cross]))


def test_iad_cross_ratio_sets_the_number_of_cross_samples(data):
    y, poisoned = data[1], torch.arange(30)
    for ratio, expected in ((0.0, 0), (0.5, 15), (2.0, 60)):
        assert len(IAD(cross_ratio=ratio).cross_indices(y, poisoned)) == expected
    with pytest.raises(ValueError, match="cross-trigger"):
        IAD(cross_ratio=4.0).cross_indices(y[:100], poisoned)


def test_ssba_relabels_its_rate_within_the_residual_bound(attacks, data):
    x, y = data
    attack = attacks["ssba"][0]
    px, py, idx = attack.poison(x, y, 10)
    assert len(idx) == round(0.1 * 300) and (y[idx] != 0).all() and (py[idx] == 0).all()
    assert untouched_outside(x, px, py, y, idx)
    delta = (px[idx].int() - x[idx].int()).abs()
    assert delta.max() <= 8 and (delta > 0).float().mean() > 0.5  # |residual| <= 8/255, most pixels moved


# ------------------------------------------------------------------------------------ (2) what the trigger changes
@pytest.mark.parametrize("corners", [4, 1])
def test_lc_test_time_trigger_is_the_corner_patch_only_and_needs_no_component(corners, data):
    x = data[0][:20]
    out = LC(corners=corners).apply(x)  # unfitted: test time needs no component
    grid = (OFFICIAL_GRID * 255).to(torch.uint8)
    assert (out[:, :, -3:, -3:] == grid).all()
    outside = torch.ones(32, 32, dtype=torch.bool)
    outside[-3:, -3:] = False
    if corners == 4:
        assert (out[:, :, :3, -3:] == grid).all() and (out[:, :, :3, :3] == grid.flip(-1)).all()
        assert (out[:, :, -3:, :3] == grid.flip(-1)).all()
        mask, pattern = LC(corners=4).trigger(32, 32)
        assert torch.equal(pattern, pattern.flip(-1)) and torch.equal(mask, mask.flip(-1))  # survives h-flips
        outside[:3, -3:] = outside[:3, :3] = outside[-3:, :3] = False
    assert torch.equal(out[:, :, outside], x[:, :, outside])


def test_iad_stamps_each_image_with_its_own_pattern_and_mask(attacks, data):
    attack = attacks["iad"][0]
    x01 = data[0][:8].float() / 255
    pattern, mask = attack.pattern_and_mask(x01)
    assert pattern.shape == (8, 3, 32, 32) and mask.shape == (8, 1, 32, 32)
    assert 0 <= mask.min() and mask.max() <= 1 and 0 <= pattern.min() and pattern.max() <= 1
    assert torch.allclose(attack.stamp(x01), (1 - mask) * x01 + mask * pattern)
    assert not torch.allclose(pattern[0], pattern[1])  # per-image triggers
    assert not torch.allclose(attack.stamp(x01[:4], x01[4:]), attack.stamp(x01[:4]))
    t_mask, t_pattern = attack.trigger(32, 32)
    assert (t_mask == 0).all() and t_pattern.shape == (3, 32, 32)


def test_ssba_encodes_the_fixed_secret(attacks):
    attack = attacks["ssba"][0]
    assert torch.equal(attack._component["secret"], attack.secret()) and attack.secret().shape == (32,)
    assert not torch.equal(attack.secret(), attacks["ssba"][2].secret())
    for key in ("bit_accuracy", "clean_bit_accuracy", "mean_abs_residual"):
        assert attack._component[f"metric.{key}"].ndim == 0
    t_mask, t_pattern = attack.trigger(32, 32)
    assert (t_mask == 0).all() and (t_pattern - 0.5).abs().max() <= 8 / 255 + 1e-6


# ------------------------------------------------------------------------------------ (3) seeding
@pytest.mark.parametrize("name", sorted(CLASSES))
def test_component_and_poison_are_reproducible_from_the_seed(name, attacks, data):
    first, again, other = attacks[name]
    assert first._component.keys() == again._component.keys()
    assert all(torch.equal(first._component[k], again._component[k]) for k in first._component)
    assert any(
        not torch.equal(first._component[k], other._component[k])
        for k in first._component
        if not k.startswith("metric")
    )
    a, b, c = (attack.poison(*data, 10) for attack in (first, again, other))
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not torch.equal(a[0], c[0])


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_fit_leaves_the_global_rng_as_it_was(name, data):
    state = torch.get_rng_state()
    CLASSES[name](**TINY[name]).fit(*data, num_classes=10)
    assert torch.equal(state, torch.get_rng_state())


# ------------------------------------------------------------------------------------ (4) errors
@pytest.mark.parametrize(
    "cls, kwargs, message",
    [
        (LC, {"eps": 2.0}, "eps must be in"),
        (LC, {"steps": -1}, "steps must be an int"),
        (LC, {"corners": 2}, "corners must be 4"),
        (LC, {"all_to_all": True}, "clean-label"),
        (IAD, {"cross_ratio": -1}, r"cross_ratio must be a number in \[0, 4\]"),
        (IAD, {"mask_density": 0}, r"mask_density must be in \(0, 1\)"),
        (IAD, {"epochs": 0}, "epochs must be an int"),
        (SSBA, {"max_residual": 0}, r"max_residual must be in \(0, 1\]"),
        (SSBA, {"secret_bits": 0}, "secret_bits must be an int >= 1"),
        (SSBA, {"rate": 1.5}, "rate"),
    ],
)
def test_bad_parameters_raise(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_use_without_the_component_raises(name, data):
    attack = CLASSES[name]()
    assert attack.needs_fit and not attack.fitted
    with pytest.raises(ValueError, match="needs its trained component"):
        attack.poison(*data, 10)
