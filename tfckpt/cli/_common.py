"""What every subcommand shares: exit statuses, usage errors, and output manners.

The command behaves like a Unix tool: exit 0 all is well, 1 damage found (or, for ``diff``,
a difference), 2 usage or I/O error; names are escaped on a terminal; progress is drawn only
on a terminal, so pipes and logs get clean output.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import re
import sys
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Sequence, TextIO, Tuple

EXIT_OK, EXIT_DAMAGE, EXIT_TROUBLE = 0, 1, 2
#: ``diff``'s status for "the checkpoints differ", as diff(1).
EXIT_DIFFERENT = 1


class UsageError(Exception):
    """A mistake in how the command was called."""


def error_stream(args: argparse.Namespace) -> TextIO:
    """Where a subcommand writes its messages: the `err` given to ``run``, else stderr."""
    return getattr(args, "err", None) or sys.stderr


# -- formatting -------------------------------------------------------------------------


def format_shape(shape: Sequence[int]) -> str:
    """``[5,3]``, ``[]`` for a scalar, as TensorFlow's debug strings write shapes."""
    return "[" + ",".join(str(d) for d in shape) + "]"


def format_bytes(n: float) -> str:
    """A byte count for people: ``512 B``, ``1.5 KiB``, ... ``3.0 TiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def printable(text: str, keep_newlines: bool = False) -> str:
    """`text` safe for a terminal: invalid UTF-8 and control characters as escapes (as ls
    does), so a hostile key or path cannot clear the screen, set the window title, move the
    cursor or forge lines. The one escaping of human output; JSON output stays exact.
    `keep_newlines` for a multi-line message of tfckpt's own (each line still escaped)."""
    if keep_newlines:
        return "\n".join(printable(line) for line in text.split("\n"))
    raw = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in raw
    )


def open_checkpoint(path: str, args: Optional[argparse.Namespace] = None) -> Any:
    """A reader of `path`: what ``tfckpt.open`` takes, or an ``ARCHIVE!/MEMBER`` location
    as ``tfckpt scan`` prints it; a URL within the bounds of `args`'s remote options
    (:func:`add_remote_options`)."""
    import tfckpt

    if "!/" in path and "://" not in path:
        from tfckpt.scanning import open_location

        return open_location(path)
    if args is not None and hasattr(args, "timeout"):
        return tfckpt.open(
            path,
            storage_options=storage_options(args.storage_option),
            limits=remote_limits(args),
        )
    return tfckpt.open(path)


def write_json(doc: Any, out: TextIO) -> None:
    """`doc` as indented JSON and a newline: the ``--json`` output of every subcommand."""
    json.dump(doc, out, indent=1)
    out.write("\n")


def write_report(report: Any, as_json: bool, out: TextIO) -> None:
    """A tool's report (``to_json()`` and ``describe()``): as JSON, or in words."""
    if as_json:
        write_json(report.to_json(), out)
    else:
        out.write(printable(report.describe(), keep_newlines=True) + "\n")


# -- arguments --------------------------------------------------------------------------


def pairs(values: Optional[Sequence[str]], flag: str) -> List[Tuple[str, str]]:
    """``A=B`` arguments split at the first ``=``."""
    out = []
    for v in values or ():
        a, sep, b = v.partition("=")
        if not sep or not a:
            raise UsageError(f"{flag} takes LEFT=RIGHT, got {v!r}")
        out.append((a, b))
    return out


def storage_options(values: Sequence[str]) -> Dict[str, object]:
    """``--storage-option K=V`` arguments as fsspec options, V parsed as JSON where it can
    be (``anon=true`` is the boolean)."""
    options: Dict[str, object] = {}
    for kv in values:
        k, sep, v = kv.partition("=")
        if not sep or not k:
            raise UsageError(f"--storage-option '{kv}' is not in the form K=V")
        try:
            options[k] = json.loads(v)
        except ValueError:
            options[k] = v
    return options


# -- URLs: fsspec options and the bounds of remote reads (tfckpt.remote.RemoteLimits) ----


def byte_size(text: str) -> int:
    """``1073741824``, ``256M``, ``1G``, ``64KiB``: a byte count (K, M, G, T are powers of
    1024), for an argparse ``type``."""
    m = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)(?:i?B)?\s*", text, re.I)
    if not m:
        raise argparse.ArgumentTypeError(f"not a byte count: {text!r} (e.g. 256M, 1G)")
    return int(m.group(1)) << (10 * " KMGT".index(m.group(2).upper() or " "))


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not value > 0:
            raise argparse.ArgumentTypeError(f"must be a positive number: {text!r}")
        return value

    return parse


