"""WaNet, Adap-Blend and Adap-Patch: poisoning counts (with their label-keeping extra samples), the trigger's
reach and bound, seeding, parameter checks, and the ASR each implants on the smoke data."""

import math

import pytest
import torch

from ebyd_utils.attacks.adaptive import AdapBlend, AdapPatch
from ebyd_utils.attacks.wanet import WaNet


def _data(n=1000, k=10, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=gen), torch.arange(n) % k


def _check_poison_and_kept(attack, extra, n_extra):
    """Relabelled images: exactly round(rate * N), non-target, now the target; `extra`: n_extra further images,
    disjoint, triggered, labels kept; nothing else touched."""
    x, y = _data()
    px, py, idx = attack.poison(x, y, num_classes=10)
    assert len(idx) == round(attack.rate * len(y)) == len(torch.unique(idx))
    assert (y[idx] != attack.target).all() and (py[idx] == attack.target).all()
    assert len(extra) == n_extra == len(torch.unique(extra)) and not set(extra.tolist()) & set(idx.tolist())
    assert torch.equal(py[extra], y[extra])
    changed = (px != x).flatten(1).any(1)
    expected = torch.zeros(len(y), dtype=torch.bool)
    expected[idx], expected[extra] = True, True
    assert torch.equal(changed, expected)
    untouched = ~expected
    assert torch.equal(py[untouched], y[untouched])
    return x, y, px, py, idx


# ------------------------------------------------------------------------------------------------ WaNet
def test_wanet_poisons_its_rate_and_cross_ratio_times_as_many_noise_mode_images():
    attack = WaNet(target=3, rate=0.05, cross_ratio=2)
    cross = attack.cross_indices(_data()[1], attack.choose(_data()[1], 50))
    x, y, px, _, _ = _check_poison_and_kept(attack, cross, 100)
    assert not torch.equal(px[cross], attack.apply(x[cross]))  # the warp plus per-image noise, not the warp
    assert len(y[cross].unique()) == 10  # noise-mode images come from any class
    none = WaNet(target=3, rate=0.05, cross_ratio=0)
    _check_poison_and_kept(none, torch.empty(0, dtype=torch.long), 0)


def _ramps(n, h, w):
    """Images whose channels are linear ramps (column, row) of different slopes and offsets per image: bilinear
    sampling reproduces them exactly, so the sampled value gives back the sampling position."""
    gen = torch.Generator().manual_seed(1)
    scale, offset = 0.3 + 0.3 * torch.rand(n, 2, 1, 1, generator=gen), 0.3 * torch.rand(n, 2, 1, 1, generator=gen)
    rows, cols = torch.meshgrid(torch.arange(h) / (h - 1), torch.arange(w) / (w - 1), indexing="ij")
    coords = torch.stack([cols, rows])[None]
    x = torch.cat([offset + scale * coords, torch.full((n, 1, h, w), 0.5)], dim=1)
    return x, scale, offset, coords


@pytest.mark.parametrize("h, w", [(32, 32), (64, 48)])
def test_wanet_is_one_warp_moving_no_pixel_more_than_its_max_shift(h, w):
    attack = WaNet(seed=0)
    x, scale, offset, coords = _ramps(6, h, w)
    sampled = (attack.stamp(x)[:, :2] - offset) / scale  # where each pixel was read from
    moved = (sampled - coords) * torch.tensor([w - 1, h - 1]).view(1, 2, 1, 1)  # pixels, (dx, dy)
    field = attack.displacement(h, w).permute(2, 0, 1)
    assert torch.allclose(moved, field.expand_as(moved), atol=1e-3)  # the same field for every image
    assert moved.norm(dim=1).max() <= attack.max_shift(h, w) + 1e-3
    # stated: at the original's k = 4, s = 0.5 no pixel moves by 1 pixel or more (0.52-0.67 px, seeds 0-4)
    assert all(0.3 < WaNet(seed=s).max_shift(h, w) < 1.0 for s in range(5))
    assert torch.allclose(x[:, 2], attack.stamp(x)[:, 2])  # a constant channel stays put


def test_wanet_changes_real_images_only_by_resampling_them(images):
    out = WaNet().apply(images).float()
    delta = (out - images.float()).abs()
    assert (delta > 0).float().mean() > 0.5  # a whole-image trigger
    # the warp moves < 1 px, so each warped pixel is a mix of its 3 x 3 neighbourhood and lies within its range
    x = images.float()
    high, low = torch.nn.functional.max_pool2d(x, 3, 1, 1), -torch.nn.functional.max_pool2d(-x, 3, 1, 1)
    assert (out <= high + 0.5).all() and (out >= low - 0.5).all()
    mask, pattern = WaNet().trigger(32, 32)
    assert not mask.any() and pattern.shape == (3, 32, 32) and 0 <= pattern.min() <= pattern.max() <= 1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"k": 1}, "k .*int >= 2"),
        ({"s": 0}, "s .*> 0"),
        ({"grid_rescale": 1.5}, r"grid_rescale .*\(0, 1\]"),
        ({"cross_ratio": -1}, "cross_ratio .*>= 0"),
    ],
)
def test_wanet_bad_parameters_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WaNet(**kwargs)


def test_wanet_too_many_noise_mode_images_raise():
    with pytest.raises(ValueError, match="lower the rate"):
        WaNet(rate=0.4, cross_ratio=2).poison(*_data(100), 10)


