"""CRC32C (csrc/crc32c.{h,cc}; FORMAT.md 2.9): reflected Castagnoli polynomial,
slicing-by-8 tables, and the mask the format stores CRCs under."""

from __future__ import annotations

import os
import struct
from typing import List, Tuple

from .bindings import _bytes_view, _check_u32
from .coding import _U32

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


def crc32c(data, crc: int = 0) -> int:
    """CRC-32C of `data` extending `crc` (the CRC of preceding bytes)."""
    _check_u32(crc, "crc")
    mv = _bytes_view(data)
    t0, t1, t2, t3, t4, t5, t6, t7 = _T
    n8 = len(mv) & ~7
    state = crc ^ _U32
    for (q,) in struct.iter_unpack("<Q", mv[:n8]):
        q ^= state
        state = (
            t7[q & 0xFF]
            ^ t6[(q >> 8) & 0xFF]
            ^ t5[(q >> 16) & 0xFF]
            ^ t4[(q >> 24) & 0xFF]
            ^ t3[(q >> 32) & 0xFF]
            ^ t2[(q >> 40) & 0xFF]
            ^ t1[(q >> 48) & 0xFF]
            ^ t0[q >> 56]
        )
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


_POLY = 0x82F63B78  # the Castagnoli polynomial, bit-reflected


def _multiply(a: int, b: int) -> int:
    """a * b modulo the polynomial (bit-reflected: bit 31 is x^0)."""
    product, bit = 0, 1 << 31
    while a:
        if a & bit:
            product ^= b
            a ^= bit
        bit >>= 1
        b = (b >> 1) ^ _POLY if b & 1 else b >> 1
    return product


def _x_to_the(n: int) -> int:
    """x^n modulo the polynomial, by squaring."""
    result, square = 1 << 31, 1 << 30  # x^0, x^1
    while n:
        if n & 1:
            result = _multiply(result, square)
        square = _multiply(square, square)
        n >>= 1
    return result


def crc32c_combine(crc_a: int, crc_b: int, len_b: int) -> int:
    """CRC-32C of A followed by B from crc(A), crc(B) and B's length: crc(A) times
    x^(8 len_b) modulo the polynomial, plus crc(B) (the conditioning of both cancels)."""
    _check_u32(crc_a, "crc_a")
    _check_u32(crc_b, "crc_b")
    if len_b < 0:
        raise TypeError("len_b must be an unsigned 64-bit integer")
    if len_b == 0:
        return crc_a
    return _multiply(_x_to_the(8 * len_b), crc_a) ^ crc_b


def crc32c_file(fd: int, offset: int, size: int, threads: int = 1) -> Tuple[int, int]:
    """(CRC-32C of bytes [offset, offset+size) of `fd` read with pread, the bytes read:
    fewer when the file ends first). One thread here; `threads` is accepted for the
    native signature."""
    crc, done = 0, 0
    while done < size:
        piece = os.pread(fd, min(size - done, 1 << 20), offset + done)
        if not piece:
            break
        crc = crc32c(piece, crc)
        done += len(piece)
    return crc, done
