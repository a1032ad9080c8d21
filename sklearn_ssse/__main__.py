"""Command line: ``python -m sklearn_ssse demo``."""

from __future__ import annotations

import argparse
import sys


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m sklearn_ssse",
        description="Erase training samples from fitted scikit-learn linear models (SSSE).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="fit on a Mulan multi-label set (bundled yeast by default), erase samples of a "
        "rare label, compare with a refit",
    )
    demo.add_argument("--data", default=None, help="a Mulan ARFF file (default: bundled yeast)")
    demo.add_argument("--C", type=float, default=1.0, help="inverse regularization strength")
    demo.add_argument("--label", type=int, default=None, help="label to erase samples of")
    demo.add_argument("--fraction", type=float, default=0.2, help="share of its samples erased")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument(
        "--output", default="ssse_output", help="folder for figure1.json and figure1.png"
    )
    demo.add_argument(
        "--rates",
        type=float,
        nargs="+",
        default=[0.05, 0.2, 0.5],
        help="removal rates of the Figure-1 study",
    )
    demo.add_argument(
        "--max-frequency",
        type=float,
        default=0.2,
        help="labels at most this frequent enter the Figure-1 study (paper: 0.2)",
    )
    demo.add_argument("--no-progress", action="store_true", help="hide the progress line")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from ._demo import run_demo

        try:
            run_demo(
                data=args.data,
                C=args.C,
                output=args.output,
                rates=args.rates,
                progress=False if args.no_progress else None,
                label=args.label,
                fraction=args.fraction,
                random_state=args.seed,
                max_frequency=args.max_frequency,
            )
        except (ValueError, OSError) as error:
            print(f"python -m sklearn_ssse demo: error: {error}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
