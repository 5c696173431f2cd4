"""The TensorBundle layer on the table (csrc/bundle.{h,cc}; FORMAT.md 3-6): the header, the
entries (BundleEntryProto), slice keys (OrderedCode), the string and variant payloads of the
data shards, and ``Index``, an opened .index.
"""

from __future__ import annotations

import bisect
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..errors import ChecksumMismatchError, CorruptCheckpointError, KeyNotFoundError
from .bindings import (
    EntryRow,
    HeaderRow,
    ListingRow,
    TotalsRow,
    _buffer_bytes,
    _check_count,
    _key_bytes,
    _key_text,
    _path_display,
    _path_text,
)
from .coding import (
    _I64_MAX,
    _U32,
    _fields,
    _fixed32,
    _int32,
    _int64,
    _Malformed,
    _printable,
    _varint,
)
from .crc32c import crc32c, mask_crc
from .table import _Table

_MAX_DIMS = 254  # TensorShape::MaxDimensions (FORMAT.md 4.2)
_new_row = tuple.__new__

# ---------------------------------------------------------------------------------------------
# dtypes (FORMAT.md 4.4): bytes per element in a data file; 0 string/variant, -1 not storable.

dtype_sizes: List[int] = [
    -1,
    4,
    8,
    4,
    1,
    2,
    1,
    0,
    8,
    8,  # invalid float double int32 uint8 int16 int8 string c64 i64
    1,
    1,
    1,
    4,
    2,
    2,
    2,
    2,
    16,
    2,  # bool qint8 quint8 qint32 bf16 qint16 quint16 u16 c128 half
    -1,
    0,
    4,
    8,  # resource variant uint32 uint64
    1,
    1,
    1,
    1,
    1,  # the float8 family
    1,
    1,
    1,
    1,
    1,  # int4 uint4 int2 uint2 float4_e2m1fn (one byte each)
]

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

    __slots__ = (
        "dtype",
        "shape",
        "shard_id",
        "offset",
        "size",
        "crc32c",
        "slices",
        "num_elements",
        "error",
    )

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
                e.error = (
                    f"slice extent {start},{length} lies outside dimension {d} of shape "
                    f"{_shape_text(e.shape)}"
                )
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


def _extents(slice_) -> List[Tuple[int, int]]:
    out = []
    for item in slice_:
        start, length = item
        for v in (start, length):
            if not isinstance(v, int) or not -(1 << 63) <= v <= _I64_MAX:
                raise TypeError(f"a slice extent must be a pair of int64, not {item!r}")
        out.append((start, length))
    return out


def _slice_key_prefix(name: bytes) -> bytes:
    """How every slice key of the tensor `name` starts: the name, ordered-coded."""
    return b"\x00" + _escape(name) + b"\x00\x01"


def _slice_key_suffix(extents: Sequence[Tuple[int, int]]) -> bytes:
    parts = [_num_increasing(len(extents))]
    for start, length in extents:
        full = length < 0
        parts.append(_signed_num_increasing(0 if full else start))
        parts.append(_signed_num_increasing(-1 if full else length))
    return b"".join(parts)


def _encode_slice_key(name: bytes, extents: Sequence[Tuple[int, int]]) -> bytes:
    return _slice_key_prefix(name) + _slice_key_suffix(extents)


def slice_key(name, slice) -> bytes:  # noqa: A002 - the native argument name
    """The index key of one stored slice of a partitioned tensor (OrderedCode)."""
    return _encode_slice_key(_key_bytes(name), _extents(slice))


