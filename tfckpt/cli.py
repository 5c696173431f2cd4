"""The ``tfckpt`` command. One function per subcommand; each calls the public API.

Exit status: 0 all is well, 1 damage found (corrupt bytes, checksum mismatch, missing shard),
2 usage or I/O error (a bad path, a missing key, a file that is not a checkpoint).
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import re
import signal
import sys
import time
from typing import Optional, Sequence, TextIO

from .errors import (
    CheckpointError,
    CorruptCheckpointError,
    KeyNotFoundError,
    MissingShardError,
)

EXIT_OK, EXIT_DAMAGE, EXIT_TROUBLE = 0, 1, 2

_INSPECT_FLAGS = ("--file_name", "--tensor_name", "--all_tensors", "--all_tensor_names",
                  "--count_exclude_pattern", "--printoptions")
#: The flags only inspect_checkpoint has (`dump` has a --printoptions of its own).
_INSPECT_ONLY_FLAGS = _INSPECT_FLAGS[:-1]
#: Dtypes TensorFlow's CheckpointReader.get_tensor cannot turn into numpy (DT_VARIANT).
_TF_UNCONVERTIBLE = (21,)


class UsageError(Exception):
    """A mistake in how the command was called."""


# -- formatting -------------------------------------------------------------------------

def format_shape(shape: Sequence[int]) -> str:
    """``[5,3]``, ``[]`` for a scalar, as TensorFlow's debug strings write shapes."""
    return "[" + ",".join(str(d) for d in shape) + "]"


def format_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def _set_printoptions(options: Sequence[str]) -> None:
    """Applies ``k=v`` numpy print options, as inspect_checkpoint's --printoptions does."""
    import numpy as np

    current = np.get_printoptions()
    for kv in options:
        k, sep, v = kv.partition("=")
        if not sep or not k:
            raise UsageError(f"'{kv}' is not in the form k=v.")
        if k not in current:
            raise UsageError(f"'{k}' is not a valid printoption.")
        kind = type(current[k])
        if kind is type(None):
            raise UsageError(f"Setting '{k}' from the command line is not supported.")
        try:
            value = _absl_bool(v) if kind is bool else kind(v)
        except ValueError as e:
            raise UsageError(f"bad value for printoption {k}: {e}") from None
        np.set_printoptions(**{k: value})


def _absl_bool(v: str) -> bool:
    """A boolean as absl's BooleanParser (used by inspect_checkpoint) reads one."""
    if v.lower() in ("true", "t", "1"):
        return True
    if v.lower() in ("false", "f", "0"):
        return False
    raise ValueError(f"Non-boolean argument to boolean flag: {v!r}")


@contextlib.contextmanager
def _printoptions(options: Sequence[str]):
    """Applies `options` for the duration of a command, then restores numpy's print options
    (so `run()` called in-process leaves no global state behind)."""
    if not options:
        yield
        return
    import numpy as np

    with np.printoptions():
        _set_printoptions(options)
        yield


