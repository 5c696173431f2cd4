"""``tfckpt verify``: checks every block and every tensor checksum, names each damaged
tensor (and slice); exit 1 if anything is damaged."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Dict, Optional, TextIO, Tuple

import tfckpt
from tfckpt.slices import parse_slice_key

from ._common import (
    EXIT_DAMAGE,
    EXIT_OK,
    Progress,
    error_stream,
    format_bytes,
    printable_key,
    write_json,
)

#: What can be found damaged while checking one stored entry.
_DAMAGE = (tfckpt.CorruptCheckpointError, tfckpt.MissingShardError,
           tfckpt.UnsupportedCheckpointError)


def register(sub: Any) -> None:
    """Adds ``verify`` to the subcommands (``parser.add_subparsers(...)``)."""
    v = sub.add_parser("verify", help="check every block and tensor checksum",
                       description="Checks every index block CRC and every tensor CRC; names "
                                   "each damaged tensor. Exit 1 if anything is damaged.")
    v.add_argument("path")
    v.add_argument("--json", action="store_true")
    v.add_argument("-q", "--quiet", action="store_true", help="print only damage")
    v.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO) -> int:
    with tfckpt.open(args.path) as reader:
        v1 = reader.header.format == "V1"
        checked = "table blocks verified" if v1 else "index blocks verified"
        rows = reader.listing(hidden=True)
        total = reader.summary()[5]
        progress = Progress("verifying", error_stream(args), total=total)
        damaged = []
        bad_tensors = set()
        try:
            # Every stored entry once: plain tensors, and the slice entries of partitioned
            # ones, which are named as "tensor (slice spec)" rather than by their raw key.
            for key, _dtype, _shape, size, _n, error, sliced in rows:
                tensor, spec = _slice_owner(key)
                if error is not None:
                    damaged.append(_damage(tensor, spec, error))
                    bad_tensors.add(tensor)
                    continue
                if v1 and spec is not None:
                    continue  # V1: a slice is checked with its tensor (the error names it)
                if sliced and not v1:
                    continue  # its slice entries are checked as entries of their own
                try:
                    if spec is None:
                        reader.verify_key(key)
                    else:
                        e = reader.entry(key)
                        reader.verify_entry(
                            dataclasses.replace(e, key=f"{tensor} (slice {spec})"))
                except _DAMAGE as e:
                    damaged.append(_damage(tensor, spec, str(e)))
                    bad_tensors.add(tensor)
                progress.update(size)
        finally:
            progress.close()
        listed = len(reader)
        if args.json:
            write_json({"prefix": reader.prefix, "ok": not damaged, "tensors_checked": listed,
                        "tensors_damaged": len(bad_tensors), "bytes_checked": total,
                        "damaged": damaged}, out)
        else:
            for d in damaged:
                where = f" (slice {d['slice']})" if "slice" in d else ""
                out.write(f"DAMAGED {printable_key(d['key'])}{where}: {d['error']}\n")
            if not damaged and not args.quiet:
                out.write(f"{reader.prefix}: OK ({listed} tensors, {format_bytes(total)} "
                          f"checked; {checked})\n")
            elif damaged:
                out.write(f"{reader.prefix}: {len(bad_tensors)} of {listed} tensors damaged "
                          f"({format_bytes(total)} checked; {checked})\n")
        return EXIT_OK if not damaged else EXIT_DAMAGE


def _slice_owner(key: str) -> Tuple[str, Optional[str]]:
    """(tensor key, slice spec) for the index key of one slice of a partitioned tensor,
    else (key, None)."""
    if not key.startswith("\x00"):
        return key, None
    parsed = parse_slice_key(key.encode("utf-8", "surrogateescape"))
    if parsed is None:
        return key, None
    name, s = parsed
    return name, s.spec


def _damage(key: str, spec: Optional[str], error: str) -> Dict[str, str]:
    d = {"key": key, "error": error}
    if spec is not None:
        d["slice"] = spec
    return d
