"""``tfckpt average``: the element-wise mean of checkpoints of one model
(``tfckpt.average``), e.g. the last few of a training run."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

import tfckpt

from ._common import EXIT_OK, UsageError, byte_progress


def register(sub: Any) -> None:
    """Adds ``average`` to the subcommands (``parser.add_subparsers(...)``)."""
    a = sub.add_parser(
        "average",
        help="element-wise mean of checkpoints of one model",
        description="Averages float tensors in float64 and casts back; every other tensor "
        "(integers, strings, the object graph) comes from the LAST checkpoint.",
    )
    a.add_argument("inputs", nargs="+", metavar="CKPT")
    a.add_argument("-o", "--output", required=True, metavar="OUT")
    a.add_argument("--overwrite", action="store_true")
    a.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO) -> int:
    if len(args.inputs) < 2:
        raise UsageError("average: give at least two checkpoints")
    with byte_progress(args, "averaging", args.inputs[-1]) as progress:
        prefix = tfckpt.average(
            args.inputs, args.output, overwrite=args.overwrite, progress=progress.update
        )
    out.write(
        f"{prefix}: mean of {len(args.inputs)} checkpoints (non-float tensors from "
        f"{args.inputs[-1]})\n"
    )
    return EXIT_OK