class Progress:
    """A one-line progress display on stderr, only when stderr is a terminal."""

    def __init__(self, total: int, label: str, stream: Optional[TextIO] = None) -> None:
        stream = sys.stderr if stream is None else stream
        self.total = max(total, 1)
        self.label = label
        self.stream = stream
        self.enabled = stream.isatty()
        self.done = 0
        self.start = time.monotonic()
        self.last = 0.0

    def update(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and (now - self.last > 0.1 or self.done >= self.total):
            self.last = now
            rate = self.done / max(now - self.start, 1e-9)
            self.stream.write(
                f"\r{self.label}: {100 * self.done / self.total:5.1f}%  "
                f"{format_bytes(self.done)} / {format_bytes(self.total)}  "
                f"{format_bytes(int(rate))}/s ")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r\033[K")
            self.stream.flush()


# -- dump -------------------------------------------------------------------------------

def _describe(reader):
    def describe(key: str) -> str:
        if key not in reader:
            return "(missing from the index)"
        e = reader.entry(key)
        return f"{e.dtype_name}{format_shape(e.shape)}"
    return describe


def cmd_dump(args, out: TextIO) -> int:
    import tfckpt

    with _printoptions(args.printoptions), tfckpt.open(args.path) as reader:
        if args.tree:
            return _dump_tree(reader, args, out)
        if args.tensor:
            for key in args.tensor:
                value = reader.read(key)
                e = reader.entry(key)
                if args.json:
                    out.write(json.dumps(_json_value(key, e, value)) + "\n")
                else:
                    out.write(f"tensor: {key} ({e.dtype_name}) {format_shape(e.shape)}\n")
                    print(value, file=out)
            return EXIT_OK
        return _dump_listing(reader, args, out)


def _dump_listing(reader, args, out: TextIO) -> int:
    from .dtypes import by_code

    rows = reader.listing(hidden=args.all_keys)
    all_rows = reader.listing(hidden=True) if not args.all_keys else rows
    status = EXIT_OK
    total_params = 0
    for key, dtype, shape, size, n, error, sliced in rows:
        if error is None:
            total_params += n
    # Bytes in data files: every entry that holds data (slice entries, not their full key).
    total_bytes = sum(r[3] for r in all_rows if r[5] is None and not r[6])
    if args.json:
        tensors = []
        for key, dtype, shape, size, n, error, sliced in rows:
            rec = {"key": key, "dtype": by_code(dtype).name, "shape": list(shape)}
            if error:
                rec["error"] = error
                status = EXIT_DAMAGE
            else:
                e = reader.entry(key)
                rec.update(size=e.size, num_elements=n, shard=e.shard_id, offset=e.offset,
                           crc32c=e.crc32c, partitioned=sliced)
                if reader.header.format == "V1":  # shard = the file; no offsets nor CRCs
                    rec.pop("offset"), rec.pop("crc32c")
                if sliced:
                    rec["slices"] = [s.spec for s in e.slices]
                    for field in ("shard", "offset", "crc32c"):
                        rec.pop(field, None)
                    rec["size"] = _partitioned_size(reader, e)
            if args.all:
                if error is None:
                    rec["value"] = _json_value(key, reader.entry(key), reader.read(key))["value"]
            tensors.append(rec)
        h = reader.header
        doc = {
            "prefix": reader.prefix,
            "header": {"format": h.format, "num_shards": h.num_shards,
                       "endianness": h.endianness,
                       "version": {"producer": h.producer, "min_consumer": h.min_consumer,
                                   "bad_consumers": list(h.bad_consumers)}},
            "tensors": tensors,
            "totals": {"tensors": len(rows), "parameters": total_params, "bytes": total_bytes},
        }
        json.dump(doc, out, indent=1)
        out.write("\n")
        return status

    width_key = min(max((len(r[0]) for r in rows), default=3), 80)
    for key, dtype, shape, size, n, error, sliced in rows:
        name = by_code(dtype).name
        if error:
            out.write(f"{key:<{width_key}}  ERROR: {error}\n")
            status = EXIT_DAMAGE
            continue
        if sliced:
            e = reader.entry(key)
            size = _partitioned_size(reader, e)
            extra = f"  ({len(e.slices)} slices)"
        else:
            extra = ""
        out.write(f"{key:<{width_key}}  {name:<10} {format_shape(shape):<16} "
                  f"{format_bytes(size):>10}{extra}\n")
        if args.all:
            print(reader.read(key), file=out)
    n = reader.header.num_shards
    where = "format V1 file" if reader.header.format == "V1" else "data shard"
    out.write(f"# {len(rows)} tensors, {total_params} parameters, {format_bytes(total_bytes)}"
              f" in {n} {where}{'s' if n != 1 else ''}\n")
    return status


def _partitioned_size(reader, e) -> int:
    if reader.header.format == "V1":
        return e.size  # a V1 entry's size already counts all its slices
    total = 0
    for s in e.slices:
        try:
            total += reader.slice_entry(e.key, s).size
        except CorruptCheckpointError:
            pass  # a missing slice entry is reported by verify, not by a listing
    return total


def _json_value(key, entry, value):
    import numpy as np

    def convert(v):
        if isinstance(v, bytes):
            try:
                return v.decode("utf-8")
            except UnicodeDecodeError:
                return {"base64": __import__("base64").b64encode(v).decode("ascii")}
        if isinstance(v, np.ndarray):
            return convert(v.tolist()) if v.dtype == object else _plain(v)
        if isinstance(v, list):
            return [convert(x) for x in v]
        if hasattr(v, "type_name"):
            return {"type_name": v.type_name, "metadata_bytes": len(v.metadata),
                    "tensors": [convert(t) for t in v.tensors]}
        return v

    def _plain(arr):
        if arr.dtype.kind == "c":
            return [[z.real, z.imag] for z in arr.reshape(-1).tolist()] if arr.ndim else \
                [arr.item().real, arr.item().imag]
        if arr.dtype.kind not in "biuf":  # ml_dtypes types
            arr = arr.astype(np.float64) if "float" in arr.dtype.name else arr.astype(np.int64)
        return _finite(arr.tolist())

    def _finite(x):
        if isinstance(x, list):
            return [_finite(y) for y in x]
        if isinstance(x, float) and (x != x or x in (float("inf"), float("-inf"))):
            return str(x)
        return x

    if entry.dtype_code in (7, 21):
        out = convert(value.tolist() if value.ndim else [value.item()])
        if not value.ndim:
            out = out[0]
    else:
        out = convert(value)
    return {"key": key, "dtype": entry.dtype_name, "shape": list(entry.shape), "value": out}


def _dump_tree(reader, args, out: TextIO) -> int:
    graph = reader.object_graph
    if graph is None:
        raise UsageError(
            f"{reader.prefix} is a name-based checkpoint (no {'_CHECKPOINTABLE_OBJECT_GRAPH'} "
            "key): it has no object graph to show; use 'tfckpt dump' for its keys")
    if args.json:
        json.dump(graph.to_json(), out, indent=1)
        out.write("\n")
    else:
        out.write(graph.render(_describe(reader)) + "\n")
    return EXIT_OK


# -- verify -----------------------------------------------------------------------------

def cmd_verify(args, out: TextIO) -> int:
    import dataclasses

    import tfckpt

    with tfckpt.open(args.path) as reader:
        v1 = reader.header.format == "V1"
        checked = "table blocks verified" if v1 else "index blocks verified"
        rows = reader.listing(hidden=True)
        total = sum(r[3] for r in rows if r[5] is None and not r[6])
        progress = Progress(total, "verifying", getattr(args, "err", None))
        damaged = []
        bad_tensors = set()
        try:
            # Every stored entry once: plain tensors, and the slice entries of partitioned
            # ones, which are named as "tensor (slice spec)" rather than by their raw key.
            for key, dtype, shape, size, n, error, sliced in rows:
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
                except (CorruptCheckpointError, MissingShardError,
                        tfckpt.UnsupportedCheckpointError) as e:
                    damaged.append(_damage(tensor, spec, str(e)))
                    bad_tensors.add(tensor)
                progress.update(size)
        finally:
            progress.close()
        listed = len(reader)
        if args.json:
            json.dump({"prefix": reader.prefix, "ok": not damaged, "tensors_checked": listed,
                       "tensors_damaged": len(bad_tensors), "bytes_checked": total,
                       "damaged": damaged}, out, indent=1)
            out.write("\n")
        else:
            for d in damaged:
                where = f" (slice {d['slice']})" if "slice" in d else ""
                out.write(f"DAMAGED {_printable_key(d['key'])}{where}: {d['error']}\n")
            if not damaged and not args.quiet:
                out.write(f"{reader.prefix}: OK ({listed} tensors, {format_bytes(total)} "
                          f"checked; {checked})\n")
            elif damaged:
                out.write(f"{reader.prefix}: {len(bad_tensors)} of {listed} tensors damaged "
                          f"({format_bytes(total)} checked; {checked})\n")
        return EXIT_OK if not damaged else EXIT_DAMAGE


def _slice_owner(key: str):
    """(tensor key, slice spec) for the index key of one slice of a partitioned tensor,
    else (key, None)."""
    from .slices import parse_slice_key

    if not key.startswith("\x00"):
        return key, None
    parsed = parse_slice_key(key.encode("utf-8", "surrogateescape"))
    if parsed is None:
        return key, None
    name, s = parsed
    return name, s.spec


def _damage(key: str, spec, error: str) -> dict:
    d = {"key": key, "error": error}
    if spec is not None:
        d["slice"] = spec
    return d


def _printable_key(key: str) -> str:
    """`key` safe for a terminal: invalid UTF-8 and control characters as escapes."""
    raw = key.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in raw)


# -- inspect_checkpoint compatibility ---------------------------------------------------

def _bool_flag(v: Optional[str]) -> bool:
    return True if v is None else v.lower() == "true"


def inspect_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tfckpt inspect",
        description="Drop-in for TensorFlow's inspect_checkpoint: same flags, same output.")
    p.add_argument("--file_name", type=str, default="")
    p.add_argument("--tensor_name", type=str, default="")
    p.add_argument("--count_exclude_pattern", type=str, default="")
    p.add_argument("--all_tensors", nargs="?", const="true", default="false")
    p.add_argument("--all_tensor_names", nargs="?", const="true", default="false")
    p.add_argument("--printoptions", nargs="*", default=[])
    return p