def _read_num_increasing(b: bytes, p: int) -> Tuple[int, int]:
    if p >= len(b):
        raise _Malformed("missing number")
    n = b[p]
    if n > 8 or len(b) - p < n + 1:
        raise _Malformed("bad number")
    return int.from_bytes(b[p + 1 : p + 1 + n], "big"), p + 1 + n


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
    raw = int.from_bytes(b[p : p + length], "big")
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
            f"least {n}"
        )
    lengths = []
    p = 0
    crc = 0
    hashed = bytearray()
    for _ in range(n):
        try:
            length, p = _varint(b, p, size)
        except _Malformed:
            raise CorruptCheckpointError(
                f"string tensor {key}: string lengths run past the end of the entry ({size} bytes)"
            ) from None
        lengths.append(length)
        if verify:
            # The CRC covers each length as a fixed-width integer in the writer's order.
            width = 4 if length <= _U32 else 8
            hashed += length.to_bytes(width, "big" if swap else "little")
    if size - p < 4:
        raise CorruptCheckpointError(
            f"string tensor {key}: the length checksum is missing (entry of {size} bytes)"
        )
    stored = int.from_bytes(b[p : p + 4], "big" if swap else "little")
    if verify:
        crc = crc32c(hashed)
        expected = mask_crc(crc)
        if stored != expected:
            raise ChecksumMismatchError(
                f"string tensor {key}: The length checksum does not match: expected "
                f"{expected:08d} but actual is {stored:08d}",
                key=key,
                stored=stored,
                computed=expected,
            )
        crc = crc32c(b[p : p + 4], crc)  # the checksum bytes as stored
    p += 4
    items = []
    for length in lengths:
        if length > size - p:
            raise CorruptCheckpointError(
                f"string tensor {key}: string bytes run past the end of the entry ({size} bytes)"
            )
        items.append(b[p : p + length])
        p += length
    if p != size:
        raise CorruptCheckpointError(
            f"string tensor {key}: {size - p} bytes follow the last string in the entry"
        )
    if verify:
        crc = crc32c(memoryview(b)[size - sum(lengths) :], crc)
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
            "variant elements"
        )
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
                f"variant tensor {key}: element {i} runs past the end of the entry ({size} bytes)"
            )
        if verify:
            crc = crc32c(length.to_bytes(8, "little"), crc)  # always 8 bytes, unlike strings
            crc = crc32c(mv[p : p + length], crc)
        items.append(b[p : p + length])
        p += length
        if verify:
            stored = _fixed32(b, p)
            expected = mask_crc(crc)
            if stored != expected:
                raise ChecksumMismatchError(
                    f"variant tensor {key}: The checksum after Variant {i} does not match. "
                    f"Expected: {expected:08d} Actual: {stored:08d}",
                    key=key,
                    stored=stored,
                    computed=expected,
                )
            crc = crc32c(mv[p : p + 4], crc)
        p += 4
    if p != size:
        raise CorruptCheckpointError(
            f"variant tensor {key}: {size - p} bytes follow the last element in the entry"
        )
    return items, crc


# ---------------------------------------------------------------------------------------------
# The opened index


