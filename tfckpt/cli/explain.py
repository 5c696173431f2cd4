"""``tfckpt explain``: what restoring a checkpoint into a new model does, before running it
(``tfckpt.explain_restore``): which values land where, which variables silently keep their
initial values and where the two object graphs part. Exit 0 when every variable of the new
model gets a value it accepts, 1 when not, 2 on usage or I/O error (damage included)."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

import tfckpt

from ._common import EXIT_DIFFERENT, EXIT_OK, EXIT_TROUBLE, error_stream, printable, write_json

#: "Some variables would keep their initial values": diff's "different".
EXIT_NOT_OK = EXIT_DIFFERENT


def register(sub: Any) -> None:
    """Adds ``explain`` to the subcommands (``parser.add_subparsers(...)``)."""
    e = sub.add_parser(
        "explain",
        help="explain a restore before running it",
        description="Matches the checkpoint's object graph to the new model's as "
        "tf.train.Checkpoint.restore() does (TF1 graphs and name-based "
        "checkpoints by variable name) and says which value each variable "
        "receives, which keep their initial values and why, which values go "
        "unused, and which do not fit. Exit 0 ok, 1 not ok, 2 trouble.",
    )
    e.add_argument("checkpoint", metavar="CKPT", help="the checkpoint to restore")
    e.add_argument(
        "--against",
        required=True,
        metavar="EXPECTED",
        help="the new model: a checkpoint it wrote, a SavedModel directory, a TF1 "
        '.meta file, or a JSON file {key: {"dtype": name, "shape": [...]}}',
    )
    e.add_argument(
        "--read",
        action="store_true",
        help="explain Checkpoint.read(), which does not create save_counter",
    )
    e.add_argument(
        "--fix",
        metavar="OUT",
        help="write a copy of CKPT with the suggested renames to OUT; the exit "
        "status then says whether OUT restores",
    )
    e.add_argument("--overwrite", action="store_true", help="let --fix replace OUT")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO) -> int:
    try:
        report = tfckpt.explain_restore(args.checkpoint, args.against, save_counter=not args.read)
        fixed = None
        if args.fix:
            report.fix(args.fix, overwrite=args.overwrite)
            fixed = tfckpt.explain_restore(args.fix, args.against, save_counter=not args.read)
    except (tfckpt.CheckpointError, OSError) as e:
        if isinstance(e, BrokenPipeError):
            raise
        # Damage is trouble here, not "not ok": status 2, not the command's usual 1.
        error_stream(args).write(f"tfckpt: {printable(str(e), keep_newlines=True)}\n")
        return EXIT_TROUBLE
    if args.json:
        doc = report.to_dict()
        if fixed is not None:
            doc = {
                "report": doc,
                "fix": {"out": args.fix, "renames": dict(report.renames)},
                "after": fixed.to_dict(),
            }
        write_json(doc, out)
    else:
        out.write(printable(report.describe(), keep_newlines=True) + "\n")
        if fixed is not None:
            out.write(
                f"fix: wrote {args.fix} with {len(report.renames)} renames\n"
                f"after the fix: {fixed.verdict()}\n"
            )
    final = fixed if fixed is not None else report
    return EXIT_OK if final.ok else EXIT_NOT_OK
