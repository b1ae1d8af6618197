"""The ablations of notebook 08: points from each sweep's values (bad ones refused with what is allowed), every
point read with its own clean control and references, and a sweep's second call computing nothing."""

import pytest

from ebyd_utils import pipeline as pl
from ebyd_utils.experiments import ablations
from ebyd_utils.expose import EXPOSURES


def test_each_sweep_makes_points_of_its_own_settings(smoke):
    g = ablations.grid("smoke")
    points = ablations.all_points(smoke, g)
    assert {p["sweep"] for p in points} == set(ablations.SWEEPS)
    by = {(p["sweep"], p["label"]): p for p in points}
    assert by["defense_set", "50 images"]["defense"] == {"size": 50} and not by["defense_set", "50 images"]["data"]
    assert by["stop_rule", "fixed 30 epochs"]["fixed"] and by["stop_rule", "fixed 30 epochs"]["cul"] == {
        "stop_acc": 0.0
    }
    assert by["bn", "BN running statistics"]["cul"] == {"bn_eval": True}
    assert by["poison_rate", "2.0%"]["attack"] == {"rate": 0.02}
    assert by["architecture", "model vgg_small, lr 0.05, epochs 5"]["train"]["model"] == "vgg_small"
    # a size beyond the profile's defense set moves every point of the sweep to a split that holds it out
    bigger = ablations.make_points(smoke, "defense_set", [{"size": 50}, {"size": 400}])
    assert all(p["data"] == {"defense_size": 400} for p in bigger)
    assert ablations.grid("quick", cul_lrs=[1e-3])["cul_lrs"] == [1e-3]
    assert ablations.grid("quick")["poison_rates"] == ablations.GRIDS["quick"]["poison_rates"]


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
