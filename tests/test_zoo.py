"""The zoo as data and its fan-out: same units in-process and through Ray, resumable, failures reported."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from ebyd_utils import zoo
from ebyd_utils.config import get_profile
from ebyd_utils.core.fanout import Fanout
from ebyd_utils.pipeline import setup

REPO = Path(__file__).resolve().parents[1]
# one epoch, one attack, one CUL restart, no references: units of a few seconds each
TINY = dict(
    train=dict(epochs=1),
    zoo=dict(attacks=("badnets",), seeds=(0,), one_seed_attacks=(), all_to_all=(), extra_clean=0, drawn=0),
    detection=dict(n_reference=0, restarts=1),
)
TINY_CLI = [
    "--set",
    "train.epochs=1",
    "--set",
    "zoo.attacks=('badnets',)",
    "--set",
    "detection.n_reference=0",
    "--set",
    "detection.restarts=1",
    "--set",
    "zoo.extra_clean=0",
    "--set",
    "zoo.drawn=0",
    "--set",
    "zoo.one_seed_attacks=()",
    "--set",
    "zoo.all_to_all=()",
]


def _unit_files(cache) -> dict:
    return {
        p.relative_to(cache): p.stat().st_mtime_ns
        for kind in ("model", "cul")
        for p in sorted((Path(cache) / kind).glob("*.safetensors"))
    }


def _with_failing_row(profile):
    """The tiny zoo plus a SIG model asking for more target-class images than exist (its poisoning fails)."""
    table = zoo.zoo_table(
        get_profile(
            "smoke",
            **{
                **TINY,
                "zoo": dict(
                    attacks=("badnets", "sig"), seeds=(0,), one_seed_attacks=(), all_to_all=(), extra_clean=0, drawn=0
                ),
            },
        )
    )
    sig = table["attack"] == "sig"
    params = {**json.loads(table.loc[sig, "attack_params"].item()), "rate": 0.5}
    table.loc[sig, ["rate", "attack_params"]] = [0.5, json.dumps(params, sort_keys=True)]
    return table


def test_the_zoo_table_names_every_model_and_rebuilds_its_attacks():
    profile = get_profile("quick")
    table = zoo.zoo_table(profile)
    n_suspects = (
        len(profile.zoo.seeds) * (len(profile.zoo.attacks) + 1)
        + len(profile.zoo.one_seed_attacks)
        + len(profile.zoo.all_to_all)
    )
    n_drawn = profile.zoo.extra_clean + profile.zoo.drawn
    assert len(table) == n_suspects + n_drawn + profile.detection.n_reference and table["model_id"].is_unique
    assert set(table["role"]) == {"suspect", "drawn", "reference"} and (table["architecture"] == "fastcnn").all()
    for row in table.to_dict("records"):
        attack = zoo.attack_of(row)
        if row["attack"] == "clean":
            assert attack is None and row["attack_params"] == ""
        else:  # the row alone rebuilds the attack (a drawn BadNets pattern included), so the cache key is the same
            assert json.dumps(attack.params(), sort_keys=True) == row["attack_params"]
            assert attack.seed == row["seed"] and attack.label == row["attack"]
            assert attack.single_target == (None if pd.isna(row["target"]) else row["target"])
            if row["role"] == "suspect":
                assert attack.target == profile.zoo.target
    drawn = table[table["role"] == "drawn"]
    assert (drawn["attack"] == "clean").sum() == profile.zoo.extra_clean
    assert (drawn["seed"] >= zoo.DRAWN_SEED_OFFSET).all() and drawn["seed"].is_unique
    references = table[table["role"] == "reference"]
    assert (references["attack"] == "clean").all() and (references["seed"] >= zoo.REFERENCE_SEED_OFFSET).all()


def test_drawn_models_vary_trigger_target_and_rate_and_a_larger_zoo_keeps_them():
    small = zoo.zoo_table(get_profile("quick", zoo=dict(extra_clean=1, drawn=8)))
    large = zoo.zoo_table(get_profile("quick", zoo=dict(extra_clean=1, drawn=12)))
    backdoored = small[(small["role"] == "drawn") & (small["attack"] != "clean")]
    assert backdoored["target"].nunique() > 1 and backdoored["rate"].nunique() == len(backdoored)
    low, high = get_profile("quick").zoo.rate_range
    dirty = backdoored[backdoored["attack"] != "sig"]
    assert dirty["rate"].between(low, high).all()
    assert backdoored[backdoored["attack"] == "sig"]["rate"].between(low / 3, high / 3).all()
    badnets = [json.loads(p) for p in backdoored[backdoored["attack"] == "badnets"]["attack_params"]]
    assert len({tuple(p["position"]) for p in badnets}) == len(badnets)
    assert set(small["model_id"]) <= set(large["model_id"])  # model i keeps its seed and draw
    assert set(small["attack_params"]) <= set(large["attack_params"])


@pytest.mark.parametrize(
    "zoo_change, message",
    [
        ({"attacks": ("badnets", "wanet-typo")}, "badnets"),
        ({"rate": 1.5}, "rate"),
        ({"target": -1}, "target"),
        ({"target": 10}, "target"),
        ({"rate_range": (0.2, 0.1)}, "rate_range"),
        ({"rate_range": (0.0, 0.1)}, "rate_range"),
        ({"drawn": -1}, "drawn"),
        ({"all_to_all": ("sig",)}, "clean-label"),
        ({"all_to_all": ("nope",)}, "badnets"),
        ({"one_seed_attacks": ("badnets",)}, "both"),
        ({"attack_params": {"nope": {}}}, "attack_params"),
        ({"drawn_attacks": ("wanet",)}, "draw rule"),
        ({"attack_params": {"badnets": {"size": 0}}}, "size"),
    ],
)
def test_a_bad_zoo_spec_says_what_is_allowed(zoo_change, message):
    with pytest.raises(ValueError, match=message):
        zoo.zoo_table(get_profile("smoke", zoo=zoo_change))


def test_one_seed_attacks_all_to_all_and_per_attack_settings_make_their_rows():
    profile = get_profile(
        "smoke",
        zoo=dict(
            attacks=("badnets",),
            seeds=(0, 1),
            one_seed_attacks=("blend",),
            all_to_all=("badnets", "blend"),
            extra_clean=0,
            drawn=0,
            attack_params={"badnets": {"size": 4}},
        ),
    )
    table = zoo.zoo_table(profile).set_index("model_id")
    suspects = table[table["role"] == "suspect"]
    assert list(suspects.index) == [
        "clean-s0",
        "badnets-s0",
        "blend-s0",
        "badnets-all2all-s0",
        "blend-all2all-s0",
        "clean-s1",
        "badnets-s1",
    ]
    a2a = zoo.attack_of(table.loc["badnets-all2all-s0"].to_dict())
    assert a2a.all_to_all and a2a.single_target is None and pd.isna(table.loc["badnets-all2all-s0", "target"])
    assert zoo.attack_of(table.loc["badnets-s1"].to_dict()).size == 4  # the per-attack setting, every row
    assert json.loads(table.loc["badnets-s0", "attack_params"]).get("all_to_all") is None  # all-to-one keys kept


def test_fanout_arguments_are_checked():
    from ebyd_utils.core.fanout import Fanout, run_tasks

    with pytest.raises(ValueError, match="workers"):
        run_tasks(zoo.run_task, {}, [], Fanout(workers=-1))
    with pytest.raises(ValueError, match="unknown"):
        run_tasks(zoo.run_task, {}, [{"id": "a", "after": "b"}])


@pytest.mark.slow
def test_ray_and_in_process_builds_give_the_same_units_and_report_the_failing_one(tmp_path):
    pytest.importorskip("ray")
    profile = get_profile("smoke", **TINY)
    table = _with_failing_row(profile)
    reports = {
        how: zoo.build(
            setup(profile, None, "cpu", tmp_path / how, progress=False), Fanout(workers=workers, threads=1), table
        )
        for how, workers in (("here", 0), ("ray", 2))
    }
    for report in reports.values():
        status = report.set_index("id")["status"]
        assert status["model:sig-s0"] == "failed" and status["cul:sig-s0:0"] == "skipped"
        failed = report.set_index("id").loc["model:sig-s0"]
        assert "lower the rate" in failed["error"] and '"rate": 0.5' in failed["attack_params"]
        others = report[~report["id"].str.contains("sig")]
        assert (others["status"] == "done").all() and others["computed"].all()
    here, there = _unit_files(tmp_path / "here"), _unit_files(tmp_path / "ray")
    assert sorted(here) == sorted(there) and len(here) == 4  # same keys: 2 models + 2 CUL runs
    for name in here:
        a, b = load_file(tmp_path / "here" / name), load_file(tmp_path / "ray" / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), f"{name} differs"


@pytest.mark.slow
def test_a_build_killed_halfway_resumes_without_recomputing_finished_units(tmp_path):
    cache = tmp_path / "cache"
    command = [
        sys.executable,
        "-m",
        "ebyd_utils.zoo",
        "--profile",
        "smoke",
        *TINY_CLI,
        "--set",
        "zoo.seeds=(0, 1)",
        "--cache-dir",
        str(cache),
        "--results-dir",
        str(tmp_path),
        "--threads",
        "1",
        "--device",
        "cpu",
    ]
    first = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while len(_unit_files(cache)) < 3 and first.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    os.kill(first.pid, signal.SIGKILL)  # no clean-up: as a power cut would
    first.wait()
    finished = _unit_files(cache)
    assert 3 <= len(finished) < 8, "the build should have been killed halfway"
    subprocess.run(
        command + ["--report", str(tmp_path / "report.csv")], cwd=REPO, check=True, capture_output=True, text=True
    )
    import pandas as pd

    report = pd.read_csv(tmp_path / "report.csv")
    assert len(report) == 8 and (report["status"] == "done").all()
    assert report["computed"].sum() == 8 - len(finished)  # only the missing units were computed
    after = _unit_files(cache)
    assert len(after) == 8 and all(after[name] == mtime for name, mtime in finished.items())  # untouched
    assert not list(cache.rglob("*.tmp"))  # no half-written file stays behind


def test_without_workers_ray_is_never_imported(tmp_path):
    code = (
        "import sys; from ebyd_utils import zoo, run_notebooks; from ebyd_utils.config import get_profile\n"
        "from ebyd_utils.pipeline import setup\n"
        f"p = get_profile('smoke', **{TINY!r})\n"
        "t = zoo.zoo_table(p).query(\"attack == 'clean'\")\n"
        f"r = zoo.build(setup(p, None, 'cpu', {str(tmp_path)!r}, progress=False), table=t)\n"
        "assert (r['status'] == 'done').all(), r\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, capture_output=True, text=True)


def test_make_figures_shows_unit_progress_in_the_terminal_not_in_the_notebook(tmp_path, capfd):
    from ebyd_utils import run_notebooks

    (tmp_path / "notebooks").mkdir()
    nb = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}}
    )
    nb.cells = [
        nbformat.v4.new_code_cell('PROFILE = "quick"', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            "from ebyd_utils.core.progress import report\nreport('model 1/1: done')\nprint('a cell output')"
        ),
    ]
    nbformat.write(nb, tmp_path / "notebooks" / "00_probe.ipynb")
    assert run_notebooks.main(["--profile", "smoke", "--root", str(tmp_path), "--device", "cpu", "--no-prebuild"]) == 0
    out, err = capfd.readouterr()
    assert "00_probe: model 1/1: done" in out + err  # the unit line reached the terminal
    assert "without encryption" not in out + err  # kernels talk over IPC, not TCP
    executed = (tmp_path / "results" / "smoke" / "executed" / "00_probe.ipynb").read_text()  # smoke: its own folder
    assert "a cell output" in executed and "model 1/1" not in executed.replace("report('model 1/1: done')", "")


def test_a_notebook_variant_runs_again_with_its_own_parameters(tmp_path, monkeypatch):
    from ebyd_utils import run_notebooks

    (tmp_path / "notebooks").mkdir()
    nb = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}}
    )
    nb.cells = [
        nbformat.v4.new_code_cell('PROFILE = "quick"\nDATASET = ""', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("print(f'dataset={DATASET or \"default\"}')"),
    ]
    nbformat.write(nb, tmp_path / "notebooks" / "00_probe.ipynb")
    monkeypatch.setattr(run_notebooks, "NOTEBOOK_VARIANTS", {("00_probe", "smoke"): (("other", {"DATASET": "x"}),)})
    args = ["--profile", "smoke", "--root", str(tmp_path), "--device", "cpu", "--no-prebuild"]
    assert run_notebooks.main(args) == 0
    executed = tmp_path / "results" / "smoke" / "executed"  # a smoke run writes under results/smoke/
    assert "dataset=default" in (executed / "00_probe.ipynb").read_text()
    assert "dataset=x" in (executed / "00_probe_other.ipynb").read_text()
    times = pd.read_csv(tmp_path / "results" / "smoke" / "notebook_times.csv")
    assert set(times["notebook"]) == {"00_probe.ipynb", "00_probe_other.ipynb"}
    for copy in executed.iterdir():
        copy.unlink()
    assert run_notebooks.main([*args, "--no-variants"]) == 0
    assert [c.name for c in executed.iterdir()] == ["00_probe.ipynb"]
    (executed / "00_probe.ipynb").unlink()
    assert run_notebooks.main([*args, "--only", "00_probe_other"]) == 0  # the variant alone, by its name
    assert [c.name for c in executed.iterdir()] == ["00_probe_other.ipynb"]


def test_make_figures_records_each_notebooks_cost_by_unit_kind(tmp_path):
    # results/figures_cost.csv: per notebook, the units it computed by kind with their recorded seconds, and the rest
    # of its wall time as "(other)"; a second run from the warm cache replaces the notebook's rows
    from ebyd_utils import run_notebooks
    from ebyd_utils.core.notebook_times import OTHER

    (tmp_path / "notebooks").mkdir()
    nb = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}}
    )
    work = (
        "import time, torch\nfrom ebyd_utils.core.units import cached_unit\n"
        "def work():\n    time.sleep(0.5)\n    return {'x': torch.zeros(1)}, {}\n"
        "for i in range(2):\n    cached_unit('probe', {'i': i}, work, CACHE_DIR)"
    )
    nb.cells = [
        nbformat.v4.new_code_cell('PROFILE = "quick"\nCACHE_DIR = "../cache"', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(work),
    ]
    nbformat.write(nb, tmp_path / "notebooks" / "00_probe.ipynb")
    args = ["--profile", "smoke", "--root", str(tmp_path), "--device", "cpu", "--no-prebuild"]
    results = tmp_path / "results" / "smoke"
    assert run_notebooks.main(args) == 0
    costs = pd.read_csv(results / "figures_cost.csv").set_index("kind")
    wall = pd.read_csv(results / "notebook_times.csv").set_index("notebook").loc["00_probe.ipynb", "seconds"]
    assert costs.loc["probe", "units"] == 2 and costs.loc["probe", "seconds"] >= 1.0  # two units of 0.5 s
    assert costs.loc[OTHER, "seconds"] > 0 and costs["seconds"].sum() == pytest.approx(wall, abs=0.2)
    assert set(costs["notebook"]) == {"00_probe.ipynb"} and set(costs["profile"]) == {"smoke"}
    assert run_notebooks.main(args) == 0  # warm: nothing computed, the notebook's rows replaced
    again = pd.read_csv(results / "figures_cost.csv")
    assert again["kind"].tolist() == [OTHER] and again["units"].tolist() == [0]


@pytest.mark.parametrize("name", sorted(__import__("ebyd_utils.config", fromlist=["PROFILES"]).PROFILES))
def test_every_profiles_committed_zoo_table_is_what_its_profile_builds(name, tmp_path):
    # results/zoo_<profile>.csv is what a reader opens to see which models a profile trains: it must not drift
    profile = get_profile(name)
    written = zoo.write_table(zoo.zoo_table(profile), profile, tmp_path)
    assert Path(written).read_text() == (REPO / "results" / f"zoo_{name}.csv").read_text()
