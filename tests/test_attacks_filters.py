"""One-pixel, Nashville, Smooth and BPP: poisoning, what each trigger changes (with stated bounds), seeding,
parameter checks, and (slow) ASR on smoke data."""

import numpy as np
import pytest
import torch

from ebyd_utils.attacks.bpp import BPP, floyd_steinberg
from ebyd_utils.attacks.nashville import Nashville
from ebyd_utils.attacks.onepixel import OnePixel
from ebyd_utils.attacks.smooth import Smooth

ATTACKS = [OnePixel, Nashville, Smooth, BPP]


def _data(n=1000, k=10, side=32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, side, side), dtype=torch.uint8, generator=gen), torch.arange(n) % k


# ----------------------------------------------------------------------------------- poisoning
@pytest.mark.parametrize("cls", ATTACKS)
def test_poisons_exactly_the_rate_from_non_target_images(cls):
    x, y = _data(500)
    px, py, idx = cls(rate=0.06, target=2).poison(x, y, 10)
    assert len(idx) == 30 == len(torch.unique(idx)) and (y[idx] != 2).all() and (py[idx] == 2).all()
    rest = torch.ones(500, dtype=torch.bool)
    rest[idx] = False
    assert torch.equal(px[rest], x[rest]) and torch.equal(py[rest], y[rest])
    assert torch.equal(px[idx], cls(rate=0.06, target=2).apply(x[idx]))  # training trigger = test trigger


@pytest.mark.parametrize("cls", ATTACKS)
def test_all_to_all_relabels_to_the_next_class(cls):
    x, y = _data(200)
    _, py, idx = cls(all_to_all=True, rate=0.1).poison(x, y, 10)
    assert len(idx) == 20 and torch.equal(py[idx], (y[idx] + 1) % 10)


@pytest.mark.parametrize("cls", ATTACKS)
def test_record_tensors_have_the_stamp_shapes_and_range(cls):
    for h, w in [(32, 32), (64, 48)]:
        mask, pattern = cls().trigger(h, w)
        assert mask.shape == (1, h, w) and pattern.shape == (3, h, w)
        assert 0 <= mask.min() and mask.max() <= 1 and 0 <= pattern.min() and pattern.max() <= 1


# ----------------------------------------------------------------------------------- one pixel
def test_onepixel_default_is_the_official_white_centre_pixel():
    x, _ = _data(20)
    out = OnePixel().apply(x)
    assert (out[:, :, 16, 16] == 255).all()
    changed = torch.ones(32, 32, dtype=torch.bool)
    changed[16, 16] = False
    assert torch.equal(out[:, :, changed], x[:, :, changed])
    big = OnePixel().apply(torch.zeros(2, 3, 224, 160, dtype=torch.uint8))
    assert big.sum() == 2 * 3 * 255 and (big[:, :, 112, 80] == 255).all()  # (h // 2, w // 2) at any size


def test_onepixel_custom_position_and_colour():
    out = OnePixel(position=(3, 30), value=(1.0, 0.0, 0.5)).apply(torch.full((2, 3, 32, 32), 77, dtype=torch.uint8))
    assert out[0, :, 3, 30].tolist() == [255, 0, 128]
    assert (out != 77).any(1).sum() == 2  # one pixel in each of the 2 images


# ----------------------------------------------------------------------------------- Nashville
# pilgram.nashville (akiomik/pilgram) on these colours, computed once from pilgram's source
PILGRAM_NASHVILLE = {
    (0, 0, 0): (0, 8, 46),
    (255, 255, 255): (255, 252, 217),
    (128, 128, 128): (144, 139, 141),
    (255, 0, 0): (255, 22, 52),
    (0, 255, 0): (0, 235, 43),
    (0, 0, 255): (0, 13, 212),
    (10, 200, 90): (0, 206, 110),
    (200, 30, 160): (233, 42, 167),
}


def test_nashville_matches_pilgram_on_reference_colours():
    colours = torch.tensor(list(PILGRAM_NASHVILLE), dtype=torch.uint8).T.reshape(1, 3, 1, -1)
    out = Nashville().apply(colours)[0, :, 0].T.tolist()
    assert [tuple(c) for c in out] == list(PILGRAM_NASHVILLE.values())


def test_nashville_changes_the_whole_image_within_its_bound():
    """Over random colours pilgram's Nashville moves a channel by 16.3 levels on average, at most 53 (measured
    over all 2^24 colours); each pixel only through its own colour."""
    x, _ = _data(50)
    delta = (Nashville().apply(x).float() - x.float()).abs()
    assert 14 <= delta.mean() <= 19 and delta.max() <= 53
    assert (delta.amax(1) > 0).float().mean() > 0.95  # nearly every pixel changes
    flat = torch.full((1, 3, 8, 8), 90, dtype=torch.uint8)
    assert (Nashville().apply(flat) == Nashville().apply(flat)[..., :1, :1]).all()  # no position dependence


# ----------------------------------------------------------------------------------- Smooth
def test_smooth_adds_a_low_frequency_pattern_of_size_epsilon():
    grey = torch.full((2, 3, 32, 32), 128, dtype=torch.uint8)
    delta = Smooth(epsilon=32 / 255).apply(grey).float() - 128
    assert delta.abs().max() == pytest.approx(32, abs=0.5) and torch.equal(delta[0], delta[1])
    pattern = Smooth(cutoff=0.1).pattern(32, 32).double()
    spectrum = torch.fft.fft2(pattern).abs()
    fy, fx = torch.fft.fftfreq(32).view(32, 1), torch.fft.fftfreq(32).view(1, 32)
    above = (fy**2 + fx**2).sqrt() > 0.05
    assert spectrum[:, above].max() < 1e-6 * spectrum.max()  # nothing above cutoff x Nyquist (float32 noise)
    assert Smooth().pattern(64, 48).shape == (3, 64, 48)


