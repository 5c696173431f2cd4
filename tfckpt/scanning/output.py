"""Writing records as they come: JSON lines, CSV, Parquet, or a table for people."""

from __future__ import annotations

import csv
import json
import os
from typing import IO, Any, Callable, Dict, List, Optional, Sequence, Union, cast

from .records import CHECKPOINT_FIELDS, KEY_FIELDS, STATS_FIELDS, KeyRecord, Record

__all__ = ["FORMATS", "record_writer", "RecordWriter"]

AnyRecord = Union[Record, KeyRecord]

#: The formats :func:`record_writer` writes.
FORMATS = ("table", "jsonl", "csv", "parquet")


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v, separators=(",", ":"), sort_keys=isinstance(v, dict))
    return str(v)


class RecordWriter:
    """Writes records as they come (``write``), then finishes the output (``close``)."""

    def write(self, rec: AnyRecord) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Finishes the output; a stream is left open for its owner to close."""


class _JsonlWriter(RecordWriter):
    def __init__(self, out: IO[str], columns: Sequence[str]) -> None:
        self.out, self.columns = out, columns

    def write(self, rec: AnyRecord) -> None:
        self.out.write(json.dumps(rec.to_dict(self.columns), ensure_ascii=False) + "\n")


class _CsvWriter(RecordWriter):
    def __init__(self, out: IO[str], columns: Sequence[str]) -> None:
        self.columns = columns
        self.w = csv.writer(out, lineterminator="\n")
        self.w.writerow(columns)

    def write(self, rec: AnyRecord) -> None:
        self.w.writerow([_cell(getattr(rec, c, None)) for c in self.columns])


class _ParquetWriter(RecordWriter):
    """Parquet through pyarrow, written in row groups as records arrive."""

    _BATCH = 4096

    def __init__(self, path: str, columns: Sequence[str]) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ImportError(
                "--format parquet needs pyarrow, which is not installed: "
                "pip install pyarrow (or tfckpt[parquet])"
            ) from None
        self.pa = pa
        types = {
            "keys": pa.int64(),
            "parameters": pa.int64(),
            "bytes": pa.int64(),
            "shards": pa.int64(),
            "step": pa.int64(),
            "checkpoints": pa.int64(),
            "nonfinite": pa.int64(),
            "l2": pa.float64(),
            "shard": pa.int64(),
            "offset": pa.int64(),
            "partitioned": pa.bool_(),
            "dtypes": pa.map_(pa.string(), pa.int64()),
            "shape": pa.list_(pa.int64()),
        }
        self.columns = columns
        self.schema = pa.schema([(c, types.get(c, pa.string())) for c in columns])
        self.writer = pq.ParquetWriter(path, self.schema)
        self.rows: List[Dict[str, Any]] = []

    def write(self, rec: AnyRecord) -> None:
        d = rec.to_dict(self.columns)
        if d.get("dtypes") is not None:
            d["dtypes"] = list(d["dtypes"].items())
        self.rows.append(d)
        if len(self.rows) >= self._BATCH:
            self._flush()

    def _flush(self) -> None:
        if self.rows:
            self.writer.write_table(self.pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows = []

    def close(self) -> None:
        self._flush()
        self.writer.close()


def _human_bytes(n: Optional[int]) -> str:
    if n is None:
        return "-"
    size: float = n
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"  # pragma: no cover


class _TableWriter(RecordWriter):
    """A readable table, streamed: fixed-width columns, the variable-width ones last."""

    def __init__(
        self, out: IO[str], columns: Sequence[str], escape: Optional[Callable[[str], str]] = None
    ) -> None:
        self.out = out
        self.escape = escape or (lambda text: text)
        self.keys_view = "key" in columns
        self.stats = "l2" in columns
        if self.keys_view:
            out.write(
                f"{'STATUS':<6}  {'DTYPE':<10} {'SHAPE':<18} {'PARAMETERS':>12} "
                f"{'BYTES':>10}  LOCATION  KEY\n"
            )
        else:
            extra = f" {'NONFINITE':>9} {'L2':>10}" if self.stats else ""
            out.write(
                f"{'STATUS':<6}  {'KIND':<12} {'KEYS':>6} {'PARAMETERS':>13} "
                f"{'BYTES':>10} {'SHARDS':>6} {'STEP':>10}{extra}  LOCATION\n"
            )

    def write(self, rec: Any) -> None:  # a Record or a KeyRecord
        status = "ok" if rec.ok else "ERROR"
        esc = self.escape
        if rec.record == "key":
            shape = "[" + ",".join(str(d) for d in rec.shape or []) + "]"
            line = (
                f"{status:<6}  {rec.dtype or '-':<10} {shape:<18} "
                f"{rec.parameters if rec.parameters is not None else '-':>12} "
                f"{_human_bytes(rec.bytes):>10}  {esc(rec.location)}  {esc(rec.key)}"
            )
        elif rec.record == "checkpoint":
            step = "-" if rec.step is None else str(rec.step)
            line = (
                f"{status:<6}  {rec.kind or '-':<12} "
                f"{rec.keys if rec.keys is not None else '-':>6} "
                f"{rec.parameters if rec.parameters is not None else '-':>13} "
                f"{_human_bytes(rec.bytes):>10} "
                f"{rec.shards if rec.shards is not None else '-':>6} {step:>10}"
                f"{self._stats_cells(rec)}  {esc(rec.location)}"
            )
            if rec.dtypes:
                line += "  (" + ", ".join(f"{k} x{v}" for k, v in rec.dtypes.items()) + ")"
        else:
            what = "state file" if rec.record == "state" else "path"
            blank = f" {'':>9} {'':>10}" if self.stats else ""
            line = (
                f"{status:<6}  {what:<12} {'':>6} {'':>13} {'':>10} {'':>6} {'':>10}{blank}  "
                f"{esc(rec.location)}"
            )
            if rec.latest:
                line += f"  latest: {esc(rec.latest)}"
        if rec.error:
            line += f"\n        error: {esc(rec.error)}"
        self.out.write(line + "\n")

    def _stats_cells(self, rec: Any) -> str:
        if not self.stats:
            return ""
        bad = "-" if rec.nonfinite is None else str(rec.nonfinite)
        l2 = "-" if rec.l2 is None else f"{rec.l2:.4g}"
        return f" {bad:>9} {l2:>10}"


_STREAM_WRITERS = {"jsonl": _JsonlWriter, "csv": _CsvWriter, "table": _TableWriter}


def record_writer(
    fmt: str,
    out: Union[IO[str], str, "os.PathLike[str]"],
    *,
    keys: bool = False,
    escape: Optional[Callable[[str], str]] = None,
    stats: bool = False,
) -> RecordWriter:
    """A writer for records in `fmt` (one of :data:`FORMATS`): ``write(record)`` as they
    come, then ``close()``. `out` is a text stream, or a file path for ``parquet``.
    `escape` makes names safe in the ``table`` for people (the command passes its
    terminal escaping); the machine formats stay exact. `stats` adds the
    :data:`STATS_FIELDS` columns to the per-checkpoint view."""
    columns = KEY_FIELDS if keys else CHECKPOINT_FIELDS + (STATS_FIELDS if stats else ())
    if fmt == "table":
        return _TableWriter(cast(IO[str], out), columns, escape)
    if fmt in _STREAM_WRITERS:
        return _STREAM_WRITERS[fmt](cast(IO[str], out), columns)
    if fmt == "parquet":
        if not isinstance(out, (str, os.PathLike)):
            raise ValueError("parquet output needs a file path (--output FILE)")
        return _ParquetWriter(os.fspath(out), columns)
    raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
