"""The ``tfckpt`` subcommands that change or compare whole checkpoints: edit, average,
migrate, diff, convert. Each calls the public API (tfckpt.edit, tfckpt.tools).

``register(subparsers)`` adds them to the main parser (``tfckpt/cli.py``'s
``build_parser``); each parser's ``func(args, out) -> int`` returns the exit status:
0 ok (``diff``: equal), 1 different (``diff``) or damaged, 2 usage or I/O error.
"""

from __future__ import annotations

import json
import os
import sys
from typing import List, Optional, Sequence, TextIO, Tuple

EXIT_OK, EXIT_DIFFERENT, EXIT_TROUBLE = 0, 1, 2


def _usage_error(message: str) -> Exception:
    from .cli import UsageError  # imported late: cli imports this module

    return UsageError(message)


def _pairs(values: Optional[Sequence[str]], flag: str) -> List[Tuple[str, str]]:
    """``A=B`` arguments split at the first ``=``."""
    out = []
    for v in values or ():
        a, sep, b = v.partition("=")
        if not sep or not a:
            raise _usage_error(f"{flag} takes LEFT=RIGHT, got {v!r}")
        out.append((a, b))
    return out


def _load_npy(path: str, flag: str):
    import numpy as np

    try:
        value = np.load(path, allow_pickle=False)
    except ValueError as e:
        raise _usage_error(f"{flag}: cannot load {path}: {e}") from None
    if not isinstance(value, np.ndarray):  # an .npz archive
        value.close()
        raise _usage_error(f"{flag}: {path} is an .npz archive; give one .npy array")
    return value


def _write_report(report, as_json: bool, out: TextIO) -> None:
    """A tool's report: as JSON, or in words."""
    if as_json:
        json.dump(report.to_json(), out, indent=1)
        out.write("\n")
    else:
        out.write(report.describe() + "\n")


def _err(args) -> TextIO:
    return getattr(args, "err", None) or sys.stderr


# -- edit -------------------------------------------------------------------------------

def cmd_edit(args, out: TextIO) -> int:
    import tfckpt

    from .tools import optimizer_keys

    if not args.output and not args.in_place:
        raise _usage_error("edit: give -o DST, or --in-place to edit SRC itself")
    if args.output and args.in_place:
        raise _usage_error("edit: give either -o DST or --in-place, not both")
    set_values = {k: _load_npy(f, "--set") for k, f in _pairs(args.set, "--set")}
    add_values = {k: _load_npy(f, "--add") for k, f in _pairs(args.add, "--add")}
    rename = dict(_pairs(args.rename, "--rename"))
    rename_regex = _pairs(args.rename_regex, "--rename-regex")
    drop = list(args.drop or [])
    if args.drop_optimizer:
        drop += [k for k in optimizer_keys(args.src) if k not in drop]
    plan = tfckpt.edit(
        args.src, args.output, set=set_values, rename=rename, drop=drop, add=add_values,
        rename_regex=rename_regex, drop_regex=list(args.drop_regex or []),
        allow_dtype_change=args.allow_dtype_change,
        allow_shape_change=args.allow_shape_change, in_place=args.in_place,
        overwrite=args.overwrite, dry_run=args.dry_run)
    if args.json:
        import dataclasses

        doc = dataclasses.asdict(plan)
        doc["dry_run"] = bool(args.dry_run)
        json.dump(doc, out, indent=1)
        out.write("\n")
    else:
        if args.dry_run:
            out.write(f"# dry run: nothing written; {plan.src} -> {plan.dst}\n")
        out.write(plan.describe() + "\n")
    return EXIT_OK


# -- average ----------------------------------------------------------------------------

def cmd_average(args, out: TextIO) -> int:
    from .tools import average

    if len(args.inputs) < 2:
        raise _usage_error("average: give at least two checkpoints")
    prefix = average(args.inputs, args.output, overwrite=args.overwrite)
    out.write(f"{prefix}: mean of {len(args.inputs)} checkpoints (non-float tensors from "
              f"{args.inputs[-1]})\n")
    return EXIT_OK


# -- migrate ----------------------------------------------------------------------------

def cmd_migrate(args, out: TextIO) -> int:
    from .tools import migrate

    name_map = dict(_pairs(args.map, "--map"))
    report = migrate(args.old, args.like, args.output, name_map=name_map, strict=args.strict,
                     fill_from_like=not args.no_fill, dry_run=args.dry_run,
                     overwrite=args.overwrite)
    _write_report(report, args.json, out)
    return EXIT_OK


