"""The one cached unit, the hardware name in its record, and the progress side channel."""

import threading

import pytest
import torch

from ebyd_utils import __version__
from ebyd_utils.core import progress
from ebyd_utils.core.store import cpu_name, hardware_name
from ebyd_utils.core.units import cached_unit, load_unit


def _counting(calls):
    def compute():
        calls.append(1)
        return {"w": torch.arange(4.0)}, {"metric": 0.5}

    return compute


def test_a_unit_is_computed_once_then_loaded_with_its_record(tmp_path):
    calls = []
    first = cached_unit("toy", {"lr": 0.1, "seed": 0}, _counting(calls), tmp_path)
    again = cached_unit("toy", {"seed": 0, "lr": 0.1}, _counting(calls), tmp_path)  # same parameters, any order
    assert len(calls) == 1 and first.computed and not again.computed
    assert torch.equal(again.tensors["w"], torch.arange(4.0)) and again.info == {"metric": 0.5}
    record = again.record
    assert record["params"] == {"lr": 0.1, "seed": 0} and record["kind"] == "toy" and record["key"] == first.key
    assert record["seconds"] > 0 and record["threads"] == torch.get_num_threads()
    assert record["hardware"] == hardware_name("cpu") and record["versions"]["ebyd_utils"] == __version__
    # another parameter is another unit, never the cached one
    other = cached_unit("toy", {"lr": 0.2, "seed": 0}, _counting(calls), tmp_path)
    assert other.computed and other.key != first.key and len(calls) == 2


def test_a_unit_computed_inside_another_is_counted_once_in_the_cost_table(tmp_path):
    # a removal evaluation builds its repair unit inside its own compute (text/experiments/removal.py): the outer
    # record's seconds include the inner's, so summing seconds counted them twice and the cost table's "(other)"
    # row fell to its floor of 0 (09_text at quick: units 1,652 s in a 1,632 s run)
    import time

    from ebyd_utils.core.notebook_times import OTHER, unit_costs

    def inner():
        time.sleep(0.2)
        return {}, {}

    def outer():
        cached_unit("inner", {"i": 0}, inner, tmp_path)
        time.sleep(0.1)
        return {}, {}

    start = time.perf_counter()
    unit = cached_unit("outer", {"o": 0}, outer, tmp_path)
    wall = time.perf_counter() - start + 0.3  # 0.3 s of the run outside any unit
    nested = load_unit("inner", {"i": 0}, tmp_path)
    assert unit.record["seconds"] >= 0.3 and 0.1 <= unit.record["own_seconds"] < 0.2, unit.record
    assert nested.record["own_seconds"] == nested.record["seconds"] >= 0.2  # nothing inside it
    costs = unit_costs([unit.path, nested.path], wall).set_index("kind")["seconds"]
    assert costs.sum() == pytest.approx(wall, abs=0.1) and costs[OTHER] >= 0.25, costs


def test_a_corrupt_or_foreign_unit_file_is_rebuilt(tmp_path):
    calls = []
    unit = cached_unit("toy", {"a": 1}, _counting(calls), tmp_path)
    unit.path.write_bytes(unit.path.read_bytes()[:50])  # a write cut short
    with pytest.warns(UserWarning, match="corrupt"):
        assert cached_unit("toy", {"a": 1}, _counting(calls), tmp_path).computed
    other = cached_unit("toy", {"a": 2}, _counting(calls), tmp_path)
    unit.path.write_bytes(other.path.read_bytes())  # a file holding another unit's record
    with pytest.warns(UserWarning, match="no record"):
        assert load_unit("toy", {"a": 1}, tmp_path) is None
    assert not unit.path.exists() and len(calls) == 3


def test_bad_unit_kind_is_refused(tmp_path):
    with pytest.raises(ValueError, match="plain name"):
        cached_unit("../escape", {}, _counting([]), tmp_path)


def test_a_generic_cpu_name_gets_its_generation_family_and_cores():
    assert (
        cpu_name({"model name": "AMD EPYC", "cpu family": "25", "model": "17"}, cores=2)
        == "AMD EPYC (Zen 4, family 25 model 17, 2 cores)"
    )
    assert cpu_name({"model name": "AMD EPYC", "cpu family": "26", "model": "2"}, cores=2).startswith("AMD EPYC (Zen 5")
    amx = {"model name": "Intel(R) Xeon(R) Processor", "cpu family": "6", "model": "167", "flags": "sse amx_bf16"}
    assert cpu_name(amx, cores=2) == "Intel(R) Xeon(R) Processor (family 6 model 167, AMX, 2 cores)"
    named = "Intel(R) Xeon(R) Platinum 8480+"
    assert cpu_name({"model name": named, "cpu family": "6", "model": "143"}, cores=8) == f"{named} (8 cores)"
    assert hardware_name("cpu").endswith(f"{torch.get_num_threads()} threads)")


def test_progress_lines_reach_a_follower_and_nothing_without_one(tmp_path, monkeypatch):
    monkeypatch.delenv(progress.PROGRESS_ENV, raising=False)
    progress.report("nobody listens")  # no channel: a no-op, no file anywhere
    channel = tmp_path / "progress.log"
    monkeypatch.setenv(progress.PROGRESS_ENV, str(channel))
    seen = []
    with progress.Follower(channel, seen.append):
        progress.report("model 1/3: 0:05 elapsed")
        progress.report("model 2/3")
    assert seen == ["model 1/3: 0:05 elapsed", "model 2/3"]
    assert progress.eta(2, 4, 60.0) == "2/4, 1:00 elapsed, ~1:00 left"


def test_the_follower_waits_for_whole_lines(tmp_path):
    channel, seen, stop = tmp_path / "p.log", [], threading.Event()
    channel.write_text("half a li")
    stop.set()
    progress.follow(channel, seen.append, stop, poll_s=0)
    assert seen == []
