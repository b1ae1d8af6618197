"""The exposure methods of expose/ (notebook 07): each changes a smoke model, is deterministic given its seed,
stops by a rule that reads only the defender's data, refuses bad input with the allowed values, and is a cached
unit under every setting."""

import dataclasses
import inspect

import pandas as pd
import pytest
import torch

from ebyd_utils import pipeline as pl
from ebyd_utils.defenses import detect_exposed
from ebyd_utils.experiments import exposure_methods as em
from ebyd_utils.experiments.exposure_units import defense_subset, expose_by, method_settings
from ebyd_utils.expose import CONFIGS, EXPOSURES, KNOBS, clean_unlearn, exposure_method
from ebyd_utils.train import outputs, predict

SIGNATURE = ["model", "defense_x", "defense_y", "cfg", "num_classes", "probe_x", "seed", "monitor", "progress"]
ATTACKER_WORDS = ("trigger", "target", "asr", "attack", "test", "poison")
# small budgets: a test of each method's code, not of its strength (notebook 07 measures that)
SMALL = {
    "cul": {"epochs": 2},
    "shuffle_ft": {"epochs": 2, "batch_size": 100, "augment": False},
    "large_lr_ft": {"epochs": 2, "batch_size": 100, "augment": False},
    "noise_ft": {"epochs": 2, "batch_size": 100, "augment": False},
    "act_prune": {"levels": 2},
    "awp": {"levels": 2},
    "magnitude_prune": {"levels": 2},
    "bn_prune": {"levels": 2},
}


def _expose(method, suspect, data, seed, monitor=None):
    fn, cfg = exposure_method(method, **{**dataclasses.asdict(CONFIGS[method]()), **SMALL[method], "stop_acc": 0.0})
    x, y, probe = data.defense_x[:100], data.defense_y[:100], data.probe_x[:100]
    return fn(suspect.model, x, y, cfg, data.num_classes, probe_x=probe, seed=seed, monitor=monitor, progress=False)


def misleading_monitor(model):
    # what the evaluation side logs beside each step: were the stop rule to read it, it would stop at once
    return {"CA": 0.0, "ASR": 1.0, "defense_acc_eval": 0.0}


def _same(a, b) -> bool:
    a, b = a.state_dict(), b.state_dict()
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("method", list(EXPOSURES))
def test_each_method_changes_the_model_and_is_deterministic(method, smoke_data, badnets_suspect):
    first, log = _expose(method, badnets_suspect, smoke_data, seed=1)
    # the same seed, now with the evaluation's monitor logging beside each step: same model, same steps
    again, log_again = _expose(method, badnets_suspect, smoke_data, seed=1, monitor=misleading_monitor)
    assert not _same(first, badnets_suspect.model), f"{method} left the suspect's weights as they were"
    assert _same(first, again), f"{method} is not deterministic given its seed (or reads its monitor)"
    assert log.equals(log_again.drop(columns=["CA", "ASR", "defense_acc_eval"]))
    assert log.attrs == log_again.attrs == {"stop_epoch": None, "collapsed": False}
    assert log["epoch"].tolist() == list(range(len(log))) and len(log) == 3  # before + 2 steps (stop_acc 0)
    assert abs(log.filter(like="probe_share_").iloc[-1].sum() - 1) < 1e-5
    assert "ASR" not in log and "CA" not in log  # no evaluation without a monitor
    # the exposure changed the function on the defender's clean images, not only unused weights (2 small steps
    # need not change a predicted label yet: the logits)
    x = smoke_data.defense_x[:100]
    moved = (outputs(first, x).float() - outputs(badnets_suspect.model, x).float()).abs().max().item()
    assert moved > 1e-3, f"{method} left the logits as they were (max change {moved})"


@pytest.mark.parametrize("method", list(EXPOSURES))
def test_the_stop_rule_reads_only_the_defenders_data(method):
    params = list(inspect.signature(EXPOSURES[method]).parameters)
    assert params == SIGNATURE, f"{method}'s signature {params}"
    settings = [f.name for f in dataclasses.fields(CONFIGS[method])]
    assert "stop_acc" in settings and KNOBS[method] in settings
    assert not [s for s in params + settings if any(w in s.lower() for w in ATTACKER_WORDS)]


def test_the_stop_rule_returns_the_first_collapsed_step(smoke_data, badnets_suspect):
    fn, cfg = exposure_method("act_prune", rate=0.9, levels=9, stop_acc=0.5)
    x, y = smoke_data.defense_x, smoke_data.defense_y
    model, log = fn(badnets_suspect.model, x, y, cfg, 10, probe_x=smoke_data.probe_x, progress=False)
    stop = log.attrs["stop_epoch"]
    assert log.attrs["collapsed"] and 0 < stop == len(log) - 1  # stopped there, nothing run after
    assert log["defense_acc"].iloc[stop] <= 0.5 < log["defense_acc"].iloc[:stop].min()
    assert log["strength"].iloc[stop] == pytest.approx(0.1 * stop)
    # the model returned is the stop step's: its defense accuracy is the one logged there
    assert (predict(model, x) == y).float().mean().item() == pytest.approx(log["defense_acc"].iloc[stop])
    # an evaluation monitor that says "exposed" from the start changes neither the stop nor the model
    again, watched = fn(badnets_suspect.model, x, y, cfg, 10, probe_x=smoke_data.probe_x, monitor=misleading_monitor)
    assert watched.attrs == log.attrs and _same(model, again)