# -- diff -------------------------------------------------------------------------------

def cmd_diff(args, out: TextIO) -> int:
    """As diff(1): 0 equal, 1 different, 2 trouble (any error, damage included)."""
    from .errors import CheckpointError
    from .tools import diff

    try:
        result = diff(args.a, args.b, rtol=args.rtol, atol=args.atol)
    except (CheckpointError, OSError) as e:
        if isinstance(e, BrokenPipeError):
            raise
        _err(args).write(f"tfckpt: {e}\n")
        return EXIT_TROUBLE
    if args.json or not args.quiet:
        _write_report(result, args.json, out)
    return EXIT_OK if result.equal else EXIT_DIFFERENT


# -- convert ----------------------------------------------------------------------------

_CONVERT_EXTENSIONS = (".npz", ".safetensors")


def cmd_convert(args, out: TextIO) -> int:
    from . import tools

    src, dst = args.src, args.dst
    src_ext = os.path.splitext(src)[1].lower()
    dst_ext = os.path.splitext(dst)[1].lower()
    if args.to == "v2" or (src_ext not in _CONVERT_EXTENSIONS
                           and dst_ext not in _CONVERT_EXTENSIONS and _is_v1(src)):
        if dst_ext in _CONVERT_EXTENSIONS:
            raise _usage_error(f"convert --to v2: DST is a checkpoint prefix, not a "
                               f"{dst_ext} file")
        if args.object_graph or args.compress or args.skip_unsupported:
            raise _usage_error("convert --to v2 takes none of --object-graph, --compress, "
                               "--skip-unsupported")
        report = tools.to_v2(src, dst, overwrite=args.overwrite)
    elif src_ext in _CONVERT_EXTENSIONS and dst_ext in _CONVERT_EXTENSIONS:
        raise _usage_error("convert: one side must be a checkpoint (a prefix), the other a "
                           ".npz or .safetensors file")
    elif src_ext in _CONVERT_EXTENSIONS:
        if not os.path.isfile(src):
            raise _usage_error(f"convert: {src}: no such file")
        fn = tools.from_npz if src_ext == ".npz" else tools.from_safetensors
        report = fn(src, dst, object_graph=args.object_graph,
                    skip_unsupported=args.skip_unsupported, overwrite=args.overwrite)
    elif dst_ext == ".npz":
        report = tools.to_npz(src, dst, object_graph=args.object_graph,
                              skip_unsupported=args.skip_unsupported,
                              compressed=args.compress, overwrite=args.overwrite)
    elif dst_ext == ".safetensors":
        if args.object_graph:
            raise _usage_error("convert: a .safetensors file cannot hold the object graph")
        report = tools.to_safetensors(src, dst, skip_unsupported=args.skip_unsupported,
                                      overwrite=args.overwrite)
    else:
        raise _usage_error("convert: the direction is chosen by extension: SRC or DST must "
                           "end in .npz or .safetensors (or give --to v2, which a format V1 "
                           "SRC implies)")
    _write_report(report, args.json, out)
    return EXIT_OK


def _is_v1(path: str) -> bool:
    """Whether `path` names a format V1 checkpoint."""
    from .errors import CheckpointError
    from .files import locate

    try:
        return locate(path).format == "V1"
    except CheckpointError:
        return False


# -- the parsers ------------------------------------------------------------------------

