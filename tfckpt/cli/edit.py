"""``tfckpt edit``: a copy of a checkpoint with tensors set, renamed, dropped or added
(``tfckpt.edit``); untouched tensors are copied byte for byte."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, TextIO

import tfckpt

from ._common import EXIT_OK, UsageError, byte_progress, pairs, printable, write_json


def register(sub: Any) -> None:
    """Adds ``edit`` to the subcommands (``parser.add_subparsers(...)``)."""
    e = sub.add_parser(
        "edit",
        help="set, rename, drop or add tensors; drop optimizer state",
        description="Writes a copy of SRC with tensors set, renamed, dropped or added; "
        "untouched tensors are copied byte for byte and the object graph is kept "
        "consistent. Options that take A=B split at the first '='.",
    )
    e.add_argument("src", help="the checkpoint to edit")
    e.add_argument("-o", "--output", metavar="DST", help="where to write the result")
    e.add_argument("--in-place", action="store_true", help="replace SRC (atomically)")
    e.add_argument("--overwrite", action="store_true", help="replace an existing DST")
    e.add_argument(
        "--set",
        action="append",
        metavar="KEY=FILE.npy",
        help="new value of an existing key (dtype and shape kept unless allowed)",
    )
    e.add_argument("--add", action="append", metavar="KEY=FILE.npy", help="a new key")
    e.add_argument("--rename", action="append", metavar="OLD=NEW")
    e.add_argument(
        "--rename-regex",
        action="append",
        metavar="PATTERN=REPLACEMENT",
        help="re.sub(PATTERN, REPLACEMENT, key) on every key",
    )
    e.add_argument("--drop", action="append", metavar="KEY")
    e.add_argument(
        "--drop-regex",
        action="append",
        metavar="PATTERN",
        help="drop every key PATTERN matches (re.search)",
    )
    e.add_argument(
        "--drop-optimizer",
        action="store_true",
        help="drop optimizer state: slots and optimizer variables reached only "
        "through an optimizer (the model's own variables stay)",
    )
    e.add_argument(
        "--cast",
        action="store_true",
        help="round a --set value into the stored dtype when the cast is not "
        "exact (a value that does not fit is still refused)",
    )
    e.add_argument("--allow-dtype-change", action="store_true")
    e.add_argument("--allow-shape-change", action="store_true")
    e.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    e.add_argument("--json", action="store_true", help="the plan as JSON")
    e.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO) -> int:
    if not args.output and not args.in_place:
        raise UsageError("edit: give -o DST, or --in-place to edit SRC itself")
    if args.output and args.in_place:
        raise UsageError("edit: give either -o DST or --in-place, not both")
    set_values = {k: _load_npy(f, "--set") for k, f in pairs(args.set, "--set")}
    add_values = {k: _load_npy(f, "--add") for k, f in pairs(args.add, "--add")}
    rename = dict(pairs(args.rename, "--rename"))
    rename_regex = pairs(args.rename_regex, "--rename-regex")
    drop = list(args.drop or [])
    if args.drop_optimizer:
        drop += [k for k in tfckpt.optimizer_keys(args.src) if k not in drop]
    with byte_progress(args, "writing", args.src) as progress:
        plan = tfckpt.edit(
            args.src,
            args.output,
            set=set_values,
            rename=rename,
            drop=drop,
            add=add_values,
            rename_regex=rename_regex,
            drop_regex=list(args.drop_regex or []),
            allow_dtype_change=args.allow_dtype_change,
            allow_shape_change=args.allow_shape_change,
            allow_cast=args.cast,
            in_place=args.in_place,
            overwrite=args.overwrite,
            dry_run=args.dry_run,
            progress=progress.update,
        )
    if args.json:
        doc = dataclasses.asdict(plan)
        doc["dry_run"] = bool(args.dry_run)
        write_json(doc, out)
    else:
        if args.dry_run:
            out.write(f"# dry run: nothing written; {plan.src} -> {plan.dst}\n")
        out.write(printable(plan.describe(), keep_newlines=True) + "\n")
    return EXIT_OK


def _load_npy(path: str, flag: str) -> Any:
    """The one array in an .npy file; a usage error for anything else."""
    import numpy as np

    try:
        value = np.load(path, allow_pickle=False)
    except ValueError as e:
        raise UsageError(f"{flag}: cannot load {path}: {e}") from None
    if not isinstance(value, np.ndarray):  # an .npz archive
        value.close()
        raise UsageError(f"{flag}: {path} is an .npz archive; give one .npy array")
    return value
