"""Writing bundles (csrc/writer.{h,cc}): entries serialized byte for byte as TensorFlow
writes them (FORMAT.md 4.1), and ``BundleWriter``, which writes whole checkpoints with the
native writer's interface, files and bytes: data shards in add order, then the index of sorted
entries; everything under temporary names until ``finish`` renames it into place, the index
last (the commit point), never over an existing data file."""

from __future__ import annotations

import os
import secrets
import struct
from typing import Dict, List, Literal, Optional, Tuple

from ..errors import CheckpointError, ChecksumMismatchError, InvalidArgumentError
from .bindings import _bytes_view, _key_bytes, _key_text, _path_text
from .bundle import _encode_slice_key, _extents, decode_strings, decode_variants
from .coding import _U32, _printable, _put_varint
from .crc32c import crc32c, mask_crc, unmask_crc
from .table import build_table

_DT_STRING, _DT_VARIANT = 7, 21
_MAX_DIMS = 254


def _ld(out: bytearray, field: int, payload: bytes) -> None:
    _put_varint(out, (field << 3) | 2)
    _put_varint(out, len(payload))
    out += payload


def serialize_entry(
    dtype: int, shape, shard_id: int, offset: int, size: int, crc32c: int, slices
) -> bytes:
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


def serialize_header(num_shards: int, big_endian: bool) -> bytes:
    """The BundleHeaderProto under the empty key: producer 1, min_consumer 0 omitted."""
    out = bytearray()
    if num_shards:
        out.append(0x08)
        _put_varint(out, num_shards)
    if big_endian:
        out += b"\x10\x01"
    _ld(out, 3, b"\x08\x01")
    return bytes(out)


def _data_filename(prefix: str, shard: int, num_shards: int) -> str:
    return "%s.data-%05d-of-%05d" % (prefix, shard, num_shards)


class _Pending:
    __slots__ = ("dtype", "shape", "shard_id", "offset", "size", "crc", "slices", "has_data")

    def __init__(self, dtype: int, shape: Tuple[int, ...]) -> None:
        self.dtype, self.shape = dtype, shape
        self.shard_id = self.offset = self.size = self.crc = 0
        self.slices: List[List[Tuple[int, int]]] = []
        self.has_data = False