def add_remote_options(parser: Any, walk: bool = False) -> None:
    """The options of reading URLs: fsspec's storage options, and the bounds of every
    request (with `walk`, those of walking a tree too)."""
    from tfckpt.remote import RemoteLimits

    d = RemoteLimits()
    g = parser.add_argument_group("URLs (s3://, gs://, http(s)://)")
    g.add_argument(
        "--storage-option",
        action="append",
        default=[],
        metavar="K=V",
        help="fsspec storage option for URLs (repeatable; V parsed as JSON "
        "where it can be, e.g. anon=true)",
    )
    g.add_argument(
        "--timeout",
        type=_positive(float),
        default=d.timeout,
        metavar="SECONDS",
        help="seconds one request may take, whole answer included (default: %(default)g)",
    )
    g.add_argument(
        "--deadline",
        type=_positive(float),
        default=d.deadline,
        metavar="SECONDS",
        help="seconds one fetch may take with its retries"
        + ("; in a scan, one checkpoint" if walk else "")
        + " (default: %(default)g)",
    )
    g.add_argument(
        "--retries",
        type=_positive(int),
        default=d.attempts,
        metavar="N",
        help="attempts of a request the server fails (5xx, timeouts; default: %(default)s)",
    )
    g.add_argument(
        "--max-index-size",
        type=byte_size,
        default=d.max_index_bytes,
        metavar="BYTES",
        help="largest index (or V1 file) fetched into memory, e.g. 256M (default: 1G)",
    )
    if walk:
        g.add_argument(
            "--max-depth",
            type=int,
            default=d.max_depth,
            metavar="N",
            help="directory levels walked below a URL (default: %(default)s)",
        )
        g.add_argument(
            "--max-entries",
            type=_positive(int),
            default=d.max_entries,
            metavar="N",
            help="directory entries listed under a URL (default: %(default)s)",
        )


def remote_limits(args: argparse.Namespace) -> Any:
    """The RemoteLimits of the options :func:`add_remote_options` added."""
    from tfckpt.remote import RemoteLimits

    extra = {}
    if hasattr(args, "max_depth"):
        if args.max_depth < 0:
            raise UsageError("--max-depth must be 0 or more")
        extra = {"max_depth": args.max_depth, "max_entries": args.max_entries}
    if args.max_index_size < 1:
        raise UsageError("--max-index-size must be at least 1 byte")
    return RemoteLimits(
        timeout=args.timeout,
        deadline=args.deadline,
        attempts=args.retries,
        max_index_bytes=args.max_index_size,
        **extra,
    )


# -- numpy print options ----------------------------------------------------------------


@contextlib.contextmanager
def printoptions(options: Sequence[str]) -> Iterator[None]:
    """Applies ``k=v`` numpy print options (inspect_checkpoint's --printoptions) for the
    duration of a command, then restores numpy's own (so ``run()`` called in-process leaves
    no global state behind)."""
    if not options:
        yield
        return
    import numpy as np

    with np.printoptions():
        _set_printoptions(options)
        yield


def _set_printoptions(options: Sequence[str]) -> None:
    import numpy as np

    current: Dict[str, Any] = dict(np.get_printoptions())
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
        setting: Dict[str, Any] = {k: value}
        np.set_printoptions(**setting)


def _absl_bool(v: str) -> bool:
    """A boolean as absl's BooleanParser (used by inspect_checkpoint) reads one."""
    if v.lower() in ("true", "t", "1"):
        return True
    if v.lower() in ("false", "f", "0"):
        return False
    raise ValueError(f"Non-boolean argument to boolean flag: {v!r}")


# -- progress ---------------------------------------------------------------------------