def test_bad_input_names_what_is_allowed(smoke, smoke_data, badnets_suspect):
    model, x, y = badnets_suspect.model, smoke_data.defense_x, smoke_data.defense_y
    with pytest.raises(ValueError, match="unknown exposure method 'fine_tune'.*cul"):
        exposure_method("fine_tune")
    with pytest.raises(ValueError, match="allowed"):
        exposure_method("awp", lr=0.1)
    for method, knob, bad in (("act_prune", "rate", 1.0), ("bn_prune", "rate", -0.1), ("awp", "eps", 1.5)):
        fn, cfg = exposure_method(method, **{knob: bad})
        with pytest.raises(ValueError, match=rf"{knob} must be a rate in \[0, 1\)"):
            fn(model, x, y, cfg, 10, progress=False)
    fn, cfg = exposure_method("magnitude_prune", sparsity=1.0)
    with pytest.raises(ValueError, match=r"sparsity must be a rate in \[0, 1\)"):
        fn(model, x, y, cfg, 10, progress=False)
    for method in EXPOSURES:
        if method == "cul":
            continue  # CUL's own checks: tests/test_backdoor_and_cul.py
        fn, cfg = exposure_method(method)
        with pytest.raises(ValueError, match="defense set is empty"):
            fn(model, x[:0], y[:0], cfg, 10, progress=False)
    with pytest.raises(ValueError, match=r"defense size must be an int in \[1, 200\]"):
        defense_subset(smoke_data, size=0)
    with pytest.raises(ValueError, match=r"'pruning'.*choose from \['none', 'cul'"):
        em.check_methods(["none", "pruning"])
    with pytest.raises(ValueError, match="choose from"):
        em.check_methods([])
    with pytest.raises(ValueError, match="defense set is empty"):
        clean_unlearn(model, x[:0], y[:0], smoke.cul, 10, progress=False)
    with pytest.raises(ValueError, match="unknown exposure method 'sfft'"):
        method_settings(smoke, "sfft")


def test_defense_subsets_are_nested_and_balanced(smoke_data):
    small, large = defense_subset(smoke_data, size=50), defense_subset(smoke_data, size=100)
    assert torch.equal(large.defense_x[:50], small.defense_x)
    assert torch.bincount(small.defense_y, minlength=10).tolist() == [5] * 10
    without = defense_subset(smoke_data, leave_out=0)
    assert (without.defense_y != 0).all() and len(without.defense_y) == (smoke_data.defense_y != 0).sum()


def test_an_exposure_is_a_cached_unit_and_cul_reuses_the_pipelines(smoke, smoke_run, badnets_suspect):
    settings = {"levels": 2}
    _, first = expose_by(smoke_run, badnets_suspect, "act_prune", settings, eval_size=100)
    _, again = expose_by(smoke_run, badnets_suspect, "act_prune", settings, eval_size=100)
    assert first.attrs["computed"] and not again.attrs["computed"] and first.attrs["key"] == again.attrs["key"]
    assert set(first.attrs["evaluation"]) == {"CA", "ASR", "RA"}  # measured afterwards, on 100 test images
    _, other = expose_by(smoke_run, badnets_suspect, "act_prune", {"levels": 3}, eval_size=100)
    assert other.attrs["key"] != first.attrs["key"]  # every setting is in the key
    assert method_settings(smoke, "awp")["stop_acc"] == smoke.cul.stop_acc  # CUL's stop rule for every method
    _, cul = expose_by(smoke_run, badnets_suspect, "cul", restart=1)  # the profile's CUL: pipeline.expose's unit
    assert cul.attrs["key"] == pl.expose(smoke_run, badnets_suspect, restart=1, monitor_size=0)[1].attrs["key"]


def _log(shares, stop):
    rows = [{"epoch": e, **{f"probe_share_{c}": s for c, s in enumerate(row)}} for e, row in enumerate(shares)]
    log = pd.DataFrame(rows)
    log.attrs.update(stop_epoch=stop, collapsed=stop is not None)
    return log


def test_an_exposed_model_is_read_at_its_stop_step_against_references_exposed_alike():
    uniform, onto_2 = [0.25] * 4, [0.1, 0.1, 0.7, 0.1]
    suspect = [_log([uniform, onto_2, uniform], stop=1)]  # read at the stop step, not the last one
    references = [[_log([uniform, [0.3, 0.3, 0.2, 0.2]], stop=1)]]
    det = detect_exposed(suspect, references, threshold=0.3)
    assert det.flagged and det.label == 2 and det.score == pytest.approx(0.5)
    never = [_log([uniform, onto_2], stop=None)]  # no stop: read at its last step, and never "clean"
    assert detect_exposed(never, references, 0.3).verdict == "not exposed"
    assert detect_exposed(never, references, 0.3, fixed=True).flagged  # a fixed budget has no stop rule
