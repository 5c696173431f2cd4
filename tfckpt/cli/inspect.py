"""``tfckpt inspect``: a drop-in for TensorFlow's ``inspect_checkpoint`` tool, with the
same flags (``--file_name=... --tensor_name=... --all_tensors ...``), the same output on
stdout, byte for byte, and the same exit statuses (0 even when it prints an error, 1 for
the usage line, 2 for a bad flag)."""

from __future__ import annotations

import argparse
import glob
import os
import re
from typing import Any, Optional, Sequence, TextIO

import tfckpt
from tfckpt.dtypes import VARIANT
from tfckpt.files import INDEX_SUFFIX

from ._common import EXIT_OK, EXIT_TROUBLE, printoptions

FLAGS = (
    "--file_name",
    "--tensor_name",
    "--all_tensors",
    "--all_tensor_names",
    "--count_exclude_pattern",
    "--printoptions",
)
#: The flags only inspect_checkpoint has (`dump` has a --printoptions of its own).
ONLY_FLAGS = FLAGS[:-1]
#: Dtypes TensorFlow's CheckpointReader.get_tensor cannot turn into numpy.
_TF_UNCONVERTIBLE = (VARIANT,)

USAGE = (
    "Usage: inspect_checkpoint --file_name=checkpoint_file_name "
    "[--tensor_name=tensor_to_print] [--all_tensors] [--all_tensor_names] "
    "[--count_exclude_pattern] [--printoptions]\n"
)


def register(sub: Any) -> None:
    """Lists ``inspect`` among the subcommands; ``tfckpt.cli.run`` hands its arguments to
    :func:`run_argv` before the main parser sees them (its flags are TensorFlow's)."""
    sub.add_parser(
        "inspect",
        add_help=False,
        help="TensorFlow inspect_checkpoint drop-in (--file_name=... flags)",
    )


def wants_inspect(argv: Sequence[str], flags: Sequence[str] = FLAGS, abbrev: bool = False) -> bool:
    """Whether `argv` holds an inspect_checkpoint flag; with `abbrev`, also an unambiguous
    or ambiguous prefix of one (``--file=``), which TensorFlow's argparse accepts."""
    for a in argv:
        name = a.split("=", 1)[0]
        if name in flags:
            return True
        if (
            abbrev
            and len(name) > 2
            and name.startswith("--")
            and any(f.startswith(name) for f in flags)
        ):
            return True
    return False


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tfckpt inspect",
        description="Drop-in for TensorFlow's inspect_checkpoint: same flags, same output.",
    )
    p.add_argument("--file_name", type=str, default="")
    p.add_argument("--tensor_name", type=str, default="")
    p.add_argument("--count_exclude_pattern", type=str, default="")
    p.add_argument("--all_tensors", nargs="?", const="true", default="false")
    p.add_argument("--all_tensor_names", nargs="?", const="true", default="false")
    p.add_argument("--printoptions", nargs="*", default=[])
    return p


def run_argv(argv: Sequence[str], out: TextIO) -> int:
    """Runs inspect_checkpoint's command line `argv`; returns its exit status."""
    try:
        args, _unknown = parser().parse_known_args(argv)
    except SystemExit as e:  # --help, or argparse's own usage error
        return e.code if isinstance(e.code, int) else EXIT_TROUBLE
    # TensorFlow applies --printoptions while parsing, before it looks at --file_name.
    with printoptions(args.printoptions):
        if not args.file_name:
            out.write(USAGE)
            return 1
        _print_tensors(args, out)
    return EXIT_OK


def _bool_flag(v: Optional[str]) -> bool:
    return True if v is None else v.lower() == "true"


def _print_tensors(args: argparse.Namespace, out: TextIO) -> None:
    """print_tensors_in_checkpoint_file: like TensorFlow, any error is printed on stdout
    (as str(e)) and ends the output."""
    import numpy as np

    all_tensors = _bool_flag(args.all_tensors)
    all_names = _bool_flag(args.all_tensor_names)
    try:
        if not os.path.exists(args.file_name + INDEX_SUFFIX) and not glob.glob(args.file_name):
            # Neither a V2 prefix nor a file: TensorFlow's words for it.
            raise tfckpt.NotACheckpointError(
                "Unsuccessful TensorSliceReader constructor: Failed to find any matching files "
                f"for {args.file_name}"
            )
        reader = tfckpt.open(args.file_name)
        rows = {r[0]: r for r in reader.listing()}
        if all_tensors or all_names:
            for key in sorted(rows):
                _, dtype, shape, *_ = rows[key]
                out.write(f"tensor: {key} ({reader.entry(key).dtype_name}) {list(shape)}\n")
                if all_tensors:
                    if dtype in _TF_UNCONVERTIBLE:  # TF's get_tensor: InternalError
                        out.write("<not convertible to a numpy dtype>\n")
                    else:
                        print(reader.read(key), file=out)
        elif not args.tensor_name:
            # As inspect_checkpoint prints it: bytes that are not UTF-8 dropped.
            from tfckpt.compat.checkpoint_reader import debug_string

            out.write(debug_string(reader).decode("utf-8", "ignore") + "\n")
        else:
            if args.tensor_name not in rows:
                out.write(f"Tensor {args.tensor_name} not found in checkpoint\n")
                return
            e = reader.entry(args.tensor_name)
            out.write(f"tensor: {args.tensor_name} ({e.dtype_name}) {list(e.shape)}\n")
            if e.dtype_code in _TF_UNCONVERTIBLE:  # uncaught there: printed, output ends
                out.write(f"Tensorflow type {e.dtype_code} not convertible to numpy dtype.\n")
                return
            print(reader.read(args.tensor_name), file=out)
        shapes = {k: r[2] for k, r in rows.items()}
        if args.count_exclude_pattern:
            pattern = re.compile(args.count_exclude_pattern)
            excluded = [k for k in shapes if pattern.search(k)]
            out.write(
                f"# Excluding {len(excluded)} tensors "
                f"({sum(int(np.prod(shapes[k])) for k in excluded)} params) that match "
                f"{args.count_exclude_pattern} when counting.\n"
            )
            shapes = {k: s for k, s in shapes.items() if k not in excluded}
        total = sum(int(np.prod(s)) for s in shapes.values())
        out.write(f"# Total number of params: {total}\n")
    except BrokenPipeError:
        raise
    except Exception as e:  # noqa: BLE001 - inspect_checkpoint prints every error
        out.write(f"{e}\n")
        if "corrupted compressed block contents" in str(e):
            out.write("It's likely that your checkpoint file has been compressed with SNAPPY.\n")
