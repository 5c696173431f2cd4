"""What csrc/bindings.cc does between Python and the native core, done here for the twin.

Arguments are taken as the native functions take them (keys as str or bytes, file names as
str, bytes or os.PathLike, any buffer, unsigned integers range-checked), and ``Index``
returns the same named rows: tuples whose items also have names, so callers may unpack them
by position or read them by field.
"""

from __future__ import annotations

import os
from collections import namedtuple

from .coding import _U32, _U64

#: ``Index.header``: the bundle header (FORMAT.md 3); endianness 0 little, 1 big.
HeaderRow = namedtuple(
    "HeaderRow", ["num_shards", "endianness", "producer", "min_consumer", "bad_consumers"]
)
#: ``Index.entry(key)``: a decoded BundleEntryProto (FORMAT.md 4); crc32c masked, as stored;
#: slices as [(start, length), ...] per stored slice, length -1 the whole dimension.
EntryRow = namedtuple(
    "EntryRow", ["dtype", "shape", "shard_id", "offset", "size", "crc32c", "slices", "num_elements"]
)
#: ``Index.listing()``: one per listed key; error None for a decodable entry.
ListingRow = namedtuple(
    "ListingRow", ["key", "dtype", "shape", "size", "num_elements", "error", "partitioned"]
)
#: ``Index.totals()``: listed keys, their elements where decodable, listed keys with a bad
#: entry, listed partitioned keys, {dtype: listed keys}, and the bytes of every decodable
#: unpartitioned entry (slice entries included): what the data shards must hold at least.
TotalsRow = namedtuple(
    "TotalsRow", ["keys", "elements", "bad", "partitioned", "dtype_counts", "data_bytes"]
)


def _bytes_view(data) -> memoryview:
    """A flat unsigned-byte view of any buffer (bytes, bytearray, memoryview, mmap, numpy)."""
    mv = data if isinstance(data, memoryview) else memoryview(data)
    if mv.format != "B" or mv.ndim != 1:
        mv = mv.cast("B")
    return mv


def _buffer_bytes(buffer) -> bytes:
    if isinstance(buffer, bytes):
        return buffer
    return _bytes_view(buffer).tobytes()


def _check_u32(value: int, what: str) -> int:
    if not isinstance(value, int) or not 0 <= value <= _U32:
        raise TypeError(f"{what} must be an unsigned 32-bit integer, not {value!r}")
    return value


def _check_count(n) -> int:
    if not isinstance(n, int) or not 0 <= n <= _U64:
        raise TypeError(f"n must be an unsigned 64-bit integer, not {n!r}")
    return n


def _key_bytes(key) -> bytes:
    if isinstance(key, bytes):
        return key
    if isinstance(key, str):
        return key.encode("utf-8", "surrogateescape")
    raise TypeError("a checkpoint key must be str or bytes")


def _key_text(key) -> str:
    return _key_bytes(key).decode("utf-8", "surrogateescape")


def _path_text(path) -> str:
    """A file name (str, bytes or os.PathLike) as text, names that are not UTF-8 included."""
    return os.fsdecode(os.fspath(path))


def _path_display(path) -> str:
    """A file name as the native core's messages show it: bytes that are not UTF-8 as \\xNN."""
    return os.fsencode(os.fspath(path)).decode("utf-8", "backslashreplace")