def test_smooth_is_clipped_to_valid_pixels():
    out = Smooth(epsilon=1.0).apply(torch.full((1, 3, 16, 16), 250, dtype=torch.uint8))
    assert out.max() == 255 and out.min() < 250


# ----------------------------------------------------------------------------------- BPP
def _dither_reference(image: np.ndarray, levels: int) -> np.ndarray:
    """Floyd-Steinberg pixel by pixel, in 0..255 units, as the BppAttack code scans one image."""
    image = image.astype(np.float64).copy()
    _, h, w = image.shape
    for r in range(h):
        for c in range(w):
            old = image[:, r, c].copy()
            new = np.round(old / 255 * (levels - 1)) / (levels - 1) * 255
            image[:, r, c], error = new, old - new
            for dr, dc, weight in ((0, 1, 7 / 16), (1, -1, 3 / 16), (1, 0, 5 / 16), (1, 1, 1 / 16)):
                if 0 <= r + dr < h and 0 <= c + dc < w:
                    image[:, r + dr, c + dc] += weight * error
    return np.round(image)


@pytest.mark.parametrize("shape, bits", [((6, 3, 16, 16), 3), ((3, 3, 7, 13), 2), ((3, 3, 13, 7), 5)])
def test_bpp_wavefront_dithering_equals_the_pixel_by_pixel_scan(shape, bits):
    x = torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    expected = np.stack([_dither_reference(img, 2**bits) for img in x.numpy()])
    assert np.array_equal(BPP(bits=bits).apply(x).numpy(), expected.astype(np.uint8))


def test_bpp_keeps_only_its_levels_within_one_level_of_the_image():
    x, _ = _data(50)
    out = BPP(bits=3).apply(x)
    levels = torch.tensor([round(k * 255 / 7) for k in range(8)], dtype=torch.uint8)
    assert torch.isin(out, levels).all()
    delta = (out.float() - x.float()).abs()
    assert delta.max() <= 37 and 6 <= delta.mean() <= 14  # at most one level step (255/7); measured mean 10
    plain = (BPP(bits=3, dither=False).apply(x).float() - x.float()).abs()
    assert plain.max() <= 18.5  # plain rounding: at most half a step


def test_bpp_dithering_keeps_the_local_mean():
    grey = torch.full((1, 3, 32, 32), 100, dtype=torch.uint8)  # 100 lies between levels 73 and 109
    out = BPP(bits=3).apply(grey).float()
    assert set(out.unique().tolist()) == {73.0, 109.0} and out.mean() == pytest.approx(100, abs=1.5)
    assert (BPP(bits=3, dither=False).apply(grey) == 109).all()


def test_floyd_steinberg_works_on_the_input_device_and_dtype():
    x = torch.rand(2, 3, 5, 5, dtype=torch.float64)
    out = floyd_steinberg(x, 4)
    assert out.shape == x.shape and out.device == x.device


# ----------------------------------------------------------------------------------- seeds
def test_fixed_triggers_do_not_depend_on_the_seed_but_the_poisoned_set_does():
    x, y = _data(300)
    for cls in (OnePixel, Nashville, BPP):
        assert torch.equal(cls(seed=1).apply(x[:5]), cls(seed=2).apply(x[:5]))
        _, _, idx1 = cls(seed=1).poison(x, y, 10)
        _, _, idx1b = cls(seed=1).poison(x, y, 10)
        _, _, idx2 = cls(seed=2).poison(x, y, 10)
        assert torch.equal(idx1, idx1b) and not torch.equal(idx1, idx2)


def test_smooth_pattern_is_reproducible_from_its_seed():
    torch.manual_seed(123)  # the global RNG must not matter
    a = Smooth(seed=3).pattern(32, 32)
    torch.manual_seed(456)
    assert torch.equal(a, Smooth(seed=3).pattern(32, 32))
    assert not torch.allclose(a, Smooth(seed=4).pattern(32, 32))
    assert Smooth(seed=3).params() == Smooth(seed=3).params() != Smooth(seed=4).params()


# ----------------------------------------------------------------------------------- bad parameters
@pytest.mark.parametrize(
    "cls, kwargs, message",
    [
        (OnePixel, {"position": (1, 2, 3)}, r"position .*\(row, col\)"),
        (OnePixel, {"position": (-1, 0)}, "ints >= 0"),
        (OnePixel, {"value": 2.0}, r"value .*\[0, 1\]"),
        (OnePixel, {"value": (1.0, 0.0)}, r"\(r, g, b\)"),
        (Smooth, {"cutoff": 0}, r"cutoff .*\(0, 1\]"),
        (Smooth, {"cutoff": 1.5}, r"cutoff .*\(0, 1\]"),
        (Smooth, {"epsilon": 0}, r"epsilon .*\(0, 1\]"),
        (Smooth, {"epsilon": 32}, r"epsilon .*pixel units"),
        (BPP, {"bits": 8}, r"bits .*\[1, 7\]"),
        (BPP, {"bits": 0}, r"bits .*\[1, 7\]"),
        (BPP, {"bits": 2.5}, "int"),
        (BPP, {"dither": "yes"}, "dither must be True or False"),
    ],
)
def test_bad_parameters_raise(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


def test_onepixel_outside_the_image_raises():
    with pytest.raises(ValueError, match=r"row must be in \[0, 31\]"):
        OnePixel(position=(32, 0)).apply(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
