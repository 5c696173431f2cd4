"""Varints, fixed-width integers and the one protobuf wire reader (csrc/coding.h).

Decoders raise :class:`_Malformed`; their callers turn it into a tfckpt error that names the
file and the place.
"""

from __future__ import annotations

from typing import Iterator, Tuple

_U32 = 0xFFFFFFFF
_U64 = (1 << 64) - 1
_I64_MAX = (1 << 63) - 1

# ---------------------------------------------------------------------------------------------
# Primitive decoding (FORMAT.md 2.2).


class _Malformed(Exception):
    """Internal: bytes that do not decode.  Never leaves this package."""


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
        elif wt == 3:
            p = _skip_group(b, p, end, field, depth)
            yield field, 3, None
        else:  # fixed32, fixed64, or a wire type that is not a field's
            start, p = p, _skip_scalar(b, p, end, wt)
            yield field, wt, _fixed32(b, start) if wt == 5 else None


# ---------------------------------------------------------------------------------------------
# Encoding (FORMAT.md 2.2)


def _put_varint(out: bytearray, v: int) -> None:
    v &= _U64
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