def cmd_inspect(argv: Sequence[str], out: TextIO) -> int:
    """TensorFlow's inspect_checkpoint: the same output on stdout and the same exit status
    (0 even when it prints an error, 1 for the usage line, 2 for a bad flag)."""
    try:
        args, _unknown = inspect_parser().parse_known_args(argv)
    except SystemExit as e:  # --help, or argparse's own usage error
        return e.code if isinstance(e.code, int) else EXIT_TROUBLE
    # TensorFlow applies --printoptions while parsing, before it looks at --file_name.
    with _printoptions(args.printoptions):
        if not args.file_name:
            out.write("Usage: inspect_checkpoint --file_name=checkpoint_file_name "
                      "[--tensor_name=tensor_to_print] [--all_tensors] [--all_tensor_names] "
                      "[--count_exclude_pattern] [--printoptions]\n")
            return 1
        _inspect(args, out)
    return EXIT_OK


def _inspect(args, out: TextIO) -> None:
    """print_tensors_in_checkpoint_file: like TensorFlow, any error is printed on stdout
    (as str(e)) and ends the output."""
    import numpy as np

    import tfckpt

    all_tensors = _bool_flag(args.all_tensors)
    all_names = _bool_flag(args.all_tensor_names)
    try:
        if not os.path.exists(args.file_name + ".index") and not glob.glob(args.file_name):
            # Neither a V2 prefix nor a file: TensorFlow's words for it.
            raise tfckpt.NotACheckpointError(
                "Unsuccessful TensorSliceReader constructor: Failed to find any matching files "
                f"for {args.file_name}")
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
            out.write(_debug_string(reader) + "\n")
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
            out.write(f"# Excluding {len(excluded)} tensors "
                      f"({sum(int(np.prod(shapes[k])) for k in excluded)} params) that match "
                      f"{args.count_exclude_pattern} when counting.\n")
            shapes = {k: s for k, s in shapes.items() if k not in excluded}
        total = sum(int(np.prod(s)) for s in shapes.values())
        out.write(f"# Total number of params: {total}\n")
    except BrokenPipeError:
        raise
    except Exception as e:  # noqa: BLE001 - inspect_checkpoint prints every error
        out.write(f"{e}\n")
        if "corrupted compressed block contents" in str(e):
            out.write("It's likely that your checkpoint file has been compressed with SNAPPY.\n")


