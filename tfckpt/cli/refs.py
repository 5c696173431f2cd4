"""``tfckpt refs``: kerchunk references (``tfckpt.refs.references``), so zarr, xarray or
dask open a checkpoint's tensors lazily, straight from its data shards."""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from ._common import EXIT_OK, error_stream, storage_options


def register(sub: Any) -> None:
    """Adds ``refs`` to the subcommands (``parser.add_subparsers(...)``)."""
    r = sub.add_parser(
        "refs",
        help="kerchunk references: open the tensors lazily with zarr/xarray/dask",
        description="Writes a kerchunk reference description (spec version 1): a Zarr "
        "(format 2) group whose arrays are the checkpoint's tensors, each chunk "
        "a byte range of a data shard. Tensors Zarr cannot express are listed "
        "under 'skipped' and on stderr.",
    )
    r.add_argument("path", help="checkpoint prefix, .index, directory, or fsspec URL")
    r.add_argument("-o", "--output", metavar="FILE", help="write the JSON here (default stdout)")
    r.add_argument(
        "--url",
        metavar="DIR_URL",
        help="where readers will find the data shards (e.g. s3://bucket/run/); "
        "default: their absolute path or URL",
    )
    r.add_argument(
        "--as-bits",
        action="store_true",
        help="describe bfloat16/float8/float4/int4/int2 tensors as unsigned "
        "integers holding the raw bits instead of skipping them",
    )
    r.add_argument("--storage-option", action="append", default=[], metavar="K=V")
    r.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO) -> int:
    from tfckpt.refs import references

    refs = references(
        args.path,
        url=args.url,
        as_bits=args.as_bits,
        storage_options=storage_options(args.storage_option),
    )
    err = error_stream(args)
    for s in refs["skipped"]:
        err.write(f"tfckpt refs: skipped {s['key']} ({s['dtype']}): {s['reason']}\n")
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            json.dump(refs, f)
            f.write("\n")
    else:
        json.dump(refs, out)
        out.write("\n")
    arrays = sum(1 for k in refs["refs"] if k.endswith("/.zarray"))
    if args.output:
        err.write(
            f"tfckpt refs: {arrays} arrays, {len(refs['skipped'])} skipped -> {args.output}\n"
        )
    return EXIT_OK
