"""The pure-Python twin of the native core: the read side of ``tfckpt._native`` in Python.

Written from FORMAT.md (sections 2-6), not translated from csrc/: the same names, the same
results and the same error classes on the same inputs, so the two can be checked against each
other (tests/test_pycore.py, fuzz/differential.py) and so tfckpt reads checkpoints where the
extension cannot be built.  ``tfckpt.implementation`` says which one is in use; the environment
variable ``TFCKPT_IMPLEMENTATION=python`` forces this one.

It is slow (CRC32C runs at about 20 MB/s) but bounded like the native parser: every length is
checked against the bytes that hold it before anything is allocated, keys may expand to at most
32 x the file size + 1 MiB, data blocks may not overlap or repeat, Snappy output is capped.

Writing checkpoints (``BundleWriter``) needs the native extension; ``build_table`` and
``serialize_entry`` are here because tests and tools build small tables with them.
"""

from __future__ import annotations

import errno
import mmap
import os
import stat
import struct
import sys
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from .errors import (
    ChecksumMismatchError,
    CorruptCheckpointError,
    KeyNotFoundError,
)

__all__ = [
    "crc32c", "crc32c_portable", "crc32c_implementation", "mask_crc", "unmask_crc",
    "dtype_sizes", "snappy_decompress", "slice_key", "decode_slice_key", "decode_strings",
    "decode_variants", "read_table", "build_table", "serialize_entry", "MappedFile", "Index",
    "BundleWriter",
]

_U32 = 0xFFFFFFFF
_U64 = (1 << 64) - 1
_I64_MAX = (1 << 63) - 1
_MAX_DIMS = 254  # TensorShape::MaxDimensions (FORMAT.md 4.2)

# ---------------------------------------------------------------------------------------------
# CRC32C (FORMAT.md 2.9): reflected Castagnoli polynomial, slicing-by-8 tables.

#: The CRC32C implementation of this module.
crc32c_implementation = "python"

_POLY = 0x82F63B78


def _crc_tables() -> List[List[int]]:
    t0 = []
    for byte in range(256):
        c = byte
        for _ in range(8):
            c = (c >> 1) ^ _POLY if c & 1 else c >> 1
        t0.append(c)
    tables = [t0]
    for _ in range(7):
        prev = tables[-1]
        tables.append([(prev[b] >> 8) ^ t0[prev[b] & 0xFF] for b in range(256)])
    return tables


_T = _crc_tables()


def _bytes_view(data) -> memoryview:
    """A flat unsigned-byte view of any buffer (bytes, bytearray, memoryview, mmap, numpy)."""
    mv = data if isinstance(data, memoryview) else memoryview(data)
    if mv.format != "B" or mv.ndim != 1:
        mv = mv.cast("B")
    return mv


def _check_u32(value: int, what: str) -> int:
    if not isinstance(value, int) or not 0 <= value <= _U32:
        raise TypeError(f"{what} must be an unsigned 32-bit integer, not {value!r}")
    return value


def crc32c(data, crc: int = 0) -> int:
    """CRC-32C of `data` extending `crc` (the CRC of preceding bytes)."""
    _check_u32(crc, "crc")
    mv = _bytes_view(data)
    t0, t1, t2, t3, t4, t5, t6, t7 = _T
    n8 = len(mv) & ~7
    state = crc ^ _U32
    for (q,) in struct.iter_unpack("<Q", mv[:n8]):
        q ^= state
        state = (t7[q & 0xFF] ^ t6[(q >> 8) & 0xFF] ^ t5[(q >> 16) & 0xFF]
                 ^ t4[(q >> 24) & 0xFF] ^ t3[(q >> 32) & 0xFF] ^ t2[(q >> 40) & 0xFF]
                 ^ t1[(q >> 48) & 0xFF] ^ t0[q >> 56])
    for b in mv[n8:]:
        state = t0[(state ^ b) & 0xFF] ^ (state >> 8)
    return state ^ _U32


#: There is only one implementation here; the name exists so the API matches the native one.
crc32c_portable = crc32c

_MASK_DELTA = 0xA282EAD8


def mask_crc(crc: int) -> int:
    """Rotate right by 15, add 0xa282ead8 (mod 2**32): how the format stores CRCs."""
    _check_u32(crc, "crc")
    return ((((crc >> 15) | (crc << 17)) & _U32) + _MASK_DELTA) & _U32


def unmask_crc(masked: int) -> int:
    _check_u32(masked, "masked")
    r = (masked - _MASK_DELTA) & _U32
    return ((r >> 17) | (r << 15)) & _U32


# ---------------------------------------------------------------------------------------------
# dtypes (FORMAT.md 4.4): bytes per element in a data file; 0 string/variant, -1 not storable.

dtype_sizes: List[int] = [
    -1, 4, 8, 4, 1, 2, 1, 0, 8, 8,   # invalid float double int32 uint8 int16 int8 string c64 i64
    1, 1, 1, 4, 2, 2, 2, 2, 16, 2,    # bool qint8 quint8 qint32 bf16 qint16 quint16 u16 c128 half
    -1, 0, 4, 8,                      # resource variant uint32 uint64
    1, 1, 1, 1, 1,                    # the float8 family
    1, 1, 1, 1, 1,                    # int4 uint4 int2 uint2 float4_e2m1fn (one byte each)
]

# ---------------------------------------------------------------------------------------------
# Primitive decoding (FORMAT.md 2.2).  Decoders raise _Malformed; callers turn it into a
# tfckpt error that names the file and the place.


class _Malformed(Exception):
    """Internal: bytes that do not decode.  Never leaves this module."""


def _varint(b, p: int, end: int, max_bytes: int = 10) -> Tuple[int, int]:
    """(value, position after it) of the LEB128 varint at b[p:end].

    Like LevelDB's and TensorFlow's decoders: a varint64 (10 bytes at most) keeps the low 64
    bits of what its bytes say, a varint32 (5 bytes at most) the low 32 bits."""
    result = 0
    shift = 0
    stop = min(end, p + max_bytes)
    while p < stop:
        byte = b[p]
        p += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & (_U32 if max_bytes == 5 else _U64), p
        shift += 7
    raise _Malformed("truncated or overlong varint")


def _int32(v: int) -> int:
    v &= _U32
    return v - (1 << 32) if v >> 31 else v


def _int64(v: int) -> int:
    v &= _U64
    return v - (1 << 64) if v >> 63 else v


def _fixed32(b, p: int) -> int:
    return b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)


def _printable(key: bytes, limit: int = 200) -> str:
    """Key bytes for a message: printable ASCII kept, every other byte as \\xNN."""
    out = []
    for c in key[:limit]:
        out.append(chr(c) if 0x20 <= c < 0x7F and c != 0x5C else f"\\x{c:02x}")
    text = "".join(out)
    return text + "..." if len(key) > limit else text


# ---------------------------------------------------------------------------------------------
# Protobuf wire format: enough for the format's messages, read as the protobuf C++ runtime
# TensorFlow links reads them (checked against TF 2.21):
# * a field of an unexpected wire type is an unknown field and is skipped;
# * groups (wire type 3) are skipped to their matching end tag;
# * a tag is a varint of at most 5 bytes, of which the low 32 bits count;
# * messages and groups nest at most 100 deep (the recursion limit): the groups at the top of
#   a message nested d deep may nest 100 - d deep.