class Progress:
    """One status line on stderr, drawn by tqdm: at the start, then at most ten times a
    second, and when the total is reached; only when stderr is a terminal (a pipe or a log
    gets no control characters), and cleared at the end.

    With a `total` (bytes), the line shows the share done and the rate in bytes; without
    one, the records counted, how many had errors, and the rate in records. Each drawing
    is cleared to the end of the line, so a shorter line leaves nothing of a longer one.
    """

    def __init__(
        self, label: str, stream: Optional[TextIO] = None, total: Optional[int] = None
    ) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.label = label
        self.total = None if total is None else max(total, 1)
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.done = self.errors = 0
        self._bar: Any = _tqdm_line(label, self.stream, self.total) if self.enabled else None

    def update(self, n: int = 1, ok: bool = True) -> None:
        """Counts `n` more bytes (with a total) or records, `ok` False for one in error."""
        self.done += n
        self.errors += not ok
        if self._bar is None:
            return
        self._bar.errors = self.errors
        self._bar.update(n)
        if self.total is not None and self.done >= self.total:
            self._bar.refresh()  # the last state is always shown

    def close(self) -> None:
        """Clears the line, so what follows starts on a clean one."""
        if self._bar is not None:
            self._bar.close()  # leave=False: tqdm clears the line and returns to its start
            self._bar = None
            self.stream.write("\033[K")
            self.stream.flush()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@functools.lru_cache(maxsize=None)
def _line_class() -> Any:
    """tqdm's bar, drawn as :class:`Progress` draws it (imported when a line is drawn)."""
    from tqdm import tqdm

    class _Line(tqdm):
        @staticmethod
        def status_printer(file: Any) -> Any:
            # tqdm pads a shorter line with spaces; clearing to the end of the line works
            # whatever the terminal did to the last one.
            def print_status(s: str) -> None:
                file.write(f"\r{s}\033[K")
                file.flush()

            return print_status

        @property
        def format_dict(self) -> Dict[str, Any]:
            # Byte counts as the rest of the command writes them (format_bytes).
            d = super().format_dict
            rate = d["n"] / d["elapsed"] if d["elapsed"] > 0 else 0.0
            d.update(
                errors=getattr(self, "errors", 0),
                record_rate=f"{rate:.1f}/s",
                done_bytes=format_bytes(d["n"]),
                total_bytes=format_bytes(d["total"] or 0),
                byte_rate=format_bytes(int(rate)),
            )
            return d

    return _Line


def _tqdm_line(label: str, stream: TextIO, total: Optional[int]) -> Any:
    """A tqdm bar of one line on `stream`, in the formats :class:`Progress` shows."""
    # A terminal that does not tell its size (a fresh pseudo-terminal says 0 x 0) still
    # gets the line: tqdm would otherwise cut it to nothing, or not draw it at all.
    size = {} if _terminal_sized(stream) else {"ncols": 100, "nrows": 24}
    common: Dict[str, Any] = dict(
        file=stream, desc=label, mininterval=0.1, leave=False, dynamic_ncols=False, **size
    )
    if total is None:
        fmt = "{desc}: {n} records, {errors} with errors, {record_rate}"
        return _line_class()(bar_format=fmt, **common)
    fmt = "{desc}: {percentage:5.1f}%  {done_bytes} / {total_bytes}  {byte_rate}/s"
    return _line_class()(total=total, bar_format=fmt, **common)


def _terminal_sized(stream: TextIO) -> bool:
    """Whether the terminal behind `stream` tells its size."""
    import os

    try:
        size = os.get_terminal_size(stream.fileno())
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return False
    return size.columns > 0 and size.lines > 0


def byte_progress(args: argparse.Namespace, label: str, path: Any) -> Progress:
    """A progress line over the data bytes of the checkpoint at `path` (a line without a
    total when it cannot be opened here: the command itself then says why)."""
    total: Optional[int] = None
    if getattr(error_stream(args), "isatty", lambda: False)():
        import tfckpt

        try:
            with open_checkpoint(path) as reader:
                total = reader.summary()[5]
        except (tfckpt.CheckpointError, OSError, ValueError):
            total = None
    return Progress(label, error_stream(args), total=total)


class RunCheckpoint(NamedTuple):
    """One checkpoint of a run, as ``tfckpt.scan`` found it."""

    step: Optional[int]
    location: str
    bytes: int  # its files' bytes (for a progress line)
    error: Optional[str]  # why it cannot be read, None when it can


def run_checkpoints(run_dir: str) -> List[RunCheckpoint]:
    """Every checkpoint ``tfckpt.scan`` finds under `run_dir`, in the order of a training
    run (by step, unknown steps last, then by location). A usage error when there is none."""
    import tfckpt

    found = [
        RunCheckpoint(r.step, r.location, r.bytes or 0, None if r.ok else (r.error or "error"))
        for r in tfckpt.scan(run_dir)
        if r.record == "checkpoint"
    ]
    if not found:
        raise UsageError(f"{run_dir}: no checkpoint found")
    return sorted(found, key=lambda c: (c.step is None, c.step or 0, c.location))
