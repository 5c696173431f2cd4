"""``tfckpt scan``: one record per checkpoint (or per key) found under directories,
archives and URLs (``tfckpt.scan``, or ``tfckpt.scan_to_dask`` on a cluster), as a table,
JSON lines, CSV or Parquet; exit 1 if any record has status error."""

from __future__ import annotations

import argparse
import re
import time
from typing import Any, Dict, Iterator, TextIO

import tfckpt

from ._common import (
    EXIT_DAMAGE,
    EXIT_OK,
    Progress,
    UsageError,
    _positive,
    add_remote_options,
    error_stream,
    printable,
    remote_limits,
    storage_options,
)

#: tfckpt.scanning.FORMATS, spelled here: every command builds this parser, and importing
#: the scanning package for it would cost every command's start (tests check they agree).
FORMATS = ("table", "jsonl", "csv", "parquet")


def register(sub: Any) -> None:
    """Adds ``scan`` to the subcommands (``parser.add_subparsers(...)``)."""
    s = sub.add_parser(
        "scan",
        help="find and summarize every checkpoint under directories, archives, URLs",
        description="One record per checkpoint (kind, keys, parameters, bytes, dtypes, "
        "shards, step, status) found under each PATH: directories (walked, "
        "symlinks followed), checkpoint prefixes, .tar/.tar.gz/.zip archives "
        "(read without unpacking) and fsspec URLs (s3://, gs://, http://, "
        "memory://; only indexes are fetched unless --verify). State files, "
        "half-written saves and unreadable entries are reported too. "
        "Exit 1 if any record has status error.",
    )
    s.add_argument("paths", nargs="+", metavar="PATH")
    s.add_argument("--keys", action="store_true", help="one row per key instead of per checkpoint")
    s.add_argument(
        "--match",
        metavar="REGEX",
        help="keep checkpoints whose location or any key matches (with --keys: "
        "keys that match, or every key of a checkpoint whose location does)",
    )
    s.add_argument("--verify", action="store_true", help="check every tensor checksum")
    s.add_argument(
        "--stats",
        action="store_true",
        help="read every value: add each checkpoint's NaN/Inf count and the L2 norm of its "
        "finite values (columns nonfinite, l2)",
    )
    s.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="scan with N workers: processes for files, threads for URLs (same output order)",
    )
    s.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="output format (default: %(default)s; parquet needs --output)",
    )
    s.add_argument("-o", "--output", metavar="FILE", help="write the records to FILE")
    s.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="run the scan on the Dask cluster at ADDRESS (tcp://host:8786)",
    )
    # -- archives: what one may cost
    s.add_argument(
        "--max-archive-members",
        type=_positive(int),
        metavar="N",
        help="an archive with more members is a record, not scanned (default: 200000)",
    )
    s.add_argument(
        "--max-member-bytes",
        type=_positive(int),
        metavar="N",
        help="a member of a compressed archive that must be held whole (--verify, --stats) "
        "and is larger is a record (default: 2147483648, 2 GiB)",
    )
    s.add_argument(
        "--max-archive-seconds",
        type=_positive(int),
        metavar="S",
        help="a compressed archive not read to its end in S seconds is a record for what "
        "was left (default: 3600)",
    )
    # -- URLs: the bounds of remote reads and walks (tfckpt.remote.RemoteLimits)
    add_remote_options(s, walk=True)
    s.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO) -> int:
    from tfckpt.scanning import record_writer

    try:
        match = re.compile(args.match) if args.match else None
    except re.error as e:
        raise UsageError(f"--match: bad regular expression {args.match!r}: {e}") from None
    if args.stats and (args.keys or args.dask):
        raise UsageError(
            "--stats adds columns to the per-checkpoint view of a scan run here: "
            "not with --keys or --dask"
        )
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.format == "parquet":
        if not args.output:
            raise UsageError("--format parquet writes a file: give --output FILE")
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise UsageError(
                "--format parquet needs pyarrow, which is not installed (pip install pyarrow)"
            ) from None
    kwargs = dict(
        paths=args.paths,
        keys=args.keys,
        match=match,
        verify=args.verify,
        storage_options=storage_options(args.storage_option),
        **({"stats": True} if args.stats else {}),
        limits=remote_limits(args),
        **{
            name: value
            for name, value in (
                ("max_archive_members", args.max_archive_members),
                ("max_member_bytes", args.max_member_bytes),
                ("max_archive_seconds", args.max_archive_seconds),
            )
            if value is not None
        },
    )
    if args.dask:
        records = _dask_records(args.dask, kwargs)
    else:
        records = tfckpt.scan(jobs=args.jobs, **kwargs)

    stream = None
    if args.output and args.format != "parquet":
        stream = open(args.output, "w", newline="", encoding="utf-8")
    target = args.output if args.format == "parquet" else (stream or out)
    writer = record_writer(args.format, target, keys=args.keys, escape=printable, stats=args.stats)
    progress = Progress("scanning", error_stream(args))
    counts = {"checkpoint": 0, "state": 0, "path": 0, "key": 0}
    errors = 0
    start = time.perf_counter()
    try:
        for rec in records:
            writer.write(rec)
            counts[rec.record] = counts.get(rec.record, 0) + 1
            errors += not rec.ok
            progress.update(ok=rec.ok)
    finally:
        progress.close()
        writer.close()
        if stream is not None:
            stream.close()
    if args.format == "table" and stream is None:
        parts = [f"{counts['checkpoint']} checkpoint(s)"]
        if args.keys:
            parts.append(f"{counts['key']} key(s)")
        parts.append(f"{counts['state']} state file(s)")
        if counts["path"]:
            parts.append(f"{counts['path']} unreadable path(s)")
        out.write(
            f"# {', '.join(parts)}; {errors} with errors; {time.perf_counter() - start:.2f} s\n"
        )
    return EXIT_OK if errors == 0 else EXIT_DAMAGE


def _dask_records(address: str, kwargs: Dict[str, Any]) -> Iterator[Any]:
    """The records of a scan run on the Dask cluster at `address`. The paths are checked
    (and the directories listed) here, at once, as ``tfckpt.scan`` does; the cluster is
    reached when the records are."""
    try:
        from distributed import Client
    except ImportError:
        raise UsageError("--dask needs dask.distributed: pip install 'tfckpt[dask]'") from None
    return _computed(Client, address, tfckpt.scan_to_dask(**kwargs))


def _computed(client_class: Any, address: str, bag: Any, window: int = 8) -> Iterator[Any]:
    """The records of `bag`, partition by partition, in order, with at most `window`
    partitions computed ahead."""
    from collections import deque

    from tfckpt.scanning import Record

    with client_class(address) as client:
        pending: deque = deque()
        for part in bag.to_delayed():
            pending.append(client.compute(part))
            if len(pending) >= window:
                for d in pending.popleft().result():
                    yield Record(**d)
        while pending:
            for d in pending.popleft().result():
                yield Record(**d)