class BundleWriter:
    """Writes a checkpoint as TensorFlow's BundleWriter does (csrc/writer.cc, same bytes)."""

    def __init__(self, prefix, max_shard_bytes: int = 0, big_endian: bool = False) -> None:
        self._prefix = _path_text(prefix)
        self._max = int(max_shard_bytes)
        self._big = bool(big_endian)
        self._entries: Dict[bytes, _Pending] = {}
        self._shards: List[list] = []  # [temp path, file or None, size]
        self._index_temp = ""
        self._total = 0
        self._finished = self._failed = False

    @property
    def bytes_written(self) -> int:
        return self._total

    # -- entries ------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._finished:
            raise InvalidArgumentError("BundleWriter is closed")
        if self._failed:
            raise InvalidArgumentError("BundleWriter failed earlier; nothing more can be written")

    def _fail(self, message: str):
        self._failed = True
        self.abort()
        raise CheckpointError(
            f"cannot write checkpoint {self._prefix}: {message} (nothing was written)"
        )

    def _new_shard(self, number: int) -> list:
        path = f"{self._prefix}.tfckpt-tmp{secrets.randbits(64)}.data-{number}"
        try:
            f = open(path, "wb")  # noqa: SIM115 - closed by finish or abort
        except OSError as e:
            self._fail(f"{path}: cannot create data file: {e.strerror}")
        return [path, f, 0]

    def _new_entry(self, key: bytes, dtype: int, shape, size: int) -> _Pending:
        self._check_open()
        if not key:
            raise InvalidArgumentError("the empty key is reserved for the header")
        if key in self._entries:
            raise InvalidArgumentError(f"Adding duplicate key: {_printable(key)}")
        shape = tuple(int(d) for d in shape)
        if len(shape) > _MAX_DIMS:
            raise InvalidArgumentError(f"key {_printable(key)}: more than 254 dimensions")
        if not self._shards or (
            self._max and self._shards[-1][2] > 0 and self._shards[-1][2] + size > self._max
        ):
            self._shards.append(self._new_shard(len(self._shards)))
        e = self._entries[key] = _Pending(dtype, shape)
        e.shard_id, e.offset, e.size, e.has_data = (
            len(self._shards) - 1,
            self._shards[-1][2],
            size,
            True,
        )
        return e

    def _write(self, data, crc: Optional[int]) -> Optional[int]:
        shard = self._shards[-1]
        mv = _bytes_view(data)
        if crc is not None:
            crc = crc32c(mv, crc)
        try:
            shard[1].write(mv)
        except OSError as e:
            self._fail(f"{shard[0]}: write failed: {e.strerror}")
        shard[2] += len(mv)
        self._total += len(mv)
        return crc

    def add(self, key, dtype: int, shape, data) -> None:
        mv = _bytes_view(data)
        e = self._new_entry(_key_bytes(key), int(dtype), shape, len(mv))
        e.crc = mask_crc(self._write(mv, 0) or 0)

    def add_raw(self, key, dtype: int, shape, data, crc32c: int) -> None:  # noqa: A002
        """Copies a stored payload through; its bytes must match the stored (masked) CRC."""
        k, masked = _key_bytes(key), int(crc32c)
        mv = _bytes_view(data)
        if dtype in (_DT_STRING, _DT_VARIANT):
            # The CRC of strings and variants is not that of their bytes (FORMAT.md 5.3, 5.4).
            self._check_open()
            n = 1
            for d in shape:
                n *= max(int(d), 0)
            try:
                _, crc = (
                    decode_strings(mv, n, self._big, True, k)
                    if dtype == _DT_STRING
                    else decode_variants(mv, n, True, k)
                )
            except CheckpointError as err:
                self._failed = True
                self.abort()
                raise type(err)(
                    f"key {_printable(k)}: the source bytes are damaged ({err}); "
                    "refusing to copy damaged data"
                ) from None
            if mask_crc(crc) != masked:
                self._mismatch(k, masked, crc)
            e = self._new_entry(k, int(dtype), shape, len(mv))
            self._write(mv, None)
        else:
            e = self._new_entry(k, int(dtype), shape, len(mv))
            crc = self._write(mv, 0) or 0
            if mask_crc(crc) != masked:
                self._mismatch(k, masked, crc)
        e.crc = masked

    def _mismatch(self, key: bytes, masked: int, computed: int):
        self._failed = True
        self.abort()
        stored = unmask_crc(masked)
        raise ChecksumMismatchError(
            f"key {_printable(key)}: the source bytes do not match their stored checksum "
            f"(stored {stored}, computed {computed}); refusing to copy damaged data",
            key=_key_text(key),
            stored=stored,
            computed=computed,
        )

    def add_strings(self, key, shape, items: list) -> None:
        order: Literal["little", "big"] = "big" if self._big else "little"
        head, hashed, total = bytearray(), bytearray(), 0
        for s in items:
            if not isinstance(s, bytes):
                raise TypeError("expected a list of bytes")
            _put_varint(head, len(s))
            total += len(s)
            hashed += len(s).to_bytes(4 if len(s) <= _U32 else 8, order)
        check = mask_crc(crc32c(hashed)).to_bytes(4, order)
        e = self._new_entry(_key_bytes(key), _DT_STRING, shape, len(head) + 4 + total)
        self._write(head, None)
        crc = self._write(check, crc32c(hashed))
        for s in items:
            crc = self._write(s, crc)
        e.crc = mask_crc(crc or 0)

    def add_variants(self, key, shape, items: list) -> None:
        size = 0
        for s in items:
            if not isinstance(s, bytes):
                raise TypeError("expected a list of bytes")
            length = bytearray()
            _put_varint(length, len(s))
            size += len(length) + len(s) + 4
        e = self._new_entry(_key_bytes(key), _DT_VARIANT, shape, size)
        crc = 0
        for s in items:
            length = bytearray()
            _put_varint(length, len(s))
            self._write(length, None)
            crc = crc32c(len(s).to_bytes(8, "little"), crc)
            crc = self._write(s, crc) or 0
            crc = self._write(struct.pack("<I", mask_crc(crc)), crc) or 0
        e.crc = mask_crc(crc)

    def add_slice_meta(self, key, dtype: int, shape, slice) -> None:  # noqa: A002
        """Registers one slice of a partitioned tensor; its payload is added next."""
        self._check_open()
        k, shape, extents = _key_bytes(key), tuple(int(d) for d in shape), _extents(slice)
        shape_text = "[" + ",".join(str(d) for d in shape) + "]"
        if len(extents) != len(shape):
            raise InvalidArgumentError(
                f"slice of rank {len(extents)} for {_printable(k)} of shape {shape_text}"
            )
        for d, (start, length) in enumerate(extents):
            if length >= 0 and (start < 0 or length == 0 or start + length > shape[d]):
                raise InvalidArgumentError(
                    f"slice extent {start},{length} does not fit dimension {d} of "
                    f"{_printable(k)} {shape_text}"
                )
        e = self._entries.get(k)
        if e is None:
            e = self._entries[k] = _Pending(int(dtype), shape)
        elif e.has_data:
            raise InvalidArgumentError(
                f"Adding duplicate key: {_printable(k)} (already a whole tensor)"
            )
        elif e.dtype != dtype or e.shape != shape:
            raise InvalidArgumentError(f"slices of {_printable(k)} disagree on dtype or full shape")
        e.slices.append(extents)

    # -- the commit ---------------------------------------------------------------------------
    def finish(self) -> int:
        """Writes the index and renames every file into place; returns the shard count."""
        self._check_open()
        if not self._shards:  # TensorFlow writes one (empty) data file even then
            self._shards.append(self._new_shard(0))
        for shard in self._shards:
            try:
                shard[1].close()
            except OSError as e:
                shard[1] = None
                self._fail(f"{shard[0]}: write failed: {e.strerror}")
            shard[1] = None
        used = n = len(self._shards)
        while any(os.path.exists(_data_filename(self._prefix, i, n)) for i in range(n)):
            n += 1
        for i in range(used, n):  # padding shards: empty files, never referenced
            shard = self._new_shard(i)
            shard[1].close()
            shard[1] = None
            self._shards.append(shard)
        self._write_index(n)
        for i in range(n):
            final = _data_filename(self._prefix, i, n)
            try:
                os.rename(self._shards[i][0], final)
            except OSError as e:
                for j in range(i):
                    _unlink(_data_filename(self._prefix, j, n))
                self._fail(f"{final}: cannot rename data file into place: {e.strerror}")
            self._shards[i][0] = ""
        index = self._prefix + ".index"
        try:
            os.rename(self._index_temp, index)
        except OSError as e:
            for i in range(n):
                _unlink(_data_filename(self._prefix, i, n))
            self._fail(f"{index}: cannot rename index into place: {e.strerror}")
        self._index_temp = ""
        self._finished = True
        return n

    def _write_index(self, num_shards: int) -> None:
        rows = [(b"", serialize_header(num_shards, self._big))]
        for key in sorted(self._entries):
            e = self._entries[key]
            if e.has_data:
                rows.append(
                    (
                        key,
                        serialize_entry(e.dtype, e.shape, e.shard_id, e.offset, e.size, e.crc, ()),
                    )
                )
            elif e.slices:
                # As MergeBundles leaves it: the lowest shard holding one of its slices.
                shards = [
                    p.shard_id
                    for p in (self._entries.get(_encode_slice_key(key, s)) for s in e.slices)
                    if p is not None and p.has_data
                ]
                rows.append(
                    (
                        key,
                        serialize_entry(
                            e.dtype, e.shape, min(shards, default=0), 0, 0, 0, e.slices
                        ),
                    )
                )
        self._index_temp = f"{self._prefix}.index.tempstate{secrets.randbits(64)}"
        try:
            with open(self._index_temp, "wb") as f:
                f.write(build_table(rows))
        except OSError as e:
            self._fail(f"{self._index_temp}: cannot create index file: {e.strerror}")

    def abort(self) -> None:
        for shard in self._shards:
            if shard[1] is not None:
                shard[1].close()
                shard[1] = None
            if shard[0]:
                _unlink(shard[0])
        if self._index_temp:
            _unlink(self._index_temp)
        self._finished = True

    def __del__(self) -> None:
        if not getattr(self, "_finished", True):
            self.abort()


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
