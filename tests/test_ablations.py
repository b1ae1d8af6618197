"""The ablations of notebook 08: points from each sweep's values (bad ones refused with what is allowed), every
point read with its own clean control and references, and a sweep's second call computing nothing."""

import pytest

from ebyd_utils import pipeline as pl
from ebyd_utils.experiments import ablations
from ebyd_utils.expose import EXPOSURES


def test_each_sweep_makes_points_of_its_own_settings(smoke):
    # quick's grid (a point of every kind) within smoke's 200 defense images
    points = ablations.all_points(smoke, ablations.grid("quick", defense_sizes=[50, 200]))
    assert {p["sweep"] for p in points} == set(ablations.SWEEPS)
    by = {(p["sweep"], p["label"]): p for p in points}
    assert by["defense_set", "50 images"]["defense"] == {"size": 50} and not by["defense_set", "50 images"]["data"]
    assert by["defense_set", "without class 0"]["defense"] == {"leave_out": 0}
    assert by["stop_rule", "fixed 30 epochs"]["fixed"] and by["stop_rule", "fixed 30 epochs"]["cul"] == {
        "stop_acc": 0.0
    }
    assert not by["stop_rule", "collapse (acc <= 0.15)"]["fixed"]
    assert by["bn", "BN running statistics"]["cul"] == {"bn_eval": True}
    assert by["poison_rate", "1.0%"]["attack"] == {"rate": 0.01}
    assert by["architecture", "model vgg_small, lr 0.2"]["train"] == {"model": "vgg_small", "lr": 0.2}
    assert by["recipe", "label_smoothing 0.1"]["train"] == {"label_smoothing": 0.1}
    # the recipe is the suspect's: the defender's references keep the profile's; the architecture is known to the
    # defender (it holds the model): its references share it
    assert ablations._defender_side(by["recipe", "label_smoothing 0.1"])["train"] == {}
    vgg = by["architecture", "model vgg_small, lr 0.2"]
    assert ablations._defender_side(vgg) is vgg
    # the whole defense set is the profile's own point (the zoo's CUL units), not a subset in another order
    whole = ablations.make_points(smoke, "defense_set", [{"size": smoke.data.defense_size}])
    assert whole[0]["defense"] == {} and whole[0]["data"] == {}
    # a size beyond the profile's defense set moves every point of the sweep to a split that holds it out
    bigger = ablations.make_points(smoke, "defense_set", [{"size": 50}, {"size": 400}])
    assert all(p["data"] == {"defense_size": 400} for p in bigger)
    assert [p["defense"] for p in bigger] == [{"size": 50}, {}]
    assert ablations.grid("quick", cul_lrs=[1e-3])["cul_lrs"] == [1e-3]
    assert ablations.grid("quick")["poison_rates"] == ablations.GRIDS["quick"]["poison_rates"]
    # smoke's grid: every sweep present, its anchor (the profile's setting) among its points
    smoke_points = ablations.all_points(smoke, ablations.grid("smoke"))
    assert {p["sweep"] for p in smoke_points} == set(ablations.SWEEPS)
    own_cul = [all(getattr(smoke.cul, k) == v for k, v in p["cul"].items()) for p in smoke_points]
    own = [p for p, c in zip(smoke_points, own_cul) if c and not any(p[k] for k in ("data", "train", "defense"))]
    assert {p["sweep"] for p in own} == set(ablations.SWEEPS)


def test_the_small_vgg_is_another_network_with_the_same_interface():
    import torch

    from ebyd_utils.models import FastCNN, SmallVGG, build_model

    vgg = build_model("vgg_small", widths=(8, 16, 32), activation="relu").eval()
    assert isinstance(vgg, SmallVGG) and not isinstance(vgg, FastCNN)
    x = torch.rand(4, 3, 32, 32)
    assert vgg(x).shape == (4, 10) and vgg.features(x).shape == (4, 32)
    assert torch.allclose(vgg.head(vgg.features(x)), vgg(x))
    with pytest.raises(ValueError, match="unknown activation"):
        build_model("vgg_small", activation="swish")


def test_bad_sweep_values_name_what_is_allowed(smoke):
    with pytest.raises(ValueError, match="unknown sweep 'lr'; choose one of"):
        ablations.make_points(smoke, "lr", [1e-3])
    with pytest.raises(ValueError, match=r"poison rate must be in \(0, 1\)"):
        ablations.make_points(smoke, "poison_rate", [1.5])
    with pytest.raises(ValueError, match="'collapse' or 'fixed'"):
        ablations.make_points(smoke, "stop_rule", ["early"])
    with pytest.raises(ValueError, match="allowed"):
        ablations.make_points(smoke, "recipe", [{"smoothing": 0.1}])
    with pytest.raises(ValueError, match="unknown sweep parameter"):
        ablations.grid("smoke", lrs=[1e-3])


@pytest.mark.slow
def test_a_sweep_reads_its_clean_control_and_computes_nothing_the_second_time(
    smoke_run, badnets_suspect, clean_suspect, references, monkeypatch
):
    points = ablations.make_points(smoke_run.profile, "cul_lr", [1e-2])  # collapses in a few epochs
    first = ablations.sweep_table(smoke_run, points, ["badnets"], [0], restarts=1)
    assert list(first["role"]) == ["suspect", "control"] and first["backdoored"].tolist() == [True, False]
    assert (first["n_reference"] == smoke_run.profile.detection.n_reference).all()
    assert first["model_id"].str.endswith("@cul_lr=0.01").all()

    def boom(*args, **kwargs):
        raise AssertionError("a cached point was computed again")

    monkeypatch.setattr(pl, "train_model", boom)
    monkeypatch.setattr(pl, "clean_unlearn", boom)
    for name in EXPOSURES:
        monkeypatch.setitem(EXPOSURES, name, boom)
    again = ablations.sweep_table(smoke_run, points, ["badnets"], [0], restarts=1)
    assert again.equals(first)


def test_the_feature_views_separations_see_classes_fold_and_a_triggered_cluster_stand_apart():
    import numpy as np

    from ebyd_utils.experiments.feature_view import separations

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 50)
    offsets = 10 * np.eye(8)[labels]  # 4 classes, 10 apart along their own axes, unit noise
    apart = offsets + rng.normal(size=(200, 8))
    folded = 0.1 * offsets + rng.normal(size=(200, 8))  # the classes collapsed onto each other
    triggered = rng.normal(size=(60, 8)) + 30 * np.eye(8)[7]  # a cluster far from every class

    def measure(fc, ft):
        centroids = np.stack([fc[labels == c].mean(0) for c in range(4)])
        return separations(fc, labels, ft, centroids)

    before, after = measure(apart, triggered), measure(folded, triggered)
    assert before["clean_class_separation"] > 4 and after["clean_class_separation"] < 1
    assert after["triggered_separation"] > before["triggered_separation"] > 2
    near = measure(apart, apart[:60])  # "triggered" images drawn from the clean ones: not apart
    assert near["triggered_separation"] < 1
