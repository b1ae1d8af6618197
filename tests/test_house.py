"""The house keeps its promises: moving code changes no cache key, the one-file example agrees with the package,
the defender's side imports nothing of the attacker's (images and text)."""

import ast
import importlib.util
import json
from pathlib import Path

import pytest

from ebyd_utils import pipeline as pl
from ebyd_utils import zoo
from ebyd_utils.defenses import detect_label, shares_at_stop

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "ebyd_utils"


def test_the_smoke_zoos_unit_keys_are_the_committed_ones(smoke_run, every_attack_table):
    # tests/data/smoke_zoo_keys.json holds the keys every model and CUL unit of the smoke zoo is stored under, every
    # image attack included (the profile's zoo lists a part of them). A move of code must leave them as they are (a
    # cache built before it is still read); a change that means to change what a unit is (new parameters in a key)
    # rewrites the file in the same commit, saying why.
    committed = json.loads((REPO / "tests" / "data" / "smoke_zoo_keys.json").read_text())
    assert zoo.unit_keys(smoke_run, every_attack_table) == committed
    own = zoo.unit_keys(smoke_run)
    assert own == {task: key for task, key in committed.items() if task in own}


def test_unit_keys_are_the_keys_the_units_are_stored_under(smoke_run, badnets_suspect):
    keys = zoo.unit_keys(smoke_run)
    assert keys["model:badnets-s0"] == badnets_suspect.key
    _, log = pl.expose(smoke_run, badnets_suspect, restart=1, monitor_size=0)
    assert keys["cul:badnets-s0:1"] == log.attrs["key"]


def _imports(path: Path) -> list[str]:
    """Every module a file imports, relative imports resolved against the package (ebyd_utils.x.y)."""
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            out += [module] + [f"{module}.{a.name}" for a in node.names]
    return out


@pytest.mark.parametrize("side", ["defenses", "expose", "text/defenses"])
def test_the_defenders_side_never_imports_the_attackers(side):
    files = sorted((PACKAGE / side).rglob("*.py"))
    assert files
    for path in files:
        attacker = [m for m in _imports(path) if m.startswith(("ebyd_utils.attacks", "ebyd_utils.text.attacks"))]
        evaluation = [m for m in _imports(path) if m.startswith(("ebyd_utils.experiments", "ebyd_utils.zoo"))]
        assert not attacker and not evaluation, f"{path.relative_to(REPO)} imports {attacker + evaluation}"


def test_the_core_imports_nothing_above_it():
    for path in sorted((PACKAGE / "core").rglob("*.py")):
        # the package's version string (recorded in every unit) is the one name it may read from the package root
        imported = [m for m in _imports(path) if m != "ebyd_utils.__version__"]
        above = [m for m in imported if m.startswith("ebyd_utils.") and not m.startswith("ebyd_utils.core")]
        assert not above, f"{path.relative_to(REPO)} imports {above}"


def test_no_package_file_passes_300_lines():
    long = {str(p.relative_to(REPO)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 320}
    assert not long, f"split these by section or task: {long}"


def _example():
    spec = importlib.util.spec_from_file_location("ebyd_minimal", REPO / "examples" / "ebyd_minimal.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_the_one_file_example_names_the_packages_label_with_the_packages_score(
    smoke, smoke_run, badnets_suspect, references, capsys
):
    result = _example().main(["--profile", "smoke", "--seed", "0"])
    assert "verdict:" in capsys.readouterr().out
    refs, ref_logs = references
    logs = pl.expose_restarts(smoke_run, badnets_suspect)
    package = detect_label(
        [shares_at_stop(log) for log in logs],
        [[shares_at_stop(g) for g in r] for r in ref_logs],
        smoke.detection.threshold,
        exposed=all(log.attrs["collapsed"] for log in logs),
    )
    assert result["label"] == package.label and result["score"] == package.score
    assert result["flagged"] == package.flagged
    assert result["ASR"] == badnets_suspect.record["ASR"] and result["CA"] == badnets_suspect.record["CA"]
