"""EBYD in one file: poison, train, expose by Clean Unlearning, read the backdoor's label. No cache, zoo or Ray.

    python examples/ebyd_minimal.py                      # CIFAR-10 from data/ when present, generated data otherwise
    python examples/ebyd_minimal.py --profile smoke      # generated data, about a minute on a laptop CPU

Li et al. 2024, "Expose Before You Defend: Unifying and Enhancing Backdoor Defenses via Exposed Models". The paper's
claim this file walks through (Sec. 3 and 4.1): a backdoored model, after gradient *ascent* on a little clean data,
forgets its clean function but keeps its backdoor, so clean images now drift onto the backdoor's target label; a
defender who reads which label they drift to, against clean models treated the same way, names the target without
ever seeing the trigger.

Each step calls the companion's own routine (`ebyd_utils`), the one the notebooks and tests use, so this file and
the package cannot drift apart: tests/test_examples.py runs it at `smoke` and checks that it names the same label
with the same score as `ebyd_utils.pipeline` on the same seeds. What it leaves out is bookkeeping: the cache, the zoo
of many attacks, restarts and fan-out (notebooks 01-06 add those).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ebyd_utils.attacks import make_attack
from ebyd_utils.config import get_profile
from ebyd_utils.data import load_data
from ebyd_utils.defenses import detect_label, shares_at_stop
from ebyd_utils.expose import clean_unlearn
from ebyd_utils.models import build_model
from ebyd_utils.train import class_shares, evaluate, train_model

REFERENCE_SEED = 1000  # the defender's clean reference models: seeds 1000, 1001, ..., never a suspect's (as the zoo's)


def new_model(profile, num_classes: int, seed: int):
    """The profile's architecture with initial weights fixed by `seed` (part of what a model seed means)."""
    torch.manual_seed(seed)
    t = profile.train
    return build_model(t.model, num_classes, t.widths, t.stem_width, t.activation)


def train(profile, data, attack, seed: int):
    """Step 1 and 2 (the attacker): poison a share of the training images, then train as usual.

    BadNets (Gu et al. 2017): a small patch stamped on `rate` of the training images, their labels set to the
    target. Without an attack this trains the clean reference a defender can make from its own data."""
    x, y = data.train_x, data.train_y
    if attack is not None:
        x, y, _ = attack.poison(x, y, data.num_classes)
    model = new_model(profile, data.num_classes, seed).to(x.device, memory_format=torch.channels_last)
    return train_model(model, x, y, profile.train, seed, progress=False)


def expose(profile, data, model, restart: int = 0):
    """Step 3 (the defender): Clean Unlearning, EBYD's exposure (Sec. 3).

    Gradient ascent on the cross-entropy of ~500 labelled clean images (the defense set), stopped at the first
    epoch whose accuracy on them falls to `stop_acc` (chance-like): the clean function is gone, the backdoor --
    which the clean loss never touched -- is not. The log records, each epoch, which share of the defender's
    unlabelled probe images goes to each class."""
    _, log = clean_unlearn(
        model,
        data.defense_x,
        data.defense_y,
        profile.cul,
        data.num_classes,
        probe_x=data.probe_x,
        seed=restart,
        progress=False,
    )
    return log


def read_label(profile, suspect_logs, reference_logs):
    """Step 4 (the defender): backdoor label detection on the exposed model (Sec. 4.1).

    Per class, the share of probe images the exposed suspect sends there (the smallest over its restarts), minus
    the clean references' share after the same exposure: a clean model drifts too, onto some class of its own,
    so only the excess over clean models counts. The class with the largest excess is the suspected target; it is
    flagged when the excess reaches the profile's threshold."""
    return detect_label(
        [shares_at_stop(log) for log in suspect_logs],
        [[shares_at_stop(log) for log in logs] for logs in reference_logs],
        profile.detection.threshold,
        exposed=all(log.attrs["collapsed"] for log in suspect_logs),
    )


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="quick", help="smoke (generated data), quick (CIFAR-10, one CPU)")
    ap.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[1] / "data"))
    ap.add_argument("--seed", type=int, default=0, help="the suspect's seed (weights, data order, trigger draw)")
    ap.add_argument("--target", type=int, default=0, help="the backdoor's target label (the attacker's choice)")
    args = ap.parse_args(argv)

    profile = get_profile(args.profile)
    # The data: CIFAR-10 (or generated images at `smoke`), split into the attacker's training set, the defender's
    # labelled defense images and unlabelled probe images (held out from training), and the test set.
    data = load_data(profile.data, data_dir=args.data_dir, cache_dir=Path(args.data_dir).parent / "cache")
    print(
        f"{data.name}: {len(data.train_y)} training, {len(data.defense_y)} defense, {len(data.probe_y)} probe, "
        f"{len(data.test_y)} test images"
    )

    attack = make_attack("badnets", target=args.target, seed=args.seed)
    suspect = train(profile, data, attack, args.seed)
    references = [train(profile, data, None, REFERENCE_SEED + i) for i in range(profile.detection.n_reference)]
    # Evaluation only (the defender never sees these): clean accuracy and attack success rate.
    truth = evaluate(suspect, data, attack)
    print(f"suspect: CA {truth['CA']:.3f}, ASR {truth['ASR']:.3f} (BadNets to label {args.target})")

    # Before exposure: the same reading on the models as they are -- the baseline exposure has to beat.
    plain = detect_label(
        class_shares(suspect, data.probe_x, data.num_classes),
        [class_shares(r, data.probe_x, data.num_classes) for r in references],
        profile.detection.threshold,
    )
    restarts = range(profile.detection.restarts)  # a label must hold in every restart, not by one run's chance
    suspect_logs = [expose(profile, data, suspect, r) for r in restarts]
    reference_logs = [[expose(profile, data, reference, r) for r in restarts] for reference in references]
    exposed = read_label(profile, suspect_logs, reference_logs)

    for name, det in (("without exposure", plain), ("after CUL", exposed)):
        print(f"{name:>17}: label {det.label}, excess {det.score:.3f} (threshold {det.threshold}): {det.verdict}")
    print("verdict:", f"backdoor to label {exposed.label}" if exposed.flagged else "no label flagged")
    return {
        "label": exposed.label,
        "score": exposed.score,
        "flagged": exposed.flagged,
        "plain_label": plain.label,
        "plain_score": plain.score,
        "CA": truth["CA"],
        "ASR": truth["ASR"],
    }


if __name__ == "__main__":
    main()