def _debug_string(reader) -> str:
    """BundleReader::DebugString: every entry without slices, in table order, slice keys
    included, as ``key (DT_X) [shape]``; invalid UTF-8 dropped as inspect_checkpoint does.
    For format V1, TensorSliceReader::DebugString: every tensor, ``, N slices`` added when
    it has more than one (TensorFlow lists them in hash-map order; here, sorted)."""
    from .dtypes import by_code

    lines = []
    if reader.header.format == "V1":
        for key, dtype, shape, size, n, error, sliced in reader.listing():
            raw = key.encode("utf-8", "surrogateescape").decode("utf-8", "ignore")
            count = len(reader.entry(key).slices)
            more = f", {count} slices" if count > 1 else ""
            lines.append(f"{raw} ({by_code(dtype).enum_name}) {format_shape(shape)}{more}\n")
        return "".join(lines)
    for key, dtype, shape, size, n, error, sliced in reader.listing(hidden=True):
        if sliced:
            continue
        raw = key.encode("utf-8", "surrogateescape").decode("utf-8", "ignore")
        lines.append(f"{raw} ({by_code(dtype).enum_name}) {format_shape(shape)}\n")
    return "".join(lines)


# -- entry point ------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tfckpt",
        description="Read, write, verify and inspect TensorFlow checkpoints without TensorFlow.",
        epilog="Exit status: 0 ok, 1 damage found, 2 usage or I/O error. "
               "TensorFlow's inspect_checkpoint flags (--file_name ...) work too.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    d = sub.add_parser("dump", help="list keys with dtype, shape and size; print values",
                       description="One line per key (dtype, shape, bytes), then totals.")
    d.add_argument("path", help="checkpoint prefix, .index/.data file, directory or SavedModel")
    d.add_argument("--tensor", action="append", metavar="KEY", help="print this tensor's value")
    d.add_argument("--all", action="store_true", help="print every value")
    d.add_argument("--json", action="store_true", help="machine-readable output")
    d.add_argument("--tree", action="store_true",
                   help="show the object graph: paths, aliases and optimizer slots")
    d.add_argument("--all-keys", action="store_true",
                   help="also list the slice entries of partitioned tensors")
    d.add_argument("--printoptions", nargs="*", default=[], metavar="K=V",
                   help="numpy print options, e.g. threshold=100000")
    d.set_defaults(func=cmd_dump)

    v = sub.add_parser("verify", help="check every block and tensor checksum",
                       description="Checks every index block CRC and every tensor CRC; names "
                                   "each damaged tensor. Exit 1 if anything is damaged.")
    v.add_argument("path")
    v.add_argument("--json", action="store_true")
    v.add_argument("-q", "--quiet", action="store_true", help="print only damage")
    v.set_defaults(func=cmd_verify)

    sub.add_parser("inspect", add_help=False,
                   help="TensorFlow inspect_checkpoint drop-in (--file_name=... flags)")

    from . import cli_scan, cli_tools

    cli_scan.register(sub)
    cli_tools.register(sub)
    return p


