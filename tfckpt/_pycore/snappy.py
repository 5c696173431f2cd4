"""Raw Snappy blocks (csrc/snappy.{h,cc}; FORMAT.md 2.8): a varint32 length, then literals
and copies. Old indexes hold Snappy-compressed blocks."""

from __future__ import annotations

from ..errors import CorruptCheckpointError
from .bindings import _bytes_view
from .coding import _U32, _fixed32, _Malformed


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
                length = int.from_bytes(b[ip : ip + extra], "little")
                ip += extra
            # In 32 bits, as the reference decoder (and so TensorFlow) computes it: a 4-byte
            # length of 0xffffffff is a literal of 0 bytes, not 2^32.
            length = (length + 1) & _U32
            if length > n - ip:
                raise _Malformed("truncated literal")
            if length > room:
                raise _Malformed("literal exceeds declared length")
            out += b[ip : ip + length]
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
            out += out[start : start + length]
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
