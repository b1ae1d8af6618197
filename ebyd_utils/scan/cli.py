"""`ebyd-scan` and `python -m ebyd_utils.scan`: the scanner from a shell.

    ebyd-scan model.safetensors --arch fastcnn --activation relu --data cifar10 --out scan-out

Exit codes: 0 clean (no label flagged), 1 suspected (a label flagged), 2 error (bad input: the message says what
to fix), 3 inconclusive (CUL never reached its stop rule: nothing was read, which is not a clean verdict).
"""

from __future__ import annotations

import argparse
import sys

from .core import scan

ERROR = 2


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="ebyd-scan",
        description="Is this model backdoored, on which label, with what trigger? EBYD (Li et al. 2024) on a model "
        "file trained elsewhere. Exit codes: 0 clean, 1 suspected, 2 error, 3 inconclusive. See docs/scan.md.",
    )
    p.add_argument("model", help="a .safetensors file, a PyTorch state dict (.pt/.pth; weights only), or a Hugging "
                   "Face text classifier folder (with --arch hf-text)")  # fmt: skip
    p.add_argument("--arch", default="fastcnn", help="fastcnn, resnet18, resnet18_imagenet, torchvision.<name> "
                   "(e.g. torchvision.vgg16_bn) or hf-text (default: fastcnn)")  # fmt: skip
    p.add_argument("--data", default="cifar10", help="clean data: an ImageFolder (root/<class>/*.jpg), 'cifar10' "
                   "(under --data-dir), 'synthetic', or a CSV/TSV of texts (default: cifar10)")  # fmt: skip
    p.add_argument("--out", default="scan-report", help="output folder (report.json, report.html, report.png)")
    p.add_argument("--n", type=int, default=None, help="clean images to use (default: the profile's defense + probe)")
    p.add_argument("--num-classes", type=int, default=None, help="the model's classes (default: the data's)")
    p.add_argument("--input-size", type=int, default=32, help="image side in pixels (default: 32)")
    p.add_argument("--mean", default=None, help="torchvision models: input mean, 'r,g,b' in [0, 1] (default: ImageNet)")
    p.add_argument("--std", default=None, help="torchvision models: input std, 'r,g,b' (default: ImageNet)")
    p.add_argument("--class-names", default=None, help="the model's class names in label order, comma-separated "
                   "(default: the data's class folders, sorted)")  # fmt: skip
    p.add_argument("--widths", default=None, help="fastcnn block widths, e.g. 32,64,128 (default: read off the file)")
    p.add_argument("--stem-width", type=int, default=None, help="fastcnn whitening channels (default: from the file)")
    p.add_argument("--activation", default="gelu", choices=("gelu", "relu"), help="fastcnn activation (default: gelu)")
    p.add_argument("--cifar-stem", action="store_true", help="torchvision ResNets: 3x3 stride-1 stem, no max-pool")
    p.add_argument("--profile", default="auto", help="auto, smoke, quick or paper: the CUL settings (default: auto)")
    p.add_argument("--references", default="auto", choices=("auto", "train", "none"),
                   help="clean references of our recipe: auto (where they fit, on a CPU), train, none")  # fmt: skip
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: cpu)")
    p.add_argument("--data-dir", default="data", help="where CIFAR-10 lives (for --data cifar10; default: data)")
    p.add_argument("--cache-dir", default="cache", help="the references' cache (default: cache)")
    p.add_argument("--seed", type=int, default=0, help="seeds the draw of clean images and the trigger search")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        report = scan(
            args.model,
            args.arch,
            args.data,
            args.out,
            n=args.n,
            num_classes=args.num_classes,
            input_size=args.input_size,
            mean=args.mean,
            std=args.std,
            class_names=None if args.class_names is None else args.class_names.split(","),
            widths=args.widths,
            stem_width=args.stem_width,
            activation=args.activation,
            cifar_stem=args.cifar_stem,
            profile=args.profile,
            references=args.references,
            device=args.device,
            data_dir=args.data_dir,
            cache_dir=args.cache_dir,
            seed=args.seed,
        )
    except ValueError as err:
        print(f"ebyd-scan: error: {err}", file=sys.stderr)
        return ERROR
    return report["exit_code"]


if __name__ == "__main__":
    sys.exit(main())