_RECURSION_LIMIT = 100


def _tag(b, p: int, end: int) -> Tuple[int, int, int]:
    tag = 0
    for i in range(5):
        if p >= end:
            raise _Malformed("truncated tag")
        byte = b[p]
        p += 1
        tag |= (byte & 0x7F) << (7 * i)
        if byte < 0x80:
            tag &= _U32
            if tag >> 3 == 0:
                raise _Malformed("field number 0")
            return tag >> 3, tag & 7, p
    raise _Malformed("a tag longer than 5 bytes")


def _skip_scalar(b, p: int, end: int, wire_type: int) -> int:
    if wire_type == 0:
        return _varint(b, p, end)[1]
    if wire_type == 1:
        if end - p < 8:
            raise _Malformed("truncated fixed64")
        return p + 8
    if wire_type == 2:
        n, p = _varint(b, p, end)
        if n > end - p:
            raise _Malformed("length-delimited field runs past its message")
        return p + n
    if wire_type == 5:
        if end - p < 4:
            raise _Malformed("truncated fixed32")
        return p + 4
    raise _Malformed(f"wire type {wire_type} where a field was expected")


def _skip_group(b, p: int, end: int, field: int, depth: int) -> int:
    """The position after the group of `field` starting at p, in a message `depth` deep."""
    open_groups = [field]
    if depth + 1 > _RECURSION_LIMIT:
        raise _Malformed("groups nested too deeply")
    while open_groups:
        f, wt, p = _tag(b, p, end)
        if wt == 3:
            if depth + len(open_groups) + 1 > _RECURSION_LIMIT:
                raise _Malformed("groups nested too deeply")
            open_groups.append(f)
        elif wt == 4:
            if f != open_groups[-1]:
                raise _Malformed("end-group tag does not match its group")
            open_groups.pop()
        else:
            p = _skip_scalar(b, p, end, wt)
    return p


def _fields(b, p: int, end: int, depth: int) -> Iterator[Tuple[int, int, object]]:
    """(field, wire type, value) of each field of the message b[p:end], which is nested
    `depth` deep (0: a top-level message), in order.

    Values: wire type 0 an int (low 64 bits), 5 an int, 2 a (start, end) span of b,
    1 and 3 (skipped) None."""
    while p < end:
        field, wt, p = _tag(b, p, end)
        if wt == 0:
            v, p = _varint(b, p, end)
            yield field, 0, v
        elif wt == 2:
            n, p = _varint(b, p, end)
            if n > end - p:
                raise _Malformed("length-delimited field runs past its message")
            yield field, 2, (p, p + n)
            p += n
        elif wt == 5:
            if end - p < 4:
                raise _Malformed("truncated fixed32")
            v = _fixed32(b, p)
            p += 4
            yield field, 5, v
        elif wt == 1:
            if end - p < 8:
                raise _Malformed("truncated fixed64")
            p += 8
            yield field, 1, None
        elif wt == 3:
            p = _skip_group(b, p, end, field, depth)
            yield field, 3, None
        else:
            raise _Malformed(f"wire type {wt} where a field was expected")


# ---------------------------------------------------------------------------------------------
# Raw Snappy (FORMAT.md 2.8): varint32 length, then literals and copies.


