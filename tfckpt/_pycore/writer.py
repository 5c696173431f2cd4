"""Writing bundles (csrc/writer.{h,cc}): entries serialized byte for byte as TensorFlow
writes them (FORMAT.md 4.1); writing whole checkpoints (``BundleWriter``) needs the native
extension."""

from __future__ import annotations

import struct

from .bundle import _extents
from .coding import _U32, _put_varint


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
