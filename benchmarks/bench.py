"""How fast is the companion, next to the way the official code trains? One run, one tidy CSV.

    python benchmarks/bench.py --profile quick --data-dir data          # or: make bench PROFILE=quick
    python benchmarks/bench.py --profile smoke --steps 3 --max-epochs 1  # minutes, generated data
    python benchmarks/bench.py --profile smoke --set cul.epochs=3 ...    # any profile setting overridden

Measures, on the profile's model and recipe:
  a/b) training throughput (img/s) of our loop (`ebyd_utils.train.train_model`: uint8 data resident on the
       device, batch augmentation, bf16, channels_last) and of the reference loop (benchmarks/reference_loop.py:
       PIL images, per-sample torchvision transforms, DataLoader workers, fp32), same number of steps;
  a2)  the step's efficiency: its achieved GFLOP/s (matmul and convolution FLOPs per step, counted) and their
       share of the same machine's matmul peak, measured in this run (benchmarks/step_efficiency.py);
  c)   wall time until test CA first reaches --target-ca (evaluation time excluded from the clock);
  d)   Clean Unlearning of one trained model and label detection on its log, seconds per model;
  e)   each notebook's wall time, as written by the notebook runner to results/notebook_times.csv;
  f)   a zoo build (the first --zoo-models suspect rows of the profile's zoo, each with its CUL restarts) from an
       empty cache, in-process and with --zoo-workers Ray workers: wall time, start-up included;
  g)   trigger recovery of one model: each of the profile's methods (Neural Cleanse over all classes, BTI-DBF)
       on the BadNets suspect, seconds per model at the profile's budget;
  h)   model detection of one model, each detector of notebook 05 on the BadNets suspect: MM-BD timed afresh,
       the others from their parts above (exposure score = the profile's CUL restarts + the reading; the
       unlearning detector = one CUL run; Neural Cleanse = its inversion over all classes);
  i)   backdoor removal of one model: each of the profile's methods (plain, on the BadNets suspect; NC unlearning
       with the trigger NC recovers from it), seconds per model at the profile's budget;
  j)   exposure of one model: each method of expose/ (notebook 07) on the BadNets suspect at the profile's
       settings, seconds per model and the steps it ran to its stop rule.
Writes results/benchmarks.csv (columns benchmark, loop, metric, value, unit, profile, dataset, hardware, date);
rows of other profiles or hardware already in that file are kept.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import math
import time
from pathlib import Path

import pandas as pd
import torch
from reference_loop import PILImages, fp32_accuracy, imagefolder_train, reference_epochs, train_transform
from step_efficiency import matmul_peak, step_flops
from tqdm.auto import tqdm

from ebyd_utils import pipeline
from ebyd_utils.config import get_profile
from ebyd_utils.core.store import hardware_name, write_csv
from ebyd_utils.data import load_data, resolve_cifar_dir
from ebyd_utils.defenses import detect_label, mm_bd, recover_trigger, share_variance, shares_at_stop
from ebyd_utils.defenses.removal import REMOVAL
from ebyd_utils.experiments import removal
from ebyd_utils.experiments.exposure_units import method_settings as exposure_settings
from ebyd_utils.experiments.model_detection import mmbd_settings
from ebyd_utils.experiments.trigger_recovery import method_settings
from ebyd_utils.expose import EXPOSURES, clean_unlearn, exposure_method
from ebyd_utils.train import accuracy, pick_device, train_model
from ebyd_utils.zoo.cli import parse_overrides

COLUMNS = ["benchmark", "loop", "metric", "value", "unit", "profile", "dataset", "hardware", "date"]


def sync(device):
    """CUDA runs asynchronously: wait for queued work before reading the clock."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class TargetReached(Exception):
    pass


def time_ours_to_target(model, x, y, cfg, evaluate, target, device):
    """Run train_model with an on_epoch hook that reads CA (off the clock) and stops at the target.
    Returns (seconds at which CA first reached target or None, epochs run, last CA)."""
    state = {"clock": 0.0, "epoch": 0, "ca": float("nan"), "start": time.perf_counter()}

    def on_epoch(m, epoch):
        sync(device)
        state["clock"] += time.perf_counter() - state["start"]
        state.update(epoch=epoch, ca=evaluate(m))  # not timed
        if state["ca"] >= target:
            raise TargetReached
        state["start"] = time.perf_counter()

    try:
        train_model(model, x, y, cfg, seed=0, desc="ours: to target CA", on_epoch=on_epoch)
    except TargetReached:
        return state["clock"], state["epoch"], state["ca"]
    return None, state["epoch"], state["ca"]


