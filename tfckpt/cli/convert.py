"""``tfckpt convert``: a checkpoint to or from ``.npz`` / ``.safetensors``, format V1 to V2,
and Keras 2 weights to a Keras 3 ``.weights.h5`` laid out like a target model (and back)
(``tfckpt.tools``' converters). The file extensions choose the direction."""

from __future__ import annotations

import argparse
import os
from typing import Any, TextIO

import tfckpt
from tfckpt.files import locate

from ._common import (
    EXIT_DIFFERENT,
    EXIT_OK,
    UsageError,
    byte_progress,
    error_stream,
    printable,
    write_report,
)

#: The files a checkpoint converts to and from; anything else is a checkpoint prefix.
_EXTENSIONS = (".npz", ".safetensors")
#: Keras 3 files: weights (``.weights.h5``) and whole models (``.keras``).
_KERAS_EXTENSIONS = (".h5", ".keras")


def register(sub: Any) -> None:
    """Adds ``convert`` to the subcommands (``parser.add_subparsers(...)``)."""
    c = sub.add_parser(
        "convert",
        help="checkpoint <-> .npz / .safetensors; format V1 -> V2",
        description="The direction follows the extensions: a checkpoint to OUT.npz or "
        "OUT.safetensors, or a .npz / .safetensors file to a checkpoint prefix. "
        "A format V1 checkpoint (a file, or a pattern such as "
        "'model.ckpt-?????-of-00003') to a V2 prefix: 'convert SRC DST', or "
        "'--to v2' to say so explicitly. Partitioned tensors keep their slices.",
    )
    c.add_argument("src", metavar="SRC")
    c.add_argument("dst", metavar="DST")
    c.add_argument(
        "--to",
        choices=["v2"],
        default=None,
        help="v2: write SRC (format V1) as a format V2 checkpoint at prefix DST",
    )
    c.add_argument(
        "--object-graph",
        action="store_true",
        help="into a checkpoint: names are object paths, build an object graph; "
        "into .npz: store _CHECKPOINTABLE_OBJECT_GRAPH too",
    )
    c.add_argument(
        "--skip-unsupported",
        action="store_true",
        help="skip (and list) tensors the target cannot hold instead of failing",
    )
    c.add_argument("--compress", action="store_true", help="into .npz: deflate the arrays")
    c.add_argument(
        "--like",
        metavar="TARGET",
        help="Keras: the layout to fill (into .weights.h5: the new model's .keras "
        "or .weights.h5; from one: a checkpoint Keras 2 wrote of the model)",
    )
    c.add_argument(
        "--model",
        metavar="KEYWORD",
        help="Keras: the model's keyword in a tf.train.Checkpoint (found by "
        "itself when one object holds variables)",
    )
    c.add_argument(
        "--dry-run", action="store_true", help="Keras: print the full mapping and write nothing"
    )
    c.add_argument("--overwrite", action="store_true")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO) -> int:
    src, dst = args.src, args.dst
    src_ext = os.path.splitext(src)[1].lower()
    dst_ext = os.path.splitext(dst)[1].lower()
    if args.like is not None or src_ext in _KERAS_EXTENSIONS or dst_ext in _KERAS_EXTENSIONS:
        return _run_keras(args, src_ext, dst_ext, out)
    if args.model is not None or args.dry_run:
        raise UsageError("convert: --model and --dry-run go with --like (Keras weights)")
    if args.to == "v2" or (
        src_ext not in _EXTENSIONS and dst_ext not in _EXTENSIONS and _is_v1(src)
    ):
        if dst_ext in _EXTENSIONS:
            raise UsageError(f"convert --to v2: DST is a checkpoint prefix, not a {dst_ext} file")
        if args.object_graph or args.compress or args.skip_unsupported:
            raise UsageError(
                "convert --to v2 takes none of --object-graph, --compress, --skip-unsupported"
            )
        from tfckpt.tools import to_v2

        with byte_progress(args, "converting", src) as progress:
            report = to_v2(src, dst, overwrite=args.overwrite, progress=progress.update)
    elif src_ext in _EXTENSIONS and dst_ext in _EXTENSIONS:
        raise UsageError(
            "convert: one side must be a checkpoint (a prefix), the other a "
            ".npz or .safetensors file"
        )
    elif src_ext in _EXTENSIONS:
        if not os.path.isfile(src):
            raise UsageError(f"convert: {src}: no such file")
        fn = tfckpt.from_npz if src_ext == ".npz" else tfckpt.from_safetensors
        report = fn(
            src,
            dst,
            object_graph=args.object_graph,
            skip_unsupported=args.skip_unsupported,
            overwrite=args.overwrite,
        )
    elif dst_ext == ".npz":
        with byte_progress(args, "converting", src) as progress:
            report = tfckpt.to_npz(
                src,
                dst,
                object_graph=args.object_graph,
                skip_unsupported=args.skip_unsupported,
                compressed=args.compress,
                overwrite=args.overwrite,
                progress=progress.update,
            )
    elif dst_ext == ".safetensors":
        if args.object_graph:
            raise UsageError("convert: a .safetensors file cannot hold the object graph")
        with byte_progress(args, "converting", src) as progress:
            report = tfckpt.to_safetensors(
                src,
                dst,
                skip_unsupported=args.skip_unsupported,
                overwrite=args.overwrite,
                progress=progress.update,
            )
    else:
        raise UsageError(
            "convert: the direction is chosen by extension: SRC or DST must "
            "end in .npz or .safetensors (or give --to v2, which a format V1 "
            "SRC implies)"
        )
    write_report(report, args.json, out)
    return EXIT_OK


def _run_keras(args: argparse.Namespace, src_ext: str, dst_ext: str, out: TextIO) -> int:
    """Keras 2 weights into a Keras 3 layout, or back; 1 when the layouts do not line up."""
    from tfckpt.tools.keras import LayoutMismatchError

    if args.like is None:
        raise UsageError(
            "convert: a Keras file needs --like: the new model's .keras (into "
            ".weights.h5) or a checkpoint of the model (from .weights.h5)"
        )
    if args.to or args.object_graph or args.compress or args.skip_unsupported:
        raise UsageError(
            "convert --like takes none of --to, --object-graph, --compress, --skip-unsupported"
        )
    if dst_ext == ".h5":
        convert = tfckpt.to_keras
    elif src_ext in _KERAS_EXTENSIONS and dst_ext not in _KERAS_EXTENSIONS:
        convert = tfckpt.from_keras
        if not os.path.isfile(args.src):
            raise UsageError(f"convert: {args.src}: no such file")
    else:
        raise UsageError(
            "convert --like: OUT ends in .weights.h5 (a checkpoint into Keras "
            "3), or SRC is a .weights.h5 / .keras file and OUT a checkpoint prefix"
        )
    if not os.path.isfile(args.like) and convert is tfckpt.to_keras:
        raise UsageError(f"convert: --like {args.like}: no such file")
    try:
        report = convert(
            args.src,
            args.dst,
            args.like,
            model=args.model,
            dry_run=args.dry_run,
            overwrite=args.overwrite,
        )
    except LayoutMismatchError as e:
        error_stream(args).write(f"tfckpt: {printable(str(e), keep_newlines=True)}\n")
        return EXIT_DIFFERENT
    write_report(report, args.json, out)
    return EXIT_OK


def _is_v1(path: str) -> bool:
    """Whether `path` names a format V1 checkpoint."""
    try:
        return locate(path).format == "V1"
    except tfckpt.CheckpointError:
        return False
