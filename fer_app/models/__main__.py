"""``python -m fer_app.models``: print every architecture's layers, output shapes,
parameter count and FLOPs per 48x48 image."""
from __future__ import annotations

import argparse
import sys

from ..cli import error_boundary
from . import ARCHITECTURES, DEFAULT_ARCH, INPUT_SHAPE, build_model
from .summary import format_table, summarize


@error_boundary
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fer_app.models", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"architectures to show: {', '.join(ARCHITECTURES)} (default: all)")
    parser.add_argument("--classes", type=int, default=None,
                        help="number of classes (default: 6 for seed002, else 7)")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in ARCHITECTURES]
    if unknown:
        parser.error(f"unknown architecture {unknown[0]!r}; choose from {', '.join(ARCHITECTURES)}")
    if args.classes is not None and args.classes < 1:
        parser.error(f"--classes must be at least 1, got {args.classes}")
    for name in args.names or list(ARCHITECTURES):
        classes = args.classes or (6 if name == "seed002" else 7)
        default = " (default)" if name == DEFAULT_ARCH else ""
        print(f"== {name}{default}: {classes} classes, input {INPUT_SHAPE}")
        print(format_table(summarize(build_model(name, classes), INPUT_SHAPE)))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