def time_to_target(epochs_iter, evaluate, target, max_epochs, device, desc):
    """Train epoch by epoch until CA >= target; the clock runs only while training.
    Returns (seconds at which CA first reached target or None, epochs run, last CA)."""
    clock, ca, epoch = 0.0, float("nan"), 0
    bar = tqdm(total=max_epochs, desc=desc, leave=False)
    start = time.perf_counter()
    for epoch, model in enumerate(epochs_iter, 1):
        sync(device)
        clock += time.perf_counter() - start
        ca = evaluate(model)  # not timed
        bar.update()
        bar.set_postfix(CA=f"{ca:.3f}", train_s=f"{clock:.0f}")
        if ca >= target:
            epochs_iter.close()  # stops the loop (and its DataLoader workers)
            bar.close()
            return clock, epoch, ca
        start = time.perf_counter()
    bar.close()
    return None, epoch, ca


def zoo_build_times(args, profile) -> dict:
    """Wall time of building the first --zoo-models suspects of the zoo (and their CUL restarts) from an empty
    unit cache: in-process with all threads, then as Ray tasks with --zoo-workers workers (threads split).
    The decoded dataset is shared, so both pay only for the units (and Ray its start-up)."""
    import tempfile

    from ebyd_utils import zoo
    from ebyd_utils.core.fanout import Fanout

    table = zoo.zoo_table(profile)
    table = table[table["role"] == "suspect"].head(args.zoo_models)
    out = {}
    for loop, workers in (("in-process", 0), (f"ray x{args.zoo_workers}", args.zoo_workers)):
        with tempfile.TemporaryDirectory() as tmp:
            data_cache = Path(args.cache_dir, "data").resolve()
            data_cache.mkdir(parents=True, exist_ok=True)
            Path(tmp, "data").symlink_to(data_cache)
            start = time.perf_counter()
            run = pipeline.setup(profile, args.data_dir, args.device, tmp, progress=False)
            report = zoo.build(run, Fanout(workers=workers), table)
            seconds = time.perf_counter() - start
        if not (report["status"] == "done").all():
            raise SystemExit(f"zoo build failed:\n{report[report['status'] != 'done'].to_string()}")
        out[loop] = {
            "seconds": (seconds, "s"),
            "units": (len(report), "units"),
            "units_per_min": (60 * len(report) / seconds, "units/min"),
            "threads_per_unit": (report["threads"].max(), "threads"),
        }
    first, second = out
    out[f"{second}/{first}"] = {"speedup": (out[first]["seconds"][0] / out[second]["seconds"][0], "x")}
    return out