def register(sub) -> None:
    """Adds edit, average, migrate, diff and convert to `sub` (the result of
    ``parser.add_subparsers(...)``)."""
    e = sub.add_parser(
        "edit", help="set, rename, drop or add tensors; drop optimizer state",
        description="Writes a copy of SRC with tensors set, renamed, dropped or added; "
                    "untouched tensors are copied byte for byte and the object graph is kept "
                    "consistent. Options that take A=B split at the first '='.")
    e.add_argument("src", help="the checkpoint to edit")
    e.add_argument("-o", "--output", metavar="DST", help="where to write the result")
    e.add_argument("--in-place", action="store_true", help="replace SRC (atomically)")
    e.add_argument("--overwrite", action="store_true", help="replace an existing DST")
    e.add_argument("--set", action="append", metavar="KEY=FILE.npy",
                   help="new value of an existing key (dtype and shape kept unless allowed)")
    e.add_argument("--add", action="append", metavar="KEY=FILE.npy", help="a new key")
    e.add_argument("--rename", action="append", metavar="OLD=NEW")
    e.add_argument("--rename-regex", action="append", metavar="PATTERN=REPLACEMENT",
                   help="re.sub(PATTERN, REPLACEMENT, key) on every key")
    e.add_argument("--drop", action="append", metavar="KEY")
    e.add_argument("--drop-regex", action="append", metavar="PATTERN",
                   help="drop every key PATTERN matches (re.search)")
    e.add_argument("--drop-optimizer", action="store_true",
                   help="drop optimizer state: slots and optimizer variables reached only "
                        "through an optimizer (the model's own variables stay)")
    e.add_argument("--allow-dtype-change", action="store_true")
    e.add_argument("--allow-shape-change", action="store_true")
    e.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    e.add_argument("--json", action="store_true", help="the plan as JSON")
    e.set_defaults(func=cmd_edit)

    a = sub.add_parser(
        "average", help="element-wise mean of checkpoints of one model",
        description="Averages float tensors in float64 and casts back; every other tensor "
                    "(integers, strings, the object graph) comes from the LAST checkpoint.")
    a.add_argument("inputs", nargs="+", metavar="CKPT")
    a.add_argument("-o", "--output", required=True, metavar="OUT")
    a.add_argument("--overwrite", action="store_true")
    a.set_defaults(func=cmd_average)

    m = sub.add_parser(
        "migrate", help="rewrite TF1 name-based keys to a TF2 model's object-based keys",
        description="Maps each OLD key to the key of the NEW model's variable of that name "
                    "(the names a checkpoint of the new model records), copies the values "
                    "through, and adds the new model's object graph.")
    m.add_argument("old", help="the name-based (TF1 Saver) checkpoint")
    m.add_argument("--like", required=True, metavar="NEW",
                   help="any object-based checkpoint of the new model")
    m.add_argument("-o", "--output", required=True, metavar="OUT")
    m.add_argument("--map", action="append", metavar="OLD_KEY=NEW_KEY",
                   help="a manual mapping, winning over names")
    m.add_argument("--strict", action="store_true",
                   help="fail unless every key on both sides maps")
    m.add_argument("--no-fill", action="store_true",
                   help="leave out new keys without an old value instead of taking NEW's")
    m.add_argument("--dry-run", action="store_true", help="print the report, write nothing")
    m.add_argument("--overwrite", action="store_true")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_migrate)

    d = sub.add_parser(
        "diff", help="compare two checkpoints key by key",
        description="One line per difference (keys only in A or B, dtype, shape, values), "
                    "then a verdict. Exit 0 equal, 1 different, 2 trouble, as diff(1).")
    d.add_argument("a", metavar="A")
    d.add_argument("b", metavar="B")
    d.add_argument("--rtol", type=float, default=0.0,
                   help="relative tolerance for floats: |a-b| <= atol + rtol*max(|a|,|b|)")
    d.add_argument("--atol", type=float, default=0.0, help="absolute tolerance for floats")
    d.add_argument("--json", action="store_true")
    d.add_argument("-q", "--quiet", action="store_true", help="no output, only the status")
    d.set_defaults(func=cmd_diff)

    c = sub.add_parser(
        "convert", help="checkpoint <-> .npz / .safetensors; format V1 -> V2",
        description="The direction follows the extensions: a checkpoint to OUT.npz or "
                    "OUT.safetensors, or a .npz / .safetensors file to a checkpoint prefix. "
                    "A format V1 checkpoint (a file, or a pattern such as "
                    "'model.ckpt-?????-of-00003') to a V2 prefix: 'convert SRC DST', or "
                    "'--to v2' to say so explicitly. Partitioned tensors keep their slices.")
    c.add_argument("src", metavar="SRC")
    c.add_argument("dst", metavar="DST")
    c.add_argument("--to", choices=["v2"], default=None,
                   help="v2: write SRC (format V1) as a format V2 checkpoint at prefix DST")
    c.add_argument("--object-graph", action="store_true",
                   help="into a checkpoint: names are object paths, build an object graph; "
                        "into .npz: store _CHECKPOINTABLE_OBJECT_GRAPH too")
    c.add_argument("--skip-unsupported", action="store_true",
                   help="skip (and list) tensors the target cannot hold instead of failing")
    c.add_argument("--compress", action="store_true", help="into .npz: deflate the arrays")
    c.add_argument("--overwrite", action="store_true")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_convert)
