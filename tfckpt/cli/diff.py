"""``tfckpt diff``: two checkpoints compared key by key (``tfckpt.diff``); the exit status
is diff(1)'s: 0 equal, 1 different, 2 trouble (any error, damage included)."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

import tfckpt

from ._common import (
    EXIT_DIFFERENT,
    EXIT_OK,
    EXIT_TROUBLE,
    byte_progress,
    error_stream,
    printable,
    write_report,
)


def register(sub: Any) -> None:
    """Adds ``diff`` to the subcommands (``parser.add_subparsers(...)``)."""
    d = sub.add_parser(
        "diff",
        help="compare two checkpoints key by key",
        description="One line per difference (keys only in A or B, dtype, shape, values), "
        "then a verdict. Exit 0 equal, 1 different, 2 trouble, as diff(1).",
    )
    d.add_argument("a", metavar="A")
    d.add_argument("b", metavar="B")
    d.add_argument(
        "--rtol",
        type=float,
        default=0.0,
        help="relative tolerance for floats: |a-b| <= atol + rtol*max(|a|,|b|)",
    )
    d.add_argument("--atol", type=float, default=0.0, help="absolute tolerance for floats")
    d.add_argument("--json", action="store_true")
    d.add_argument("-q", "--quiet", action="store_true", help="no output, only the status")
    d.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO) -> int:
    try:
        with byte_progress(args, "diffing", args.a) as progress:
            result = tfckpt.diff(
                args.a, args.b, rtol=args.rtol, atol=args.atol, progress=progress.update
            )
    except (tfckpt.CheckpointError, OSError) as e:
        if isinstance(e, BrokenPipeError):
            raise
        # Damage is trouble here, not "different": status 2, not the command's usual 1.
        error_stream(args).write(f"tfckpt: {printable(str(e), keep_newlines=True)}\n")
        return EXIT_TROUBLE
    if args.json or not args.quiet:
        write_report(result, args.json, out)
    return EXIT_OK if result.equal else EXIT_DIFFERENT
