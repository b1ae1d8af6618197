import copy

import pytest
import torch

from ebyd_utils.attacks import ATTACKS, SIG, BadNets, Blend, Trojan, make_attack
from ebyd_utils.attacks.badnets import OFFICIAL_GRID

TINY_FIT = {
    "lc": {"fit_images": 0, "surrogate_epochs": 1, "steps": 2},
    "iad": {"fit_images": 0, "mask_epochs": 1, "epochs": 1},
    "ssba": {"fit_images": 0, "epochs": 1},
}


def _labels(n=1000, k=10):
    return torch.arange(n) % k


@pytest.mark.parametrize("name", sorted(ATTACKS))
@pytest.mark.parametrize("rate", [0.01, 0.05])
def test_poisons_exactly_the_requested_rate(name, rate):
    x = torch.randint(0, 256, (1000, 3, 32, 32), dtype=torch.uint8)
    y = _labels()
    attack = make_attack(name, rate=rate, target=3, **TINY_FIT.get(name, {}))
    if attack.needs_fit:  # a trained component (surrogate, generator, encoder), at a budget of a second
        attack.load_component(attack.fit(x, y, 10))
    px, py, idx = attack.poison(x, y, num_classes=10)
    assert len(idx) == round(rate * 1000) == len(torch.unique(idx))
    assert (py[idx] == 3).all()
    untouched = torch.ones(1000, dtype=torch.bool)
    untouched[idx] = False
    extra = attack.extra_indices(y, idx)  # cover / noise-mode / cross-trigger images: triggered, labels kept
    assert not untouched[extra].logical_not().any()  # disjoint from the relabelled ones
    assert torch.equal(py[extra], y[extra]) and torch.equal(py[untouched], y[untouched])
    untouched[extra] = False
    assert torch.equal(px[untouched], x[untouched])
    assert not torch.equal(px[idx], x[idx])
    # dirty-label attacks poison non-target images, the clean-label SIG only target-class images
    assert (y[idx] == 3).all() if attack.clean_label else (y[idx] != 3).all()


def test_badnets_default_is_the_official_grid_bottom_right(images):
    out = BadNets().apply(images)
    assert torch.equal(out[:, :, -3:, -3:], (OFFICIAL_GRID * 255).to(torch.uint8).expand(20, 3, 3, 3))
    changed = (out != images).any(1).any(0)
    assert not changed[:-3].any() and not changed[:, :-3].any()


def test_custom_badnets_patch_size_position_and_pattern(images):
    pattern = torch.tensor([[255, 0, 255, 0]] * 4, dtype=torch.uint8)
    out = BadNets(size=4, position=(5, 7), pattern=pattern).apply(images)
    assert torch.equal(out[:, :, 5:9, 7:11], pattern.expand(20, 3, 4, 4))
    mask = torch.ones(32, 32, dtype=torch.bool)
    mask[5:9, 7:11] = False
    assert torch.equal(out[:, :, mask], images[:, :, mask])


def test_trojan_stamps_only_its_square(images):
    out = Trojan(size=6).apply(images)
    mask = torch.ones(32, 32, dtype=torch.bool)
    mask[-6:, -6:] = False
    assert torch.equal(out[:, :, mask], images[:, :, mask])
    assert (out[:, :, -6:, -6:] == out[:1, :, -6:, -6:]).all()  # same pattern on every image


def test_blend_mixes_every_pixel_with_alpha(images):
    key = torch.zeros(3, 32, 32)
    out = Blend(alpha=0.25, image=key).apply(images)
    assert torch.allclose(out.float(), (0.75 * images.float()).round(), atol=1)
    custom = torch.full((3, 32, 32), 255, dtype=torch.uint8)
    out = Blend(alpha=1.0, image=custom).apply(images)
    assert (out == 255).all()


def test_sig_adds_a_horizontal_sinusoid():
    grey = torch.full((2, 3, 32, 32), 128, dtype=torch.uint8)
    out = SIG(delta=20 / 255, frequency=6).apply(grey).float() - 128
    assert torch.equal(out[:, :, 0], out[:, :, 17])  # constant down each column
    assert out.max() == pytest.approx(20, abs=1) and out.min() == pytest.approx(-20, abs=1)


def test_triggers_are_reproducible_from_their_seed(images):
    assert torch.equal(Blend(seed=3).apply(images), Blend(seed=3).apply(images))
    assert not torch.equal(Blend(seed=3).apply(images), Blend(seed=4).apply(images))
    assert Blend(seed=3).params() == Blend(seed=3).params() != Blend(seed=4).params()