class Index:
    """A parsed .index: every block CRC checked, header and entries decoded."""

    def __init__(self, buffer, name) -> None:
        name = _path_text(name)
        shown = _path_display(name)  # as the native core spells it in messages
        self._buffer = buffer  # held, as the native index holds its buffer
        data = _buffer_bytes(buffer)
        table = _Table(data, shown)
        entries = table.entries
        if not entries:
            raise CorruptCheckpointError(
                f"{shown}: the index holds no entries, not even the bundle header"
            )
        if entries[0][0] != b"":
            raise CorruptCheckpointError(
                f'{shown}: the index has no bundle header (key ""); its first key is '
                f'"{_printable(entries[0][0])}"'
            )
        self._name = name
        self._shown = shown
        self._file_size = len(data)
        self._table = table
        self._header = _decode_header(entries[0][1], shown)
        self._keys = [k for k, _ in entries[1:]]
        self._values = [v for _, v in entries[1:]]
        self._entries = [_decode_entry(v) for v in self._values]
        self._position: Dict[bytes, int] = {k: i for i, k in enumerate(self._keys)}
        # Slice entries that TensorFlow hides from listings (FORMAT.md 10.3): the slices of
        # every partitioned entry, re-encoded. Its slice keys share the prefix that encodes
        # its name: the keys that start with it are found once, then each slice's suffix is
        # looked up among them (whole keys would cost the name's length per slice: quadratic
        # time for a long name with many slices).
        keys = self._keys
        self._hidden = [False] * len(keys)
        for k, e in zip(keys, self._entries):
            if not e.slices:
                continue
            prefix = _slice_key_prefix(k)
            lo = hi = bisect.bisect_left(keys, prefix)
            while hi < len(keys) and keys[hi].startswith(prefix):
                hi += 1
            if lo == hi:
                continue
            suffixes = {keys[j][len(prefix) :]: j for j in range(lo, hi)}
            for s in e.slices:
                j = suffixes.get(_slice_key_suffix(s))
                if j is not None:
                    self._hidden[j] = True

    @property
    def header(self) -> HeaderRow:
        """(num_shards, endianness 0/1, producer, min_consumer, bad_consumers)."""
        num_shards, endianness, producer, min_consumer, bad = self._header
        return HeaderRow(num_shards, endianness, producer, min_consumer, list(bad))

    @property
    def table_stats(self) -> dict:
        t = self._table
        return {
            "data_blocks": t.data_blocks,
            "snappy_blocks": t.snappy_blocks,
            "index_handle": t.index_handle,
            "metaindex_handle": t.metaindex_handle,
            "file_size": self._file_size,
        }

    @property
    def name(self) -> str:
        return self._name

    def __len__(self) -> int:
        return len(self._keys)

    def _lookup(self, key) -> int:
        k = _key_bytes(key)
        i = self._position.get(k) if k else None
        if i is None:
            raise KeyNotFoundError(f"Key {_printable(k)} not found in checkpoint {self._shown}")
        return i

    def __contains__(self, key) -> bool:
        k = _key_bytes(key)
        return bool(k) and k in self._position

    def keys(self, hidden: bool = False) -> List[str]:
        return [
            k.decode("utf-8", "surrogateescape")
            for k, h in zip(self._keys, self._hidden)
            if hidden or not h
        ]

    def raw_keys(self) -> List[bytes]:
        return list(self._keys)

    def listing(self, hidden: bool = False) -> List[ListingRow]:
        """(key, dtype, shape, size, num_elements, error or None, partitioned) per key."""
        # tuple.__new__, as namedtuple's _make does: calling the class costs twice as much.
        return [
            _new_row(
                ListingRow,
                (
                    k.decode("utf-8", "surrogateescape"),
                    e.dtype,
                    tuple(e.shape),
                    e.size,
                    e.num_elements,
                    e.error,
                    bool(e.slices),
                ),
            )
            for k, e, h in zip(self._keys, self._entries, self._hidden)
            if hidden or not h
        ]

    def totals(self) -> TotalsRow:
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
        return TotalsRow(
            listed, parameters, errors, partitioned, dict(sorted(dtypes.items())), data_bytes
        )

    def key_records(self, cls, lead: tuple, names: tuple, name_of) -> list:
        """One `cls` (a tuple subclass) per listed key: `lead`'s items, then key, dtype
        name, shape, num_elements, size, partitioned, status and error."""
        if not (
            isinstance(cls, type)
            and issubclass(cls, tuple)
            and cls.__basicsize__ == tuple.__basicsize__
        ):
            raise TypeError("key_records: cls must be a tuple subclass without instance attributes")
        return [
            _new_row(
                cls,
                lead
                + (
                    k.decode("utf-8", "surrogateescape"),
                    names[e.dtype] if 0 <= e.dtype < len(names) else name_of(e.dtype),
                    tuple(e.shape),
                    e.num_elements,
                    e.size,
                    bool(e.slices),
                    "ok" if e.error is None else "error",
                    e.error,
                ),
            )
            for k, e, h in zip(self._keys, self._entries, self._hidden)
            if not h
        ]

    def entry(self, key) -> EntryRow:
        """(dtype, shape, shard_id, offset, size, masked crc32c, slices, num_elements)."""
        i = self._lookup(key)
        e = self._entries[i]
        if e.error is not None:
            raise CorruptCheckpointError(
                f"{self._shown}: entry for key {_printable(self._keys[i])}: {e.error}"
            )
        return _new_row(
            EntryRow,
            (
                e.dtype,
                tuple(e.shape),
                e.shard_id,
                e.offset,
                e.size,
                e.crc32c,
                [list(s) for s in e.slices],
                e.num_elements,
            ),
        )

    def _entry_object(self, i: int, cls, slices_of) -> Any:
        """Entry `i` as a new `cls`, its slots filled as the native core fills them
        (csrc/bindings.cc EntryClass): `dtype` from ``cls._DTYPES`` (``cls._dtype_of`` the
        first time a code is seen), an instance of ``cls._NO_NUMPY_DTYPE`` when None."""
        e = self._entries[i]
        dtype = cls._DTYPES.get(e.dtype)
        if dtype is None:
            dtype = cls._dtype_of(e.dtype)
        obj = object.__new__(cls if dtype is not None else cls._NO_NUMPY_DTYPE)
        slots = {
            "key": self._keys[i].decode("utf-8", "surrogateescape"),
            "dtype_code": e.dtype,
            "shape": tuple(e.shape),
            "shard_id": e.shard_id,
            "offset": e.offset,
            "size": e.size,
            "crc32c": e.crc32c,
            "slices": slices_of([list(s) for s in e.slices]) if e.slices else (),
            "num_elements": e.num_elements,
        }
        if dtype is not None:
            slots["dtype"] = dtype
        for name, value in slots.items():
            object.__setattr__(obj, name, value)
        return obj

    def entry_objects(self, cls, slices_of) -> Dict[str, Any]:
        """{key: a new `cls` holding the entry in its slots} for every decodable entry,
        slice entries included; slices from `slices_of([[start, length], ...] per slice)`."""
        out: Dict[str, Any] = {}
        for i, e in enumerate(self._entries):
            if e.error is None:
                obj = self._entry_object(i, cls, slices_of)
                out[obj.key] = obj
        return out

    def entry_object(self, key, cls, slices_of) -> Any:
        """The entry of `key` as entry_objects makes them."""
        i = self._lookup(key)
        if self._entries[i].error is not None:
            self.entry(key)  # raises the entry's error
        return self._entry_object(i, cls, slices_of)

    def raw_value(self, key) -> bytes:
        return self._values[self._lookup(key)]

    def is_hidden(self, key) -> bool:
        return self._hidden[self._lookup(key)]