def _snappy(b, max_output: int) -> bytes:
    n = len(b)
    declared = 0
    used = 0
    for i in range(5):
        if i >= n:
            raise _Malformed("bad length preamble")
        byte = b[i]
        if i == 4 and byte > 0x0F:
            raise _Malformed("bad length preamble")
        declared |= (byte & 0x7F) << (7 * i)
        if byte < 0x80:
            used = i + 1
            break
    if declared > max_output:
        raise _Malformed("declared length exceeds limit")
    ip = used
    # No element yields more than 64 bytes from 3 input bytes: a longer claim is a lie.
    if declared > (n - ip) * 22:
        raise _Malformed("declared length too large for input")
    out = bytearray()
    while ip < n:
        tag = b[ip]
        ip += 1
        room = declared - len(out)
        kind = tag & 3
        if kind == 0:  # literal
            length = tag >> 2
            if length >= 60:
                extra = length - 59
                if n - ip < extra:
                    raise _Malformed("truncated literal length")
                length = int.from_bytes(b[ip:ip + extra], "little")
                ip += extra
            length += 1
            if length > n - ip:
                raise _Malformed("truncated literal")
            if length > room:
                raise _Malformed("literal exceeds declared length")
            out += b[ip:ip + length]
            ip += length
            continue
        if kind == 1:
            if n - ip < 1:
                raise _Malformed("truncated copy")
            length = ((tag >> 2) & 7) + 4
            offset = ((tag >> 5) << 8) | b[ip]
            ip += 1
        elif kind == 2:
            if n - ip < 2:
                raise _Malformed("truncated copy")
            length = (tag >> 2) + 1
            offset = b[ip] | (b[ip + 1] << 8)
            ip += 2
        else:
            if n - ip < 4:
                raise _Malformed("truncated copy")
            length = (tag >> 2) + 1
            offset = _fixed32(b, ip)
            ip += 4
        if offset == 0 or offset > len(out):
            raise _Malformed("copy offset out of range")
        if length > room:
            raise _Malformed("copy exceeds declared length")
        start = len(out) - offset
        if offset >= length:
            out += out[start:start + length]
        else:  # the copy overlaps its own output: a repeated pattern
            pattern = bytes(out[start:])
            out += (pattern * (length // offset + 1))[:length]
    if len(out) != declared:
        raise _Malformed("output length mismatch")
    return bytes(out)


def snappy_decompress(data, max_output: int) -> bytes:
    """The raw Snappy stream `data` decompressed, refusing more than `max_output` bytes."""
    if not isinstance(max_output, int) or max_output < 0:
        raise TypeError(f"max_output must be a non-negative int, not {max_output!r}")
    try:
        return _snappy(_bytes_view(data).tobytes(), max_output)
    except _Malformed as e:
        raise CorruptCheckpointError(f"corrupted compressed block contents ({e})") from None


# ---------------------------------------------------------------------------------------------
# The table (FORMAT.md 2): footer, block handles, blocks with restart points, trailers.

_MAGIC = 0xDB4775248B80FB57
_FOOTER = 48
_TRAILER = 5


class _Table:
    """Every block of a table file read and checked; `entries` are (key, value) pairs."""

    def __init__(self, data: bytes, name: str) -> None:
        self.name = name
        self.entries: List[Tuple[bytes, bytes]] = []
        self.data_blocks = 0
        self.snappy_blocks = 0
        size = len(data)
        if size < _FOOTER:
            raise CorruptCheckpointError(
                f"{name}: file is too short to be an sstable ({size} bytes; a table ends in a "
                f"{_FOOTER}-byte footer)")
        footer = size - _FOOTER
        if int.from_bytes(data[footer + 40:size], "little") != _MAGIC:
            raise CorruptCheckpointError(f"{name}: not an sstable (bad magic number)")
        try:
            mo, p = _varint(data, footer, footer + 40)
            ms, p = _varint(data, p, footer + 40)
            io, p = _varint(data, p, footer + 40)
            isz, p = _varint(data, p, footer + 40)
        except _Malformed:
            raise CorruptCheckpointError(f"{name}: bad block handle in the footer") from None
        self.metaindex_handle = (mo, ms)
        self.index_handle = (io, isz)
        self._key_bytes = 0
        self._key_limit = size * 32 + (1 << 20)

        index_entries: List[Tuple[bytes, bytes]] = []
        # Each index entry names a data block, and data blocks do not overlap: each takes at
        # least its 5-byte trailer, which bounds the entries even of a Snappy index block.
        self._parse_block(self._read_block(data, io, isz, "index block"), "index block",
                          index_entries, False, size // _TRAILER + 1)
        next_free = 0  # data blocks follow one another: one pass over the file at most
        for sep, value in index_entries:
            try:
                off, q = _varint(value, 0, len(value))
                bsize, q = _varint(value, q, len(value))
            except _Malformed:
                raise CorruptCheckpointError(
                    f'{name}: bad block handle in the index block (key "{_printable(sep)}")'
                ) from None
            if off < next_free:
                raise CorruptCheckpointError(
                    f"{name}: data block at offset {off}, size {bsize} overlaps or precedes "
                    "the previous block")
            block = self._read_block(data, off, bsize, "data block")
            next_free = off + bsize + _TRAILER
            # Keys increase strictly across the whole table: checked as they are decoded.
            self._parse_block(block, "data block", self.entries, True, None)
            self.data_blocks += 1

    def _read_block(self, data: bytes, off: int, size: int, what: str) -> bytes:
        name = self.name
        if off + size + _TRAILER > len(data) - _FOOTER:
            raise CorruptCheckpointError(
                f"{name}: {what} handle (offset {off}, size {size}) points past the end of "
                f"the file ({len(data)} bytes)")
        mv = memoryview(data)
        stored = unmask_crc(_fixed32(data, off + size + 1))
        if crc32c(mv[off:off + size + 1]) != stored:  # contents and the type byte
            raise ChecksumMismatchError(
                f"{name}: block checksum mismatch in {what} at offset {off}, size {size}")
        block_type = data[off + size]
        if block_type == 0:
            return data[off:off + size]
        if block_type == 1:
            try:
                # Snappy expands at most about 21x.
                block = _snappy(data[off:off + size], size * 24 + 64)
            except _Malformed as e:
                raise CorruptCheckpointError(
                    f"{name}: corrupted compressed block contents in {what} at offset {off}, "
                    f"size {size} ({e})") from None
            self.snappy_blocks += 1
            return block
        raise CorruptCheckpointError(
            f"{name}: bad block type {block_type} in {what} at offset {off}, size {size}")

    def _parse_block(self, block: bytes, what: str, out: List[Tuple[bytes, bytes]],
                     check_order: bool, max_entries: Optional[int]) -> None:
        """Appends the entries of `block` to `out`: with `check_order` each key greater than
        the one before it in `out`, at most `max_entries` in `out`."""
        name = self.name
        n = len(block)
        if n < 4:
            raise CorruptCheckpointError(f"{name}: bad block contents in {what} (too short)")
        num_restarts = _fixed32(block, n - 4)
        if num_restarts > (n - 4) // 4:
            raise CorruptCheckpointError(
                f"{name}: bad block contents in {what} ({num_restarts} restart points do not "
                f"fit in {n} bytes)")
        if num_restarts == 0:
            return  # TensorFlow reads such a block as empty
        end = n - 4 - 4 * num_restarts  # where the entries stop and the restart array starts
        if end == 0:
            return  # an empty block
        restarts = struct.unpack_from(f"<{num_restarts}I", block, end)
        if restarts[0] != 0:
            raise CorruptCheckpointError(
                f"{name}: restart array of {what} does not start at offset 0 (points at "
                f"{restarts[0]})")
        # Every restart point must be the start of an entry storing its whole key.
        p = 0
        next_restart = 0
        prev = b""
        while p < end:
            entry_at = p
            at_restart = False
            if next_restart < num_restarts:
                r = restarts[next_restart]
                if r < entry_at:
                    raise CorruptCheckpointError(
                        f"{name}: restart point {r} of {what} is not at an entry boundary")
                if r == entry_at:
                    at_restart = True
                    next_restart += 1
            try:
                shared, p = _varint(block, p, end, 5)
                unshared, p = _varint(block, p, end, 5)
                value_len, p = _varint(block, p, end, 5)
            except _Malformed:
                raise CorruptCheckpointError(
                    f"{name}: bad entry in {what} at offset {entry_at} (truncated lengths)"
                ) from None
            if shared > len(prev) or (at_restart and shared):
                raise CorruptCheckpointError(
                    f"{name}: bad entry in {what} at offset {entry_at} (shares {shared} bytes "
                    f"with a {len(prev)}-byte key{' at a restart point' if at_restart else ''})")
            if unshared + value_len > end - p:
                raise CorruptCheckpointError(
                    f"{name}: bad entry in {what} at offset {entry_at} (key or value runs past "
                    "the block)")
            self._key_bytes += shared + unshared
            if self._key_bytes > self._key_limit:
                raise CorruptCheckpointError(
                    f"{name}: keys expand to more than {self._key_limit} bytes; the index is "
                    "corrupt or hostile")
            key = prev[:shared] + block[p:p + unshared]
            p += unshared
            value = block[p:p + value_len]
            p += value_len
            if check_order and out and not out[-1][0] < key:
                raise CorruptCheckpointError(
                    f'{name}: keys are not in strictly increasing order: "{_printable(key)}" '
                    f'follows "{_printable(out[-1][0])}"')
            if max_entries is not None and len(out) >= max_entries:
                raise CorruptCheckpointError(
                    f"{name}: bad entry in {what} at offset {entry_at} (more than "
                    f"{max_entries} entries in a {n}-byte block of a table this size)")
            out.append((key, value))
            prev = key
        if next_restart != num_restarts:
            raise CorruptCheckpointError(
                f"{name}: restart point {restarts[next_restart]} of {what} points outside the "
                "entries of the block")


def _buffer_bytes(buffer) -> bytes:
    if isinstance(buffer, bytes):
        return buffer
    return _bytes_view(buffer).tobytes()


def _path_text(path) -> str:
    """A file name (str, bytes or os.PathLike) as text, names that are not UTF-8 included."""
    return os.fsdecode(os.fspath(path))


def read_table(buffer, name) -> List[Tuple[bytes, bytes]]:
    """Every (key, value) of a table file, in order, every block CRC checked."""
    return list(_Table(_buffer_bytes(buffer), _path_text(name)).entries)


# ---------------------------------------------------------------------------------------------
# Header and entries (FORMAT.md 3, 4)


def _decode_header(b: bytes, where: str) -> Tuple[int, int, int, int, List[int]]:
    num_shards = endianness = producer = min_consumer = 0
    bad: List[int] = []
    try:
        for field, wt, v in _fields(b, 0, len(b), 0):
            if wt == 0 and field == 1:
                num_shards = _int32(v)
            elif wt == 0 and field == 2:
                endianness = _int32(v)
            elif wt == 2 and field == 3:  # VersionDef
                start, stop = v
                for f2, wt2, v2 in _fields(b, start, stop, 1):
                    if wt2 == 0 and f2 == 1:
                        producer = _int32(v2)
                    elif wt2 == 0 and f2 == 2:
                        min_consumer = _int32(v2)
                    elif wt2 == 0 and f2 == 3:
                        bad.append(_int32(v2))
                    elif wt2 == 2 and f2 == 3:  # packed bad_consumers
                        q, qend = v2
                        while q < qend:
                            x, q = _varint(b, q, qend)
                            bad.append(_int32(x))
    except _Malformed:
        raise CorruptCheckpointError(f"{where}: unable to parse the bundle header") from None
    return num_shards, endianness, producer, min_consumer, bad


def _shape_text(shape: Sequence[int]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


class _Entry:
    """A decoded BundleEntryProto.  On a decode error, `error` says what is wrong and the
    fields hold what was decoded before it."""

    __slots__ = ("dtype", "shape", "shard_id", "offset", "size", "crc32c", "slices",
                 "num_elements", "error")

    def __init__(self) -> None:
        self.dtype = 0
        self.shape: List[int] = []
        self.shard_id = 0
        self.offset = 0
        self.size = 0
        self.crc32c = 0
        self.slices: List[List[Tuple[int, int]]] = []
        self.num_elements = 0
        self.error: Optional[str] = None


class _Invalid(Exception):
    """Internal: an entry that decodes to something invalid; the message is the entry's
    error text."""


def _decode_shape(b: bytes, start: int, stop: int, shape: List[int]) -> None:
    """Appends the dims of the TensorShapeProto b[start:stop] to `shape` (repeated shape
    fields merge, as protobuf does)."""
    try:
        for field, wt, v in _fields(b, start, stop, 1):
            if field == 2 and wt == 2:  # Dim
                size = 0
                try:
                    for f2, wt2, v2 in _fields(b, v[0], v[1], 2):
                        if f2 == 1 and wt2 == 0:
                            size = _int64(v2)
                except _Malformed:
                    raise _Invalid("unparseable shape dimension") from None
                if len(shape) >= _MAX_DIMS:
                    raise _Invalid(f"shape has more than {_MAX_DIMS} dimensions")
                shape.append(size)
            # Field 3, unknown_rank, is ignored: a TensorShape (unlike a PartialTensorShape)
            # ignores it, and TensorFlow 2.21 reads such an entry with the dims given.
    except _Malformed:
        raise _Invalid("unparseable shape") from None


def _decode_slice(b: bytes, start: int, stop: int) -> List[Tuple[int, int]]:
    """A TensorSliceProto as (start, length) per dimension; length -1 = the whole dimension."""
    extents: List[Tuple[int, int]] = []
    try:
        for field, wt, v in _fields(b, start, stop, 1):
            if field != 1 or wt != 2:
                continue
            begin, length = 0, None
            try:
                for f2, wt2, v2 in _fields(b, v[0], v[1], 2):
                    if f2 == 1 and wt2 == 0:
                        begin = _int64(v2)
                    elif f2 == 2 and wt2 == 0:  # in a oneof: present even when 0
                        length = _int64(v2)
            except _Malformed:
                raise _Invalid("unparseable slice extent") from None
            if length is None:
                extent = (0, -1)
            elif begin < 0 or length <= 0 or begin + length > _I64_MAX:
                raise _Invalid(f"invalid slice extent (start {begin}, length {length})")
            else:
                extent = (begin, length)
            if len(extents) >= _MAX_DIMS:
                raise _Invalid("slice has too many dimensions")
            extents.append(extent)
    except _Malformed:
        raise _Invalid("unparseable slice") from None
    return extents


def _decode_entry(b: bytes) -> _Entry:
    """Never raises: a bad entry comes back with `error` set (so listing still shows it)."""
    e = _Entry()
    try:
        for field, wt, v in _fields(b, 0, len(b), 0):
            if wt == 0:
                if field == 1:
                    e.dtype = _int32(v)
                elif field == 3:
                    e.shard_id = _int32(v)
                elif field == 4:
                    e.offset = _int64(v)
                elif field == 5:
                    e.size = _int64(v)
            elif wt == 5 and field == 6:
                e.crc32c = v
            elif wt == 2 and field == 2:
                _decode_shape(b, v[0], v[1], e.shape)
            elif wt == 2 and field == 7:
                e.slices.append(_decode_slice(b, v[0], v[1]))
    except _Malformed:
        e.error = "entry is not parseable"
        return e
    except _Invalid as err:
        e.error = str(err)
        return e
    # Validation (FORMAT.md 4.2): at most 254 dims (checked above), no negative size, and an
    # element count that never leaves int64 as it is multiplied up.
    n = 1
    for d in e.shape:
        if d < 0:
            e.error = f"invalid tensor shape {_shape_text(e.shape)}"
            return e
        n *= d
        if n > _I64_MAX:
            e.error = f"invalid tensor shape {_shape_text(e.shape)} (element count overflows)"
            return e
    e.num_elements = n
    if e.offset < 0 or e.size < 0 or e.offset + e.size > _I64_MAX:
        e.error = f"invalid offset {e.offset} / size {e.size}"
        return e
    if e.shard_id < 0:
        e.error = f"invalid shard id {e.shard_id}"
        return e
    for s in e.slices:
        if len(s) != len(e.shape):
            e.error = f"slice of rank {len(s)} for a tensor of shape {_shape_text(e.shape)}"
            return e
        for d, (start, length) in enumerate(s):
            if length >= 0 and start + length > e.shape[d]:
                e.error = (f"slice extent {start},{length} lies outside dimension {d} of shape "
                           f"{_shape_text(e.shape)}")
                return e
    return e


# ---------------------------------------------------------------------------------------------
# OrderedCode and slice keys (FORMAT.md 6.2, 6.3)


def _num_increasing(v: int) -> bytes:
    body = v.to_bytes((v.bit_length() + 7) // 8, "big")
    return bytes([len(body)]) + body


def _signed_num_increasing(v: int) -> bytes:
    x = v if v >= 0 else ~v
    length = x.bit_length() // 7 + 1  # bytes: 1 header bit per byte, plus a sign bit
    raw = v & ((1 << (8 * length)) - 1)
    # The header: `length` bits equal to the sign bit, flipped (so 1s for v >= 0).
    return (raw ^ (((1 << length) - 1) << (7 * length))).to_bytes(length, "big")


def _escape(s: bytes) -> bytes:
    out = bytearray()
    for c in s:
        out.append(c)
        if c == 0:
            out.append(0xFF)
        elif c == 0xFF:
            out.append(0)
    return bytes(out)


def _key_bytes(key) -> bytes:
    if isinstance(key, bytes):
        return key
    if isinstance(key, str):
        return key.encode("utf-8", "surrogateescape")
    raise TypeError("a checkpoint key must be str or bytes")


def _extents(slice_) -> List[Tuple[int, int]]:
    out = []
    for item in slice_:
        start, length = item
        for v in (start, length):
            if not isinstance(v, int) or not -(1 << 63) <= v <= _I64_MAX:
                raise TypeError(f"a slice extent must be a pair of int64, not {item!r}")
        out.append((start, length))
    return out


def _encode_slice_key(name: bytes, extents: Sequence[Tuple[int, int]]) -> bytes:
    parts = [b"\x00", _escape(name), b"\x00\x01", _num_increasing(len(extents))]
    for start, length in extents:
        full = length < 0
        parts.append(_signed_num_increasing(0 if full else start))
        parts.append(_signed_num_increasing(-1 if full else length))
    return b"".join(parts)


def slice_key(name, slice) -> bytes:  # noqa: A002 - the native argument name
    """The index key of one stored slice of a partitioned tensor (OrderedCode)."""
    return _encode_slice_key(_key_bytes(name), _extents(slice))


def _read_num_increasing(b: bytes, p: int) -> Tuple[int, int]:
    if p >= len(b):
        raise _Malformed("missing number")
    n = b[p]
    if n > 8 or len(b) - p < n + 1:
        raise _Malformed("bad number")
    return int.from_bytes(b[p + 1:p + 1 + n], "big"), p + 1 + n


def _leading_ones(byte: int) -> int:
    return 8 - (byte ^ 0xFF).bit_length()


def _read_signed_num_increasing(b: bytes, p: int) -> Tuple[int, int]:
    if p >= len(b):
        raise _Malformed("missing number")
    negative = b[p] < 0x80
    flip = 0xFF if negative else 0
    # With negative numbers inverted, the encoding starts with `length` 1 bits and a 0 bit.
    first = b[p] ^ flip
    if first != 0xFF:
        length = _leading_ones(first)
    else:
        if len(b) - p < 2:
            raise _Malformed("truncated number")
        length = 8 + _leading_ones(b[p + 1] ^ flip)
        if length > 10:
            raise _Malformed("number too long")
    if len(b) - p < length:
        raise _Malformed("truncated number")
    payload_bits = 7 * length - 1
    raw = int.from_bytes(b[p:p + length], "big")
    if negative:
        raw ^= (1 << (8 * length)) - 1
    payload = raw & ((1 << payload_bits) - 1)
    if payload > _I64_MAX:  # only a 10-byte encoding has room for more than 63 bits
        raise _Malformed("number out of range")
    return (~payload if negative else payload), p + length


def decode_slice_key(key: bytes) -> Optional[Tuple[bytes, List[Tuple[int, int]]]]:
    """(tensor name, [(start, length), ...]) of a slice key; None if `key` is not one."""
    if not isinstance(key, bytes):
        raise TypeError("key must be bytes")
    try:
        lead, p = _read_num_increasing(key, 0)
        if lead != 0:
            return None
        name = bytearray()
        n = len(key)
        while True:
            if p >= n:
                return None
            c = key[p]
            p += 1
            if c in (0x00, 0xFF):
                if p >= n:
                    return None
                d = key[p]
                p += 1
                if c == 0x00 and d == 0x01:
                    break
                if c == 0x00 and d == 0xFF:
                    name.append(0x00)
                elif c == 0xFF and d == 0x00:
                    name.append(0xFF)
                else:
                    return None
            else:
                name.append(c)
        rank, p = _read_num_increasing(key, p)
        if rank > _MAX_DIMS:
            return None
        extents = []
        for _ in range(rank):
            start, p = _read_signed_num_increasing(key, p)
            length, p = _read_signed_num_increasing(key, p)
            extents.append((0, -1) if length < 0 else (start, length))
    except _Malformed:
        return None
    if p != len(key):
        return None
    return bytes(name), extents


# ---------------------------------------------------------------------------------------------
# Data shard payloads (FORMAT.md 5.3, 5.4)


def _check_count(n) -> int:
    if not isinstance(n, int) or not 0 <= n <= _U64:
        raise TypeError(f"n must be an unsigned 64-bit integer, not {n!r}")
    return n


def _key_text(key) -> str:
    return _key_bytes(key).decode("utf-8", "surrogateescape")


def decode_strings(data, n: int, swap: bool, verify: bool, key):
    """The n strings of a DT_STRING payload and the CRC32C TensorFlow computes over it
    (0 without `verify`)."""
    _check_count(n)
    key = _key_text(key)
    b = _buffer_bytes(data)
    size = len(b)
    if n > size:  # every length takes at least one byte
        raise CorruptCheckpointError(
            f"Invalid size in bundle entry: key {key}; stored size {size}; expected size is at "
            f"least {n}")
    lengths = []
    p = 0
    crc = 0
    hashed = bytearray()
    for _ in range(n):
        try:
            length, p = _varint(b, p, size)
        except _Malformed:
            raise CorruptCheckpointError(
                f"string tensor {key}: string lengths run past the end of the entry ({size} "
                "bytes)") from None
        lengths.append(length)
        if verify:
            # The CRC covers each length as a fixed-width integer in the writer's order.
            width = 4 if length <= _U32 else 8
            hashed += length.to_bytes(width, "big" if swap else "little")
    if size - p < 4:
        raise CorruptCheckpointError(
            f"string tensor {key}: the length checksum is missing (entry of {size} bytes)")
    stored = int.from_bytes(b[p:p + 4], "big" if swap else "little")
    if verify:
        crc = crc32c(hashed)
        expected = mask_crc(crc)
        if stored != expected:
            raise ChecksumMismatchError(
                f"string tensor {key}: The length checksum does not match: expected "
                f"{expected:08d} but actual is {stored:08d}",
                key=key, stored=stored, computed=expected)
        crc = crc32c(b[p:p + 4], crc)  # the checksum bytes as stored
    p += 4
    items = []
    for length in lengths:
        if length > size - p:
            raise CorruptCheckpointError(
                f"string tensor {key}: string bytes run past the end of the entry ({size} "
                "bytes)")
        items.append(b[p:p + length])
        p += length
    if p != size:
        raise CorruptCheckpointError(
            f"string tensor {key}: {size - p} bytes follow the last string in the entry")
    if verify:
        crc = crc32c(memoryview(b)[size - sum(lengths):], crc)
    return items, crc


def decode_variants(data, n: int, verify: bool, key):
    """The n serialized VariantTensorDataProto of a DT_VARIANT payload, and its CRC32C."""
    _check_count(n)
    key = _key_text(key)
    b = _buffer_bytes(data)
    size = len(b)
    if n > size // 5:  # a length byte and a 4-byte checksum at least, per element
        raise CorruptCheckpointError(
            f"Invalid size in bundle entry: key {key}; stored size {size} cannot hold {n} "
            "variant elements")
    mv = memoryview(b)
    crc = 0
    p = 0
    items = []
    for i in range(n):
        try:
            length, p = _varint(b, p, size)
        except _Malformed:
            length = None
        if length is None or length > size - p or size - p - length < 4:
            raise CorruptCheckpointError(
                f"variant tensor {key}: element {i} runs past the end of the entry ({size} "
                "bytes)")
        if verify:
            crc = crc32c(length.to_bytes(8, "little"), crc)  # always 8 bytes, unlike strings
            crc = crc32c(mv[p:p + length], crc)
        items.append(b[p:p + length])
        p += length
        if verify:
            stored = _fixed32(b, p)
            expected = mask_crc(crc)
            if stored != expected:
                raise ChecksumMismatchError(
                    f"variant tensor {key}: The checksum after Variant {i} does not match. "
                    f"Expected: {expected:08d} Actual: {stored:08d}",
                    key=key, stored=stored, computed=expected)
            crc = crc32c(mv[p:p + 4], crc)
        p += 4
    if p != size:
        raise CorruptCheckpointError(
            f"variant tensor {key}: {size - p} bytes follow the last element in the entry")
    return items, crc


# ---------------------------------------------------------------------------------------------
# The opened index


class Index:
    """A parsed .index: every block CRC checked, header and entries decoded."""

    def __init__(self, buffer, name) -> None:
        name = _path_text(name)
        self._buffer = buffer  # held, as the native index holds its buffer
        data = _buffer_bytes(buffer)
        table = _Table(data, name)
        entries = table.entries
        if not entries:
            raise CorruptCheckpointError(
                f"{name}: the index holds no entries, not even the bundle header")
        if entries[0][0] != b"":
            raise CorruptCheckpointError(
                f'{name}: the index has no bundle header (key ""); its first key is '
                f'"{_printable(entries[0][0])}"')
        self._name = name
        self._file_size = len(data)
        self._table = table
        self._header = _decode_header(entries[0][1], name)
        self._keys = [k for k, _ in entries[1:]]
        self._values = [v for _, v in entries[1:]]
        self._entries = [_decode_entry(v) for v in self._values]
        self._position: Dict[bytes, int] = {k: i for i, k in enumerate(self._keys)}
        # Slice entries that TensorFlow hides from listings: found by re-encoding the slices
        # of every partitioned entry (FORMAT.md 10.3).
        self._hidden = [False] * len(self._keys)
        for k, e in zip(self._keys, self._entries):
            for s in e.slices:
                j = self._position.get(_encode_slice_key(k, s))
                if j is not None:
                    self._hidden[j] = True

    @property
    def header(self) -> Tuple[int, int, int, int, List[int]]:
        """(num_shards, endianness 0/1, producer, min_consumer, bad_consumers)."""
        num_shards, endianness, producer, min_consumer, bad = self._header
        return num_shards, endianness, producer, min_consumer, list(bad)

    @property
    def table_stats(self) -> dict:
        t = self._table
        return {"data_blocks": t.data_blocks, "snappy_blocks": t.snappy_blocks,
                "index_handle": t.index_handle, "metaindex_handle": t.metaindex_handle,
                "file_size": self._file_size}

    @property
    def name(self) -> str:
        return self._name

    def __len__(self) -> int:
        return len(self._keys)

    def _lookup(self, key) -> int:
        k = _key_bytes(key)
        i = self._position.get(k) if k else None
        if i is None:
            raise KeyNotFoundError(f"Key {_printable(k)} not found in checkpoint {self._name}")
        return i

    def __contains__(self, key) -> bool:
        k = _key_bytes(key)
        return bool(k) and k in self._position

    def keys(self, hidden: bool = False) -> List[str]:
        return [k.decode("utf-8", "surrogateescape")
                for k, h in zip(self._keys, self._hidden) if hidden or not h]

    def raw_keys(self) -> List[bytes]:
        return list(self._keys)

    def listing(self, hidden: bool = False) -> List[tuple]:
        """(key, dtype, shape, size, num_elements, error or None, partitioned) per key."""
        return [(k.decode("utf-8", "surrogateescape"), e.dtype, tuple(e.shape), e.size,
                 e.num_elements, e.error, bool(e.slices))
                for k, e, h in zip(self._keys, self._entries, self._hidden) if hidden or not h]

    def totals(self) -> tuple:
        """(listed keys, their elements where decodable, listed keys with a bad entry,
        listed partitioned keys, {dtype: listed keys}, bytes of every decodable
        unpartitioned entry, slice entries included)."""
        listed = parameters = errors = partitioned = data_bytes = 0
        dtypes: Dict[int, int] = {}
        for e, h in zip(self._entries, self._hidden):
            if e.error is None and not e.slices:
                data_bytes += e.size
            if h:
                continue
            listed += 1
            dtypes[e.dtype] = dtypes.get(e.dtype, 0) + 1
            partitioned += bool(e.slices)
            if e.error is None:
                parameters += e.num_elements
            else:
                errors += 1
        return listed, parameters, errors, partitioned, dict(sorted(dtypes.items())), data_bytes

    def key_records(self, cls, lead: tuple, names: tuple, name_of) -> list:
        """One `cls` (a tuple subclass) per listed key: `lead`'s items, then key, dtype
        name, shape, num_elements, size, partitioned, status and error."""
        if not (isinstance(cls, type) and issubclass(cls, tuple)
                and cls.__basicsize__ == tuple.__basicsize__):
            raise TypeError("key_records: cls must be a tuple subclass without instance "
                            "attributes")
        new = tuple.__new__
        return [new(cls, lead + (
                    k.decode("utf-8", "surrogateescape"),
                    names[e.dtype] if 0 <= e.dtype < len(names) else name_of(e.dtype),
                    tuple(e.shape), e.num_elements, e.size, bool(e.slices),
                    "ok" if e.error is None else "error", e.error))
                for k, e, h in zip(self._keys, self._entries, self._hidden) if not h]

    def entry(self, key) -> tuple:
        """(dtype, shape, shard_id, offset, size, masked crc32c, slices, num_elements)."""
        i = self._lookup(key)
        e = self._entries[i]
        if e.error is not None:
            raise CorruptCheckpointError(
                f"{self._name}: entry for key {_printable(self._keys[i])}: {e.error}")
        return (e.dtype, tuple(e.shape), e.shard_id, e.offset, e.size, e.crc32c,
                [list(s) for s in e.slices], e.num_elements)

    def raw_value(self, key) -> bytes:
        return self._values[self._lookup(key)]

    def is_hidden(self, key) -> bool:
        return self._hidden[self._lookup(key)]


# ---------------------------------------------------------------------------------------------
# Files


#: Before Python 3.13 an mmap object keeps a duplicate of its file's descriptor open for as
#: long as it lives; the native core keeps none, so that a process can hold thousands of
#: readers. Files smaller than this are therefore read into memory there instead of mapped.
_READ_BELOW = 64 << 20
_MAP_KEEPS_NO_DESCRIPTOR = sys.version_info >= (3, 13)


class MappedFile(mmap.mmap):
    """A file mapped read-only; supports the buffer protocol and outlives its views.

    An empty file cannot be mapped, and before Python 3.13 a mapping holds a file descriptor:
    for an empty file, and there for a file under 64 MiB, MappedFile gives a
    :class:`_FileBytes` instead, the file's bytes read into memory with the same attributes.
    """

    def __new__(cls, path, track_size: bool = False):
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
            if st.st_size == 0 or (st.st_size < _READ_BELOW and not _MAP_KEEPS_NO_DESCRIPTOR):
                return _FileBytes(_read_all(fd, st.st_size), path, track_size, st)
            if _MAP_KEEPS_NO_DESCRIPTOR:
                self = super().__new__(cls, fd, st.st_size, access=mmap.ACCESS_READ,
                                       trackfd=False)
            else:
                self = super().__new__(cls, fd, st.st_size, access=mmap.ACCESS_READ)
        finally:
            os.close(fd)
        self._init(path, track_size, st)
        return self

    def __init__(self, path, track_size: bool = False) -> None:
        pass  # all done in __new__ (mmap.mmap takes no __init__ arguments)

    def _init(self, path, track_size, st) -> None:
        self._path = _path_text(path)
        self._size = st.st_size
        self._track = bool(track_size)
        self._id = (st.st_dev, st.st_ino)

    @property
    def size(self) -> int:
        return self._size

    @property
    def path(self) -> str:
        return self._path

    def current_size(self) -> int:
        """The file's size now (with track_size), so a shrunken file is noticed."""
        return _current_size(self)

    def will_need(self, offset: int, length: int) -> None:
        """Hints the kernel to read a range ahead."""
        if offset < 0 or length < 0:
            raise TypeError("offset and length must be non-negative")
        if offset >= self._size or not hasattr(self, "madvise"):
            return
        page = mmap.PAGESIZE
        start = offset // page * page
        stop = min(self._size, offset + min(length, self._size - offset))
        try:
            self.madvise(mmap.MADV_WILLNEED, start, stop - start)
        except (OSError, ValueError, AttributeError):
            pass  # only a hint


def _read_all(fd: int, size: int) -> bytes:
    chunks = []
    while size > 0:
        chunk = os.read(fd, min(size, 1 << 24))
        if not chunk:
            break  # the file shrank since it was measured
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


class _FileBytes(bytes):
    """What MappedFile gives for a file it reads instead of mapping: its bytes, with the
    attributes of a mapping."""

    def __new__(cls, data: bytes, path, track_size, st):
        self = super().__new__(cls, data)
        MappedFile._init(self, path, track_size, st)  # type: ignore[arg-type]
        self._size = len(data)
        return self

    size = MappedFile.size
    path = MappedFile.path
    current_size = MappedFile.current_size

    def will_need(self, offset: int, length: int) -> None:
        if offset < 0 or length < 0:
            raise TypeError("offset and length must be non-negative")


def _current_size(f) -> int:
    if not f._track:
        return f._size
    try:
        st = os.stat(f._path)
    except OSError:
        return 0
    if (st.st_dev, st.st_ino) != f._id:
        return f._size  # a different file now at the path: our mapping of the old one holds
    return min(f._size, st.st_size)


# ---------------------------------------------------------------------------------------------
# Tar headers (csrc/tar.cc)


_TAR_BLOCK = 512
_TAR_MAX_NUMBER = (1 << 63) - 1
_OCTAL = frozenset(b"01234567")
_DECIMAL = frozenset(b"0123456789")


def _tar_number(field: bytes) -> Optional[int]:
    """A numeric header field: base-256 (GNU) when the top bit of its first byte is set,
    else octal digits up to the first NUL with optional whitespace around them; None for
    anything else or a value past 2^63-1."""
    if field[0] & 0x80:
        v = int.from_bytes(field[1:], "big")
        return v if v <= _TAR_MAX_NUMBER else None
    text = field.split(b"\0", 1)[0].strip()
    if not _OCTAL.issuperset(text):
        return None
    return int(text, 8) if text else 0


def _decimal(text: bytes, limit: int) -> Optional[int]:
    if not text or not _DECIMAL.issuperset(text):
        return None
    v = int(text)
    return v if v <= limit else None


def _tar_text(field: bytes) -> bytes:
    return field.split(b"\0", 1)[0]


def _pax_records(data: bytes) -> Optional[Dict[bytes, bytes]]:
    """The records of a pax extended header ("LENGTH KEY=VALUE\\n"), or None if malformed."""
    out: Dict[bytes, bytes] = {}
    pos, n = 0, len(data)
    while pos < n:
        space = data.find(b" ", pos)
        if space < 0:
            return None
        length = _decimal(data[pos:space], n - pos)
        if not length:
            return None
        end = pos + length
        if space + 1 >= end or data[end - 1] != 0x0A:
            return None
        key, _, value = data[space + 1: end - 1].partition(b"=")
        out[key] = value
        pos = end
    return out


def _tar_name(name: bytes) -> bytes:
    """A member name as a scan names it: '\\' as '/', no leading "./" or '/', no trailing
    '/'."""
    name = name.replace(b"\\", b"/")
    while name.startswith((b"./", b"/")):
        name = name[2:] if name.startswith(b"./") else name[1:]
    return name.rstrip(b"/")


def _after(data: int, size: int, limit: int) -> int:
    """The offset after a member's data in whole blocks, or limit + 1 past `limit`."""
    nxt = data + (size + _TAR_BLOCK - 1) // _TAR_BLOCK * _TAR_BLOCK
    return limit + 1 if nxt > limit else nxt


def tar_members(buffer) -> Optional[Tuple[Dict[str, Tuple[int, int]], Dict[str, str],
                                          Optional[str]]]:
    """({member: (data offset, size)}, {member: why it is not a file}, what is wrong with
    the archive or None) from the headers of an uncompressed tar (ustar, GNU long names,
    pax), or None when the archive needs a full tar reader (a bad checksum, a number that
    is not plain octal, a malformed pax record, a long name or pax header past the end)."""
    buf = _bytes_view(buffer)
    files: Dict[bytes, Tuple[int, int]] = {}
    errors: Dict[bytes, bytes] = {}
    end = len(buf)
    pos = header = 0
    ended = False  # at the end-of-archive (zero) block
    long_name = long_link = b""
    pax: Dict[bytes, bytes] = {}
    zero = bytes(_TAR_BLOCK)
    while end >= _TAR_BLOCK and pos <= end - _TAR_BLOCK:
        h = bytes(buf[pos: pos + _TAR_BLOCK])
        if h == zero:
            ended = True
            break
        header = pos
        stored, size = _tar_number(h[148:156]), _tar_number(h[124:136])
        if stored is None or stored != sum(h[:148]) + 256 + sum(h[156:]) or size is None:
            return None
        kind = h[156]
        at = pos + _TAR_BLOCK
        pos = _after(at, size, end)
        if kind in b"LKx":
            if size > end - at:
                return None
            body = bytes(buf[at: at + size])
            if kind == 0x4C:  # L: a GNU long name
                long_name = _tar_text(body)
            elif kind == 0x4B:  # K: a GNU long link
                long_link = _tar_text(body)
            else:
                records = _pax_records(body)
                if records is None:
                    return None
                pax = records
            continue
        if kind == 0x67:  # g: global pax records, nothing a listing needs
            continue
        name = _tar_text(h[0:100])
        if h[257:263] == b"ustar\0" and h[345] != 0:
            name = _tar_text(h[345:500]) + b"/" + name
        link = _tar_text(h[157:257])
        name = pax[b"path"] if b"path" in pax else long_name or name
        link = pax[b"linkpath"] if b"linkpath" in pax else long_link or link
        if b"size" in pax:
            size = _decimal(pax[b"size"], _TAR_MAX_NUMBER)
            if size is None:
                return None
            pos = _after(at, size, end)
        long_name = long_link = b""
        pax = {}
        name = _tar_name(name)
        if not name or name == b"." or kind == 0x35:  # 5: a directory
            continue
        if kind in (0x30, 0, 0x37):  # 0, NUL, 7: a regular file
            files[name] = (at, size)
        elif kind == 0x31:  # 1: a hard link
            target = files.get(_tar_name(link))
            if target is not None:
                files[name] = target
            else:
                errors[name] = b"hard link to " + link + b", which is not in the archive"
        elif kind == 0x32:  # 2: a symbolic link
            errors[name] = b"symbolic link (to " + link + b") inside the archive, not followed"
        elif kind == 0x53:  # S: GNU sparse
            errors[name] = b"sparse member (GNU sparse format), not read"
        else:
            errors[name] = b"not a regular file"

    problem = None
    if not ended and pos != end:
        problem = f"truncated tar archive: it ends at byte {end}, " + (
            f"inside the member header at byte {pos}" if pos < end else
            f"inside the member whose header is at byte {header}")

    def text(b: bytes) -> str:
        return b.decode("utf-8", "surrogateescape")

    return ({text(k): v for k, v in files.items()},
            {text(k): text(v) for k, v in errors.items()}, problem)


# ---------------------------------------------------------------------------------------------
# Building (FORMAT.md 2.3-2.8, 4.1): tables and entries byte for byte as TensorFlow writes them.


def _put_varint(out: bytearray, v: int) -> None:
    v &= _U64
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


class _BlockBuilder:
    def __init__(self, interval: int) -> None:
        self.interval = interval
        self.reset()

    def reset(self) -> None:
        self.buf = bytearray()
        self.restarts = [0]
        self.counter = 0
        self.last_key = b""

    def add(self, key: bytes, value: bytes) -> None:
        shared = 0
        if self.counter < self.interval:
            limit = min(len(self.last_key), len(key))
            while shared < limit and self.last_key[shared] == key[shared]:
                shared += 1
        else:
            self.restarts.append(len(self.buf))
            self.counter = 0
        for v in (shared, len(key) - shared, len(value)):
            _put_varint(self.buf, v)
        self.buf += key[shared:]
        self.buf += value
        self.last_key = key
        self.counter += 1

    def estimated_size(self) -> int:
        return len(self.buf) + 4 * len(self.restarts) + 4

    def finish(self) -> bytes:
        out = bytes(self.buf) + struct.pack(f"<{len(self.restarts)}I", *self.restarts) + \
            struct.pack("<I", len(self.restarts))
        self.reset()
        return out


def _shortest_separator(start: bytes, limit: bytes) -> bytes:
    n = min(len(start), len(limit))
    i = 0
    while i < n and start[i] == limit[i]:
        i += 1
    if i < n and start[i] < 0xFF and start[i] + 1 < limit[i]:
        return start[:i] + bytes([start[i] + 1])
    return start


def _short_successor(key: bytes) -> bytes:
    for i, c in enumerate(key):
        if c != 0xFF:
            return key[:i] + bytes([c + 1])
    return key


def build_table(items, block_size: int = 262144, restart_interval: int = 16) -> bytes:
    """A LevelDB-style table of the given (key, value) pairs, keys strictly increasing."""
    out = bytearray()

    def write_block(contents: bytes) -> Tuple[int, int]:
        handle = (len(out), len(contents))
        out.extend(contents)
        out.append(0)  # no compression
        out.extend(struct.pack("<I", mask_crc(crc32c(contents + b"\x00"))))
        return handle

    def handle_bytes(h: Tuple[int, int]) -> bytes:
        b = bytearray()
        _put_varint(b, h[0])
        _put_varint(b, h[1])
        return bytes(b)

    data_block = _BlockBuilder(restart_interval)
    index_block = _BlockBuilder(1)
    pending: Optional[Tuple[int, int]] = None
    last_key = b""
    count = 0
    for key, value in items:
        key, value = bytes(key), bytes(value)
        if count and len(key) + len(value) >= 2 * block_size and data_block.buf:
            pending = write_block(data_block.finish())
        if pending is not None:
            index_block.add(_shortest_separator(last_key, key), handle_bytes(pending))
            pending = None
        last_key = key
        count += 1
        data_block.add(key, value)
        if data_block.estimated_size() >= block_size:
            pending = write_block(data_block.finish())
    if data_block.buf:
        pending = write_block(data_block.finish())
    metaindex = write_block(_BlockBuilder(restart_interval).finish())
    if pending is not None:
        index_block.add(_short_successor(last_key), handle_bytes(pending))
    index = write_block(index_block.finish())
    footer = bytearray(handle_bytes(metaindex) + handle_bytes(index))
    footer += b"\x00" * (40 - len(footer))
    footer += struct.pack("<Q", _MAGIC)
    return bytes(out + footer)


def _ld(out: bytearray, field: int, payload: bytes) -> None:
    _put_varint(out, (field << 3) | 2)
    _put_varint(out, len(payload))
    out += payload


def serialize_entry(dtype: int, shape, shard_id: int, offset: int, size: int, crc32c: int,
                    slices) -> bytes:
    """A BundleEntryProto serialized byte for byte as TensorFlow does (fields in number order,
    zeros omitted, the shape always present)."""
    out = bytearray()
    if dtype:
        _put_varint(out, 0x08)
        _put_varint(out, dtype)
    shape_bytes = bytearray()
    for d in shape:
        dim = bytearray()
        if d:
            dim.append(0x08)
            _put_varint(dim, d)
        _ld(shape_bytes, 2, bytes(dim))
    _ld(out, 2, bytes(shape_bytes))
    for field, v in ((3, shard_id), (4, offset), (5, size)):
        if v:
            _put_varint(out, field << 3)
            _put_varint(out, v)
    if crc32c:
        out.append(0x35)
        out += struct.pack("<I", crc32c & _U32)
    for s in slices:
        sb = bytearray()
        for start, length in _extents(s):
            ext = bytearray()
            if length >= 0:  # a full dimension is an empty Extent
                if start:
                    ext.append(0x08)
                    _put_varint(ext, start)
                ext.append(0x10)
                _put_varint(ext, length)
            _ld(sb, 1, bytes(ext))
        _ld(out, 7, bytes(sb))
    return bytes(out)


class BundleWriter:
    """Writing checkpoints needs the native extension."""

    def __init__(self, *args, **kwargs) -> None:
        raise NotImplementedError(
            "writing checkpoints (BundleWriter) needs the native extension tfckpt._native; "
            "this is the pure-Python implementation (tfckpt.implementation == 'python')")