@pytest.mark.parametrize(
    "kwargs, message",
    [({"rate": 0.0}, "rate"), ({"rate": 1.0}, "rate"), ({"rate": 1.5}, "rate"), ({"target": -1}, "target")],
)
def test_bad_rate_or_target_raises(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_attack("badnets", **kwargs)


def test_unknown_attack_names_the_choices():
    with pytest.raises(ValueError, match="badnets"):
        make_attack("wanet-typo")


def test_target_out_of_range_raises():
    with pytest.raises(ValueError, match="out of range"):
        BadNets(target=12).poison(torch.zeros(10, 3, 32, 32, dtype=torch.uint8), _labels(10), num_classes=10)


def test_wrong_shaped_triggers_raise():
    with pytest.raises(ValueError, match=r"\(3, 3\)"):
        BadNets(size=3, pattern=torch.zeros(4, 4))
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        Blend(image=torch.zeros(32, 32))
    with pytest.raises(ValueError, match="3, 32, 32"):
        Blend(image=torch.zeros(3, 16, 16)).apply(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="uint8"):
        BadNets().apply(torch.zeros(2, 32, 32, 3))
    with pytest.raises(ValueError, match="does not fit"):
        BadNets(position=(30, 30)).apply(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))


def test_sig_rate_beyond_the_target_class_raises():
    with pytest.raises(ValueError, match="target-class"):
        SIG(rate=0.5).poison(torch.zeros(100, 3, 32, 32, dtype=torch.uint8), _labels(100), 10)


def test_all_to_all_relabels_y_to_the_next_class_from_every_class():
    x = torch.randint(0, 256, (1000, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    y = _labels()
    attack = BadNets(all_to_all=True, rate=0.2, seed=3)
    _, py, idx = attack.poison(x, y, num_classes=10)
    assert len(idx) == 200 and torch.equal(py[idx], (y[idx] + 1) % 10)
    assert len(torch.unique(y[idx])) == 10  # drawn from every class, the "target" 0 included
    assert attack.label == "badnets-all2all" and attack.single_target is None
    assert attack.asr_pool(y).all() and torch.equal(attack.poison_labels(y, 10), (y + 1) % 10)
    assert BadNets().params() == {k: v for k, v in attack.params().items() if k != "all_to_all"} | {
        "rate": 0.1,
        "seed": 0,
    }


def test_all_to_all_asr_counts_the_next_class_on_every_test_image():
    from types import SimpleNamespace

    from ebyd_utils.train import evaluate

    class NextClass(torch.nn.Module):  # a perfect all-to-all backdoor: a stamped corner means "add one"
        def forward(self, x):
            y = x[:, 0, 0, 0].mul(255).round().long() % 10
            stamped = (x[:, :, -3:, -3:] == BadNets().trigger(8, 8)[1][:, -3:, -3:]).all(-1).all(-1).all(-1)
            return torch.nn.functional.one_hot(torch.where(stamped, (y + 1) % 10, y), 10).float()

    y = _labels(200)
    x = torch.zeros(200, 3, 8, 8, dtype=torch.uint8)
    x[:, 0, 0, 0] = y.to(torch.uint8)
    data = SimpleNamespace(test_x=x, test_y=y, num_classes=10)
    metrics = evaluate(NextClass(), data, BadNets(all_to_all=True))
    assert metrics == {"CA": 1.0, "ASR": 1.0, "RA": 0.0}
    assert evaluate(NextClass(), data, BadNets())["ASR"] == pytest.approx(0.1, abs=0.02)  # all-to-one: only 9 -> 0


def test_an_evaluator_triggers_the_test_images_once_and_reads_as_evaluate_does(smoke_data, badnets_suspect):
    # a CUL monitor reads every epoch and a removal table every repair: the trigger is made once per evaluator
    from ebyd_utils.train import evaluate, evaluator

    attack, calls = badnets_suspect.attack, []

    class Counting:  # the attack, counting the images it triggers
        def __getattr__(self, name):
            return getattr(attack, name)

        def apply(self, x):
            calls.append(len(x))
            return attack.apply(x)

    measure = evaluator(smoke_data, Counting())
    exposed = copy.deepcopy(badnets_suspect.model)  # a second model, same function
    readings = [measure(badnets_suspect.model), measure(exposed), measure(badnets_suspect.model)]
    assert len(calls) == 1 and calls[0] == int((smoke_data.test_y != attack.target).sum())
    assert readings[0] == readings[2] == evaluate(badnets_suspect.model, smoke_data, attack)
    assert readings[0]["ASR"] >= 0.9 and readings[1] == readings[0]  # the backdoor, read the same through both
    assert evaluator(smoke_data)(exposed) == {"CA": readings[0]["CA"]}  # no attack: CA only


def test_clean_label_attacks_have_no_all_to_all():
    with pytest.raises(ValueError, match="clean-label"):
        SIG(all_to_all=True)