def reference_dataset(args, profile, data):
    transform = train_transform(profile.train)
    if args.reference == "memory":
        return PILImages(data.train_x, data.train_y, transform)
    root, layout = resolve_cifar_dir(args.data_dir)
    if profile.data.dataset != "cifar10" or layout != "imagefolder":
        raise SystemExit("--reference imagefolder needs CIFAR-10 as image files: DATA_DIR/[cifar10-jpg/]train/<class>/")
    return imagefolder_train(root, data, profile.data, transform)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--data-dir", default="data")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", type=int, default=100, help="training steps per loop for the img/s part")
    ap.add_argument(
        "--max-epochs",
        type=int,
        default=None,
        help="epoch budget (and schedule length) of the time-to-CA part; default: the profile's epochs",
    )
    ap.add_argument("--target-ca", type=float, default=0.80)
    ap.add_argument("--skip-time-to-80", action="store_true", help="skip the time-to-CA part (the slow one)")
    ap.add_argument("--skip-cul", action="store_true", help="skip CUL and detection (they need a trained model)")
    ap.add_argument("--skip-recovery", action="store_true", help="skip the trigger-recovery timing")
    ap.add_argument("--skip-detection", action="store_true", help="skip the MM-BD timing")
    ap.add_argument("--skip-removal", action="store_true", help="skip the removal timings")
    ap.add_argument("--skip-exposures", action="store_true", help="skip the exposure-method timings")
    ap.add_argument(
        "--reference",
        choices=("memory", "imagefolder"),
        default="memory",
        help="reference images: 'memory' = uint8 arrays -> PIL per sample, as torchvision's CIFAR10 "
        "(what the official code uses); 'imagefolder' = JPEG files decoded per sample",
    )
    ap.add_argument("--num-workers", type=int, default=2, help="reference DataLoader workers")
    ap.add_argument("--zoo-models", type=int, default=4, help="models of the zoo-build part (0 skips it)")
    ap.add_argument("--zoo-workers", type=int, default=2, help="Ray workers of the zoo-build part")
    ap.add_argument("--cache-dir", default="cache")
    ap.add_argument("--notebook-times", default="results/notebook_times.csv")
    ap.add_argument("--out", default="results/benchmarks.csv")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="override a profile setting, e.g. --set cul.epochs=2 (repeatable; as python -m ebyd_utils.zoo)",
    )
    args = ap.parse_args()
    if args.steps < 2:  # train_model's onecycle schedule divides by (steps - warm-up steps): 1 step fails
        ap.error("--steps must be at least 2")

    profile = get_profile(args.profile, **parse_overrides(args.set))
    cfg = profile.train
    device = pick_device(args.device)
    if device.type == "cpu" and profile.name == "paper":
        print("warning: the paper profile (ResNet-18, 60 epochs) is sized for a GPU; this will take very long")
    data = load_data(profile.data, data_dir=args.data_dir, cache_dir=args.cache_dir, device=device)
    run = pipeline.Run(profile, data, args.cache_dir, progress=True, data_dir=args.data_dir)
    context = {
        "profile": profile.name,
        "dataset": data.name,
        "hardware": hardware_name(device),
        "date": datetime.date.today().isoformat(),
    }
    rows = []

    def add(benchmark, loop, metric, value, unit):
        rows.append(
            {
                "benchmark": benchmark,
                "loop": loop,
                "metric": metric,
                "value": float("nan") if value is None else float(value),
                "unit": unit,
                **context,
            }
        )

    def new_model():
        return pipeline.new_model(profile, data, seed=0)  # the same seeded initialisation for both loops

    ref_data = reference_dataset(args, profile, data)
    print(f"{profile.name} profile, {data.name}, {len(data.train_y)} training images, {context['hardware']}")

    # a/b) throughput: the same random images, the same number of steps, one epoch of each loop. Each clock
    # includes the loop's own start-up (whitening init; the reference's worker start), as a user pays it.
    n = min(args.steps * cfg.batch_size, len(data.train_y))
    steps = math.ceil(n / cfg.batch_size)
    pick = torch.randperm(len(data.train_y), generator=torch.Generator().manual_seed(0))[:n]
    seconds = {}
    sync(device)
    start = time.perf_counter()
    train_model(
        new_model(),
        data.train_x[pick.to(device)],
        data.train_y[pick.to(device)],
        dataclasses.replace(cfg, epochs=1),
        seed=0,
        desc="ours: throughput",
    )
    sync(device)
    seconds["ours"] = time.perf_counter() - start
    subset = torch.utils.data.Subset(ref_data, pick.tolist())
    start = time.perf_counter()
    for _ in reference_epochs(
        new_model(),
        subset,
        cfg,
        0,
        1,
        device,
        args.num_workers,
        whiten_x=data.train_x[pick.to(device)],
        desc="reference: throughput",
    ):
        pass
    sync(device)
    seconds["reference"] = time.perf_counter() - start
    for loop, s in seconds.items():
        add("train_throughput", loop, "images_per_s", n / s, "img/s")
        add("train_throughput", loop, "seconds", s, "s")
        add("train_throughput", loop, "steps", steps, "steps")
    add("train_throughput", "ours/reference", "speedup", seconds["reference"] / seconds["ours"], "x")
    flops = step_flops(
        new_model().to(device, memory_format=torch.channels_last),
        data.train_x[pick[: cfg.batch_size].to(device)],
        data.train_y[pick[: cfg.batch_size].to(device)],
        cfg.bf16,
    )
    peak, dtype = matmul_peak(device)
    achieved = flops * steps / seconds["ours"] / 1e9
    add("step_efficiency", "ours", "gflop_per_step", flops / 1e9, "GFLOP")
    add("step_efficiency", "ours", "achieved_gflops", achieved, "GFLOP/s")
    add("step_efficiency", f"matmul {dtype}", "peak_gflops", peak, "GFLOP/s")
    add("step_efficiency", "ours", "share_of_peak", achieved / peak, "ratio")
    add("step_efficiency", "reference", "achieved_gflops", flops * steps / seconds["reference"] / 1e9, "GFLOP/s")

    # c) time to target CA, each loop with the profile's recipe over --max-epochs (the schedule's length)
    if not args.skip_time_to_80:
        max_epochs = args.max_epochs or cfg.epochs
        recipe = dataclasses.replace(cfg, epochs=max_epochs)
        label = f"seconds_to_CA_{args.target_ca:.2f}"
        runs = {
            "ours": time_ours_to_target(
                new_model(),
                data.train_x,
                data.train_y,
                recipe,
                lambda m: accuracy(m, data.test_x, data.test_y),
                args.target_ca,
                device,
            ),
            "reference": time_to_target(
                reference_epochs(
                    new_model(), ref_data, recipe, 0, max_epochs, device, args.num_workers, whiten_x=data.train_x
                ),
                lambda m: fp32_accuracy(m, data.test_x, data.test_y),
                args.target_ca,
                max_epochs,
                device,
                "reference: to target CA",
            ),
        }
        for loop, (secs, epochs_run, ca) in runs.items():
            add("time_to_ca", loop, label, secs, "s")
            add("time_to_ca", loop, "epochs_run", epochs_run, "epochs")
            add("time_to_ca", loop, "last_CA", ca, "fraction")
            add("time_to_ca", loop, "max_epochs", max_epochs, "epochs")
            if secs is None:
                print(f"{loop}: CA {args.target_ca:.2f} not reached in {epochs_run} epochs (last CA {ca:.3f})")
        if runs["ours"][0] and runs["reference"][0]:
            add("time_to_ca", "ours/reference", "speedup", runs["reference"][0] / runs["ours"][0], "x")

    # d) defender's cost per model: CUL (with its own defense-side logging, no evaluation monitor) on a
    # BadNets model from the pipeline's cache (trained once if absent), then label detection on its log.
    if not args.skip_cul:
        suspect = pipeline.train_suspect(run, "badnets", seed=0)
        sync(device)
        start = time.perf_counter()
        _, log = clean_unlearn(
            suspect.model, data.defense_x, data.defense_y, profile.cul, data.num_classes, probe_x=data.probe_x, seed=0
        )
        sync(device)
        cul_seconds = time.perf_counter() - start
        add("cul", "ours", "seconds_per_model", cul_seconds, "s")
        add("cul", "ours", "epochs", log["epoch"].max(), "epochs")
        start = time.perf_counter()
        detect_label(shares_at_stop(log), None, profile.detection.threshold, exposed=bool(log.attrs["collapsed"]))
        detect_seconds = time.perf_counter() - start
        add("label_detection", "ours", "seconds_per_model", detect_seconds, "s")
        start = time.perf_counter()
        share_variance(shares_at_stop(log))
        add(
            "model_detection",
            "exposure",
            "seconds_per_model",
            profile.detection.restarts * cul_seconds + detect_seconds,
            "s",
        )
        add("model_detection", "unlearning", "seconds_per_model", cul_seconds + time.perf_counter() - start, "s")

    # g) trigger recovery of one model, each method at the profile's budget (not cached: timed afresh)
    if not args.skip_recovery:
        suspect = pipeline.train_suspect(run, "badnets", seed=0)
        for method in profile.recovery.methods:
            sync(device)
            start = time.perf_counter()
            recover_trigger(
                method,
                suspect.model,
                data.defense_x,
                data.defense_y,
                seed=profile.recovery.seed,
                **method_settings(profile, method),
            )
            sync(device)
            add("trigger_recovery", method, "seconds_per_model", time.perf_counter() - start, "s")
            if method == "nc":
                add("model_detection", "nc", "seconds_per_model", time.perf_counter() - start, "s")

    # h) MM-BD on one model (data-free), at the profile's budget
    if not args.skip_detection:
        suspect = pipeline.train_suspect(run, "badnets", seed=0)
        sync(device)
        start = time.perf_counter()
        mm_bd(suspect.model, tuple(data.train_x.shape[1:]), data.num_classes, seed=0, **mmbd_settings(profile))
        sync(device)
        add("model_detection", "mmbd", "seconds_per_model", time.perf_counter() - start, "s")

    # i) backdoor removal of one model, each method on its own (not cached: timed afresh)
    if not args.skip_removal:
        suspect = pipeline.train_suspect(run, "badnets", seed=0)
        nc = recover_trigger(
            "nc",
            suspect.model,
            data.defense_x,
            data.defense_y,
            seed=profile.recovery.seed,
            **method_settings(profile, "nc"),
        )
        label = nc.flagged_label if nc.flagged_label is not None else nc.classes[int(nc.norms.argmin())]
        mask, pattern = nc.trigger(label)
        for method in profile.removal.methods:
            fn, _ = REMOVAL[method]
            extra = {"recovered_mask": mask, "recovered_pattern": pattern} if method == "nc_unlearning" else {}
            sync(device)
            start = time.perf_counter()
            fn(
                suspect.model,
                data.defense_x,
                data.defense_y,
                seed=profile.removal.seed,
                **extra,
                **removal.method_settings(profile, method),
            )
            sync(device)
            add("removal", method, "seconds_per_model", time.perf_counter() - start, "s")

    # j) exposure of one model, each method of expose/ at the profile's settings (not cached: timed afresh)
    if not args.skip_exposures:
        suspect = pipeline.train_suspect(run, "badnets", seed=0)
        for method in EXPOSURES:
            fn, exposure_cfg = exposure_method(method, **exposure_settings(profile, method))
            sync(device)
            start = time.perf_counter()
            _, log = fn(suspect.model, data.defense_x, data.defense_y, exposure_cfg, data.num_classes, data.probe_x)
            sync(device)
            add("exposure", method, "seconds_per_model", time.perf_counter() - start, "s")
            add("exposure", method, "steps", log["epoch"].max(), "steps")

    # f) a zoo slice built from an empty cache, in-process and over Ray workers
    if args.zoo_models:
        for loop, row in zoo_build_times(args, profile).items():
            for metric, (value, unit) in row.items():
                add("zoo_build", loop, metric, value, unit)

    # e) notebook wall times, as the notebook runner recorded them (their own profile and hardware)
    nb_path = Path(args.notebook_times)
    if nb_path.exists():
        # each row's own date (the file's mtime is a checkout's, not the run's); the mtime only for old rows without one
        mtime = datetime.date.fromtimestamp(nb_path.stat().st_mtime).isoformat()
        for r in pd.read_csv(nb_path).itertuples():
            rows.append(
                {
                    "benchmark": "notebook",
                    "loop": r.notebook,
                    "metric": "wall_time",
                    "value": r.seconds,
                    "unit": "s",
                    "profile": r.profile,
                    "dataset": "",
                    "hardware": r.hardware,
                    "date": r.date if isinstance(getattr(r, "date", None), str) else mtime,
                }
            )

    table = pd.DataFrame(rows, columns=COLUMNS)
    print(table[["benchmark", "loop", "metric", "value", "unit", "profile"]].to_string(index=False))
    out = Path(args.out)
    if out.exists():  # replace only what this run measured; notebook rows are re-read each time
        old = pd.read_csv(out)
        measured = set(table["benchmark"]) - {"notebook"}
        same = (
            old["benchmark"].isin(measured)
            & (old["profile"] == profile.name)
            & (old["hardware"] == context["hardware"])
        )
        table = pd.concat([old[~same & (old["benchmark"] != "notebook")], table], ignore_index=True)
    print(f"wrote {write_csv(table[COLUMNS], out)}")


if __name__ == "__main__":
    main()
