"""``tfckpt verify``: checks every block and every tensor checksum, names each damaged
tensor (and slice); exit 1 if anything is damaged."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Dict, Optional, TextIO, Tuple

import tfckpt
from tfckpt.files import GIT_LFS_ADVICE
from tfckpt.slices import parse_slice_key

from ._common import (
    EXIT_DAMAGE,
    EXIT_OK,
    EXIT_TROUBLE,
    Progress,
    add_remote_options,
    error_stream,
    format_bytes,
    open_checkpoint,
    printable,
    write_json,
)

#: What can be found damaged while checking one stored entry.
_DAMAGE = (
    tfckpt.CorruptCheckpointError,
    tfckpt.MissingShardError,
    tfckpt.UnsupportedCheckpointError,
)


def register(sub: Any) -> None:
    """Adds ``verify`` to the subcommands (``parser.add_subparsers(...)``)."""
    v = sub.add_parser(
        "verify",
        help="check every block and tensor checksum",
        description="Checks every index block CRC and every tensor CRC; names "
        "each damaged tensor. Exit 1 if anything is damaged. It checks bytes, not values: "
        "a checkpoint full of NaN is OK here; 'tfckpt stats' looks at the values "
        "('tfckpt stats RUN_DIR --first-nonfinite' finds the first checkpoint with NaN or Inf).",
    )
    v.add_argument("path")
    v.add_argument("--json", action="store_true")
    v.add_argument("-q", "--quiet", action="store_true", help="print only damage")
    add_remote_options(v)
    v.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Exit 0 all checked and sound, 1 damage (a checksum, bytes past a file's end, a
    missing shard), 2 when a shard is there but cannot be read (nothing to say about its
    bytes). A shard's trouble is named once; the bytes counted are those actually read."""
    with open_checkpoint(args.path, args) as reader:
        v1 = reader.header.format == "V1"
        checked = "table blocks verified" if v1 else "index blocks verified"
        rows = reader.listing(hidden=True)
        total = reader.summary()[5]
        progress = Progress("verifying", error_stream(args), total=total)
        damaged = []
        bad_tensors = set()
        shards: Dict[int, Dict[str, Any]] = {}  # shard id -> its trouble, found once
        unread = set()
        read_bytes = 0
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
                        reader.verify_entry(dataclasses.replace(e, key=f"{tensor} (slice {spec})"))
                    read_bytes += size
                except tfckpt.MissingShardError as e:
                    if e.shard is None:
                        damaged.append(_damage(tensor, spec, str(e)))
                        bad_tensors.add(tensor)
                        continue
                    # Named once, with the shard (its keys only in --json), not once
                    # per tensor it holds.
                    trouble = shards.setdefault(e.shard, _shard_trouble(reader, e))
                    trouble["tensors"] += 1
                    trouble["keys"].append(tensor)
                    if trouble["unreadable"]:
                        unread.add(tensor)
                    else:
                        bad_tensors.add(tensor)
                except _DAMAGE as e:
                    damaged.append(_damage(tensor, spec, str(e)))
                    bad_tensors.add(tensor)
                    if isinstance(e, tfckpt.ChecksumMismatchError):
                        read_bytes += size  # read, and found wrong
                progress.update(size)
        finally:
            progress.close()
        listed = len(reader)
        missing = [t for t in shards.values() if not t["unreadable"]]
        unreadable = [t for t in shards.values() if t["unreadable"]]
        for t in shards.values():
            del t["unreadable"]
            t["keys"] = sorted(set(t["keys"]))  # the tensors it holds, each once
        if args.json:
            doc = {
                "prefix": reader.prefix,
                "ok": not bad_tensors and not unread,
                "tensors_checked": listed - len(unread),
                "tensors_damaged": len(bad_tensors),
                "bytes_checked": read_bytes,
                "damaged": damaged,
            }
            if shards:  # only when a shard is in trouble, so a sound report stays as it was
                doc.update(
                    tensors_unread=len(unread), shards_missing=missing, shards_unreadable=unreadable
                )
            write_json(doc, out)
        else:
            for t in missing:
                out.write(
                    f"MISSING data shard {t['shard']}: {printable(t['path'])}: "
                    f"{t['error']} ({t['tensors']} stored entries need it)\n"
                )
            for d in damaged:
                where = f" (slice {d['slice']})" if "slice" in d else ""
                out.write(f"DAMAGED {printable(d['key'])}{where}: {printable(d['error'])}\n")
            done = f"{format_bytes(read_bytes)} checked; {checked}"
            name = printable(reader.prefix)
            if unread:
                out.write(
                    f"{name}: NOT VERIFIED: {len(unread)} of {listed} tensors could not "
                    f"be read, {len(bad_tensors)} damaged ({done})\n"
                )
            elif not bad_tensors and not args.quiet:
                out.write(f"{name}: OK ({listed} tensors, {done})\n")
            elif bad_tensors:
                out.write(f"{name}: {len(bad_tensors)} of {listed} tensors damaged ({done})\n")
        err = error_stream(args)
        for t in unreadable:
            err.write(
                f"tfckpt: cannot read data shard {printable(t['path'])}: "
                f"{t['error']} ({t['tensors']} stored entries not checked)\n"
            )
        if unread:
            return EXIT_TROUBLE
        return EXIT_OK if not bad_tensors else EXIT_DAMAGE


def _shard_trouble(reader: Any, e: tfckpt.MissingShardError) -> Dict[str, Any]:
    """What is wrong with one data shard, for the report (counted once, however many
    entries it holds)."""
    if isinstance(e, tfckpt.UnreadableShardError):
        error = e.reason or str(e)
    elif isinstance(e, tfckpt.GitLfsPointerError):
        error = GIT_LFS_ADVICE
    else:
        error = "does not exist"
    return {
        "shard": e.shard,
        "path": e.path or reader.shard_path(e.shard),
        "unreadable": isinstance(e, tfckpt.UnreadableShardError),
        "tensors": 0,
        "error": error,
        "keys": [],
    }


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