def _wants_inspect(argv: Sequence[str], flags: Sequence[str] = _INSPECT_FLAGS,
                   abbrev: bool = False) -> bool:
    """Whether `argv` holds an inspect_checkpoint flag; with `abbrev`, also an unambiguous
    or ambiguous prefix of one (``--file=``), which TensorFlow's argparse accepts."""
    for a in argv:
        name = a.split("=", 1)[0]
        if name in flags:
            return True
        if abbrev and len(name) > 2 and name.startswith("--") and \
                any(f.startswith(name) for f in flags):
            return True
    return False


def run(argv: Optional[Sequence[str]] = None, out: Optional[TextIO] = None,
        err: Optional[TextIO] = None) -> int:
    """Runs the command line `argv` and returns the exit status (for scripts and tests)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        if argv and argv[0] == "inspect":
            return cmd_inspect(argv[1:], out)
        if argv and argv[0] == "dump" and _wants_inspect(argv[1:], _INSPECT_ONLY_FLAGS):
            return cmd_inspect(argv[1:], out)
        if argv and argv[0].startswith("--") and _wants_inspect(argv, abbrev=True):
            return cmd_inspect(argv, out)
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as e:
            return EXIT_OK if e.code == 0 else EXIT_TROUBLE
        if not getattr(args, "func", None):
            parser.print_help(out)
            return EXIT_TROUBLE
        args.err = err
        return args.func(args, out)
    except UsageError as e:
        err.write(f"tfckpt: {e}\n")
        return EXIT_TROUBLE
    except KeyNotFoundError as e:
        err.write(f"tfckpt: {e}\n")
        return EXIT_TROUBLE
    except (CorruptCheckpointError, MissingShardError) as e:
        err.write(f"tfckpt: {e}\n")
        return EXIT_DAMAGE
    except CheckpointError as e:
        err.write(f"tfckpt: {e}\n")
        return EXIT_TROUBLE
    except OSError as e:
        if isinstance(e, BrokenPipeError):
            raise
        err.write(f"tfckpt: {e}\n")
        return EXIT_TROUBLE


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Console entry point (also of ``python -m tfckpt`` and
    ``python -m tfckpt.inspect_checkpoint``)."""
    # Behave like a Unix tool in a pipe: `tfckpt dump X | head` ends quietly, the process
    # ended by SIGPIPE as `cat` or `grep` would be.
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        code = run(argv)
        sys.stdout.flush()
    except KeyboardInterrupt:
        sys.stderr.write("tfckpt: interrupted\n")
        code = 130
    except Exception as e:  # noqa: BLE001 - a bug: still one line, no traceback
        sys.stderr.write(f"tfckpt: internal error: {type(e).__name__}: {e}\n")
        code = EXIT_TROUBLE
    sys.exit(code)


if __name__ == "__main__":
    main()