# ------------------------------------------------------------------------------------------ Adaptive
@pytest.mark.parametrize("cls", [AdapBlend, AdapPatch])
def test_adaptive_poisons_its_rate_and_cover_rate_of_non_target_images(cls):
    attack = cls(target=3, rate=0.05, cover_rate=0.04)
    y = _data()[1]
    cover = attack.cover_indices(y, attack.choose(y, 50))
    _check_poison_and_kept(attack, cover, 40)
    assert (y[cover] != 3).all()
    _check_poison_and_kept(cls(target=3, rate=0.05, cover_rate=0), torch.empty(0, dtype=torch.long), 0)


def _parts_touched(attack, before, after):
    """(N, P) bool: which parts of the trigger changed each image."""
    changed = (after != before).any(1).float()  # (N, H, W)
    return torch.einsum("nhw,phw->np", changed, attack.parts(32, 32)) > 0


def _bound(alpha):  # largest |delta| in uint8 pixel units of a blend at opacity alpha, rounding included
    return alpha * 255 + 0.5


@pytest.mark.parametrize("cls, kept", [(AdapBlend, 8), (AdapPatch, 2)])
def test_adaptive_training_images_get_a_random_subset_of_parts_at_train_alpha(cls, kept):
    attack = cls()
    x = _data(200)[0]
    out = attack.poison_images(x, None)
    delta = (out.float() - x.float()).abs()
    assert delta.max() <= _bound(attack.train_alpha)
    touched = _parts_touched(attack, x, out)
    assert (touched.sum(1) == kept).all()  # 8 of 16 pieces, 2 of 4 patches
    subsets = math.comb(touched.shape[1], kept)  # 12870 for Adap-Blend, 6 for Adap-Patch
    assert len({tuple(t.tolist()) for t in touched}) >= min(subsets, 150)  # drawn per image
    outside = attack.parts(32, 32).sum(0) == 0
    assert not delta[:, :, outside].any()


def test_adap_blend_test_trigger_blends_the_whole_key_at_test_alpha(images):
    attack = AdapBlend()
    out = attack.apply(images)
    delta = (out.float() - images.float()).abs()
    assert delta.max() <= _bound(0.2) and (delta > 0).float().mean() > 0.9
    key = attack.pattern(32, 32)
    assert torch.allclose(out.float(), ((0.8 * images / 255 + 0.2 * key) * 255).round(), atol=1)
    parts = attack.parts(32, 32)
    assert parts.shape == (16, 32, 32) and torch.equal(parts.sum(0), torch.ones(32, 32))
    odd = AdapBlend(pieces=9).parts(30, 31)  # any size: 3 x 3 pieces tile a 30x31 image
    assert torch.equal(odd.sum(0), torch.ones(30, 31)) and (odd.sum((1, 2)) >= 100).all()


@pytest.mark.parametrize("h, w", [(32, 32), (64, 64), (224, 200)])
def test_adap_patch_test_trigger_stamps_all_patches_opaque_and_nothing_else(h, w):
    attack = AdapPatch()
    x = torch.randint(0, 256, (4, 3, h, w), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    parts = attack.parts(h, w)
    side = max(2, round(min(h, w) / 4))
    assert parts.shape == (4, h, w) and (parts.sum((1, 2)) == side * side).all() and parts.sum(0).max() == 1
    out = attack.apply(x)
    inside = parts.sum(0) > 0
    assert torch.equal(out[:, :, ~inside], x[:, :, ~inside])
    expected = (attack.pattern(h, w) * 255).round().to(torch.uint8)[:, inside]
    assert torch.equal(out[:, :, inside], expected.expand(4, *expected.shape))


@pytest.mark.parametrize("cls", [WaNet, AdapBlend, AdapPatch])
def test_each_attack_is_seeded(cls, images):
    assert torch.equal(cls(seed=3).apply(images), cls(seed=3).apply(images))
    assert not torch.equal(cls(seed=3).apply(images), cls(seed=4).apply(images))
    x, y = _data()
    a, b = cls(seed=3).poison(x, y, 10), cls(seed=3).poison(x, y, 10)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not torch.equal(a[0], cls(seed=4).poison(x, y, 10)[0])
    assert cls(seed=3).params() == cls(seed=3).params() != cls(seed=4).params()


@pytest.mark.parametrize(
    "cls, kwargs, message",
    [
        (AdapBlend, {"pieces": 15}, "square number"),
        (AdapBlend, {"mask_rate": 1.0}, r"mask_rate .*\[0, 1\)"),
        (AdapBlend, {"train_alpha": 0}, r"train_alpha .*\(0, 1\]"),
        (AdapBlend, {"test_alpha": 1.5}, r"test_alpha"),
        (AdapBlend, {"cover_rate": 1.0}, r"cover_rate .*\[0, 1\)"),
        (AdapPatch, {"patches": 0}, "patches .*int >= 1"),
        (AdapPatch, {"patches_per_image": 5}, r"patches_per_image .*\[1, 4\]"),
        (AdapPatch, {"patch_size": 0}, "patch_size .*int >= 1"),
    ],
)
def test_adaptive_bad_parameters_raise(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


def test_adaptive_triggers_that_do_not_fit_or_too_much_cover_raise():
    with pytest.raises(ValueError, match="patch_size to at most 16"):
        AdapPatch(patch_size=17).apply(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="do not fit"):
        AdapBlend(pieces=64).apply(torch.zeros(2, 3, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match="cover"):
        AdapBlend(rate=0.5, cover_rate=0.5).poison(*_data(100), 10)


def test_adaptive_all_to_all_relabels_to_the_next_class():
    x, y = _data(100)
    _, py, idx = AdapBlend(all_to_all=True, rate=0.1).poison(x, y, 10)
    assert torch.equal(py[idx], (y[idx] + 1) % 10)
