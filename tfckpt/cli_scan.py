"""The ``tfckpt scan`` and ``tfckpt refs`` commands.

``register(subparsers)`` adds both to the ``tfckpt`` parser (tfckpt.cli calls it); each
command is ``func(args, out) -> exit status`` like the others: 0 all is well, 1 damage
found (any record with status error), 2 usage or I/O error.
"""

from __future__ import annotations

import json
import re
import sys
import time
from typing import Dict, Iterator, Sequence, TextIO

from .cli import EXIT_DAMAGE, EXIT_OK, UsageError


def register(subparsers) -> None:
    """Adds ``scan`` and ``refs`` to the subcommands of the ``tfckpt`` parser."""
    from .scanning import FORMATS

    s = subparsers.add_parser(
        "scan", help="find and summarize every checkpoint under directories, archives, URLs",
        description="One record per checkpoint (kind, keys, parameters, bytes, dtypes, "
                    "shards, step, status) found under each PATH: directories (walked, "
                    "symlinks followed), checkpoint prefixes, .tar/.tar.gz/.zip archives "
                    "(read without unpacking) and fsspec URLs (s3://, gs://, http://, "
                    "memory://; only indexes are fetched unless --verify). State files, "
                    "half-written saves and unreadable entries are reported too. "
                    "Exit 1 if any record has status error.")
    s.add_argument("paths", nargs="+", metavar="PATH")
    s.add_argument("--keys", action="store_true", help="one row per key instead of per checkpoint")
    s.add_argument("--match", metavar="REGEX",
                   help="keep checkpoints whose location or any key matches (with --keys: "
                        "keys that match, or every key of a checkpoint whose location does)")
    s.add_argument("--verify", action="store_true", help="check every tensor checksum")
    s.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                   help="scan with N workers: processes for files, threads for URLs "
                        "(same output order)")
    s.add_argument("--format", choices=FORMATS, default="table",
                   help="output format (default: %(default)s; parquet needs --output)")
    s.add_argument("-o", "--output", metavar="FILE", help="write the records to FILE")
    s.add_argument("--dask", metavar="ADDRESS",
                   help="run the scan on the Dask cluster at ADDRESS (tcp://host:8786)")
    s.add_argument("--storage-option", action="append", default=[], metavar="K=V",
                   help="fsspec storage option for URLs (repeatable; V parsed as JSON "
                        "where it can be, e.g. anon=true)")
    s.set_defaults(func=cmd_scan)

    r = subparsers.add_parser(
        "refs", help="kerchunk references: open the tensors lazily with zarr/xarray/dask",
        description="Writes a kerchunk reference description (spec version 1): a Zarr "
                    "(format 2) group whose arrays are the checkpoint's tensors, each chunk "
                    "a byte range of a data shard. Tensors Zarr cannot express are listed "
                    "under 'skipped' and on stderr.")
    r.add_argument("path", help="checkpoint prefix, .index, directory, or fsspec URL")
    r.add_argument("-o", "--output", metavar="FILE", help="write the JSON here (default stdout)")
    r.add_argument("--url", metavar="DIR_URL",
                   help="where readers will find the data shards (e.g. s3://bucket/run/); "
                        "default: their absolute path or URL")
    r.add_argument("--as-bits", action="store_true",
                   help="describe bfloat16/float8/float4/int4/int2 tensors as unsigned "
                        "integers holding the raw bits instead of skipping them")
    r.add_argument("--storage-option", action="append", default=[], metavar="K=V")
    r.set_defaults(func=cmd_refs)


def _storage_options(pairs: Sequence[str]) -> Dict[str, object]:
    options: Dict[str, object] = {}
    for kv in pairs:
        k, sep, v = kv.partition("=")
        if not sep or not k:
            raise UsageError(f"--storage-option '{kv}' is not in the form K=V")
        try:
            options[k] = json.loads(v)
        except ValueError:
            options[k] = v
    return options


class _Progress:
    """Records scanned and the rate, on one stderr line; only when stderr is a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.enabled = bool(getattr(stream, "isatty", lambda: False)())
        self.start = self.last = time.monotonic()
        self.count = self.errors = 0

    def update(self, ok: bool) -> None:
        self.count += 1
        self.errors += not ok
        now = time.monotonic()
        if self.enabled and now - self.last > 0.1:
            self.last = now
            rate = self.count / max(now - self.start, 1e-9)
            self.stream.write(f"\rscanning: {self.count} records, {self.errors} with errors, "
                              f"{rate:.1f}/s ")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r\033[K")
            self.stream.flush()


def _dask_records(address: str, kwargs: dict, window: int = 8) -> Iterator:
    """The records of a scan run on a Dask cluster, partition by partition, in order, with
    at most `window` partitions computed ahead."""
    try:
        from distributed import Client
    except ImportError:
        raise UsageError("--dask needs dask.distributed: pip install 'tfckpt[dask]'") from None
    from collections import deque

    from .scanning import Record, scan_to_dask

    with Client(address) as client:
        parts = scan_to_dask(**kwargs).to_delayed()
        pending: deque = deque()
        for part in parts:
            pending.append(client.compute(part))
            if len(pending) >= window:
                for d in pending.popleft().result():
                    yield Record(**d)
        while pending:
            for d in pending.popleft().result():
                yield Record(**d)


def cmd_scan(args, out: TextIO) -> int:
    import tfckpt

    from .scanning import record_writer

    try:
        match = re.compile(args.match) if args.match else None
    except re.error as e:
        raise UsageError(f"--match: bad regular expression {args.match!r}: {e}") from None
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.format == "parquet":
        if not args.output:
            raise UsageError("--format parquet writes a file: give --output FILE")
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise UsageError("--format parquet needs pyarrow, which is not installed "
                             "(pip install pyarrow)") from None
    kwargs = dict(paths=args.paths, keys=args.keys, match=match, verify=args.verify,
                  storage_options=_storage_options(args.storage_option))
    err = getattr(args, "err", None) or sys.stderr
    if args.dask:
        from .scanning import _check_root

        for p in args.paths:
            _check_root(p)
        records = _dask_records(args.dask, kwargs)
    else:
        records = tfckpt.scan(jobs=args.jobs, **kwargs)

    stream = None
    if args.output and args.format != "parquet":
        stream = open(args.output, "w", newline="", encoding="utf-8")
    target = args.output if args.format == "parquet" else (stream or out)
    writer = record_writer(args.format, target, keys=args.keys)
    progress = _Progress(err)
    counts = {"checkpoint": 0, "state": 0, "path": 0, "key": 0}
    errors = 0
    start = time.perf_counter()
    try:
        for rec in records:
            writer.write(rec)
            counts[rec.record] = counts.get(rec.record, 0) + 1
            errors += not rec.ok
            progress.update(rec.ok)
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
        out.write(f"# {', '.join(parts)}; {errors} with errors; "
                  f"{time.perf_counter() - start:.2f} s\n")
    return EXIT_OK if errors == 0 else EXIT_DAMAGE


def cmd_refs(args, out: TextIO) -> int:
    from .refs import references

    refs = references(args.path, url=args.url, as_bits=args.as_bits,
                      storage_options=_storage_options(args.storage_option))
    err = getattr(args, "err", None) or sys.stderr
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
        err.write(f"tfckpt refs: {arrays} arrays, {len(refs['skipped'])} skipped -> "
                  f"{args.output}\n")
    return EXIT_OK
