"""Command line: ``python -m sklearn_ssse demo``.

Every option is checked by argparse before any work starts (its type functions below), so
that a mistyped value ends in one line naming the option, not in a traceback after the
fits; the checks that need the data (``--label``, ``--max-frequency``) run right after it
is loaded, before the first fit.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

DESCRIPTION = """\
The main job of sklearn_ssse on the bundled Mulan yeast data (or --data FILE):

1. fit a multi-label L2 logistic model, erase part of one rare label's positive
   samples with forget(), refit without them, and print how close each erasure
   is to the refit and how much faster it is;
2. the SSSE paper's Figure-1 protocol: for every label of frequency <=
   --max-frequency and every removal rate in --rates, the similarity ratio and
   the parameter distance to the refit over a grid of the step scale eps; a
   table, OUTPUT/figure1.json and OUTPUT/figure1.png (with matplotlib).

About 10 s on two cores for yeast."""


def _number(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"takes a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite, got {text!r}")
    return value


def positive_float(text):
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0 (inverse regularization), got {text}")
    return value


def open_unit_interval(text):
    """A share strictly between 0 and 1 (``--fraction``, ``--rates``)."""
    value = _number(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(
            f"must be a share strictly between 0 and 1 (0.2 = 20%), got {text}"
        )
    return value


def frequency(text):
    value = _number(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1] (0.2 = 20%), got {text}")
    return value


def non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"takes a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def existing_file(text):
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"not a file: {text}")
    if not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(f"cannot read {text}")
    return text


def output_folder(text):
    """A folder that exists, or can be created, and can be written to."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} exists and is not a folder")
    parent = path
    while not parent.exists():  # the nearest existing ancestor is where mkdir starts
        parent = parent.parent
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"cannot create {text}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot write to {parent}")
    return text


def build_parser():
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="python -m sklearn_ssse",
        description="Erase training samples from fitted scikit-learn linear models (SSSE).",
    )
    parser.add_argument("--version", action="version", version=f"sklearn_ssse {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="fit on a Mulan multi-label set (bundled yeast by default), erase samples of a "
        "rare label, compare with a refit; the SSSE paper's Figure 1",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument(
        "--data",
        type=existing_file,
        default=None,
        metavar="FILE",
        help="a Mulan ARFF file (the XML label file beside it); default: the bundled yeast",
    )
    demo.add_argument(
        "--C",
        type=positive_float,
        default=1.0,
        help="inverse L2 regularization strength, > 0 (default: %(default)s)",
    )
    demo.add_argument(
        "--label",
        type=non_negative_int,
        default=None,
        help="index of the label whose samples are erased in step 1 (default: the rarest "
        "label with at least 50 positive samples)",
    )
    demo.add_argument(
        "--fraction",
        type=open_unit_interval,
        default=0.2,
        help="share of that label's positive samples erased in step 1, in (0, 1) "
        "(default: %(default)s)",
    )
    demo.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        help="random seed of the removed samples (default: %(default)s)",
    )
    demo.add_argument(
        "--output",
        type=output_folder,
        default="ssse_output",
        metavar="FOLDER",
        help="folder for figure1.json and figure1.png, created if needed (default: %(default)s)",
    )
    demo.add_argument(
        "--rates",
        type=open_unit_interval,
        nargs="+",
        default=[0.05, 0.2, 0.5],
        metavar="RATE",
        help="removal rates of the Figure-1 study, each in (0, 1) "
        "(default: 0.05 0.2 0.5, as in the paper)",
    )
    demo.add_argument(
        "--max-frequency",
        type=frequency,
        default=0.2,
        help="labels at most this frequent enter the Figure-1 study, in (0, 1] "
        "(default: %(default)s, as in the paper)",
    )
    demo.add_argument("--no-progress", action="store_true", help="hide the progress line")
    parser.demo_parser = demo  # for the checks that span options (main)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        if len(set(args.rates)) != len(args.rates):
            parser.demo_parser.error(f"argument --rates: give each rate once, got {args.rates}")
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
