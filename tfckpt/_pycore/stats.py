"""The twin of csrc/stats.cc: counts and finite-value moments of one payload, with numpy.

Each dtype is decoded by its bit layout (FORMAT.md 4.4) into float64, a block of elements at a
time (a block's mean and squared deviations merged by Chan's update, as the native kernel
does), so no float64 copy of a whole payload is made. The one-byte types go through a table of
their 256 values built from the layout, so the twin does not lean on ml_dtypes and the tests
can hold both cores against ml_dtypes' own decoding.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Tuple

from ..errors import InvalidArgumentError
from .bindings import _bytes_view
from .bundle import dtype_sizes

_STRING, _VARIANT = 7, 21
#: Elements decoded to float64 at a time (8 MiB of float64).
_BLOCK = 1 << 20
#: numpy types of the payloads read as stored (quantized types as their integer base,
#: complex numbers summarized by their modulus).
_PLAIN = {
    1: "f4",
    2: "f8",
    3: "i4",
    5: "i2",
    8: "c8",
    9: "i8",
    13: "i4",
    15: "i2",
    16: "u2",
    17: "u2",
    18: "c16",
    19: "f2",
    22: "u4",
    23: "u8",
}
#: One-byte floats: (exponent bits, mantissa bits, bias, how NaN/Inf are coded).
_SMALL_FLOATS = {
    24: (5, 2, 15, "ieee"),  # float8_e5m2
    25: (4, 3, 7, "fn"),  # float8_e4m3fn
    26: (4, 3, 8, "fnuz"),  # float8_e4m3fnuz
    27: (4, 3, 11, "fnuz"),  # float8_e4m3b11fnuz
    28: (5, 2, 16, "fnuz"),  # float8_e5m2fnuz
}


def _small_float(bits: int, ebits: int, mbits: int, bias: int, special: str) -> float:
    """A float of `ebits` exponent and `mbits` mantissa bits below its sign bit; `special`
    says how NaN and infinities are coded: "ieee" (all-ones exponent), "fn" (all ones),
    "fnuz" (negative zero is NaN), "none"."""
    emask, mmask = (1 << ebits) - 1, (1 << mbits) - 1
    negative = (bits >> (ebits + mbits)) & 1
    e, m = (bits >> mbits) & emask, bits & mmask
    if special == "fnuz" and negative and e == 0 and m == 0:
        return math.nan
    if special == "ieee" and e == emask:
        return math.nan if m else (-math.inf if negative else math.inf)
    if special == "fn" and e == emask and m == mmask:
        return math.nan
    if e == 0:
        v = math.ldexp(m, 1 - bias - mbits)
    else:
        v = math.ldexp(m | (1 << mbits), e - bias - mbits)
    return -v if negative else v


def _byte_value(dtype: int, b: int) -> float:
    """The value of byte `b` of a one-byte dtype (int4/int2/float4: the low bits)."""
    if dtype in (4, 12):  # uint8, quint8
        return float(b)
    if dtype in (6, 11):  # int8, qint8
        return float(b - 256 if b >= 128 else b)
    if dtype == 10:  # bool
        return 1.0 if b else 0.0
    if dtype in (29, 31):  # int4, int2: two's complement in the low bits
        bits = 4 if dtype == 29 else 2
        v = b & ((1 << bits) - 1)
        return float(v - (1 << bits) if v >= 1 << (bits - 1) else v)
    if dtype in (30, 32):  # uint4, uint2
        return float(b & (0xF if dtype == 30 else 0x3))
    if dtype in _SMALL_FLOATS:
        return _small_float(b, *_SMALL_FLOATS[dtype])
    if dtype == 33:  # float4_e2m1fn
        return _small_float(b & 0xF, 2, 1, 1, "none")
    return math.nan


@lru_cache(maxsize=None)
def _table(dtype: int):
    import numpy as np

    return np.array([_byte_value(dtype, b) for b in range(256)], dtype=np.float64)


def _decoder(dtype: int, swap: bool):
    """(itemsize, function from a block's bytes to its float64 values)."""
    import numpy as np

    if dtype in _PLAIN:
        dt = np.dtype(_PLAIN[dtype])
        if swap:
            dt = dt.newbyteorder()
        if dt.kind == "c":  # |z| as hypot defines it: infinite if a part is
            return dt.itemsize, lambda b: np.abs(np.frombuffer(b, dt).astype(np.complex128))
        return dt.itemsize, lambda b: np.frombuffer(b, dt).astype(np.float64)
    if dtype == 14:  # bfloat16: the high half of a float32
        u2 = np.dtype("u2").newbyteorder() if swap else np.dtype("u2")
        return (
            2,
            lambda b: (
                (np.frombuffer(b, u2).astype(np.uint32) << 16).view(np.float32).astype(np.float64)
            ),
        )
    table = _table(dtype)
    return 1, lambda b: table[np.frombuffer(b, np.uint8)]


def _block_moments(v) -> Tuple:
    """(count, nan, posinf, neginf, zeros, min, max, mean, m2) of one block of float64."""
    import numpy as np

    nan = int(np.count_nonzero(np.isnan(v)))
    posinf = int(np.count_nonzero(v == np.inf))
    neginf = int(np.count_nonzero(v == -np.inf))
    finite = v[np.isfinite(v)] if nan + posinf + neginf else v
    if finite.size == 0:
        return (int(v.size), nan, posinf, neginf, 0, 0.0, 0.0, 0.0, 0.0)
    mean = float(finite.mean())
    with np.errstate(over="ignore"):  # float64 extremes: squares overflow, as in C++
        m2 = float(np.square(finite - mean).sum())
    return (
        int(v.size),
        nan,
        posinf,
        neginf,
        int(np.count_nonzero(finite == 0)),
        float(finite.min()),
        float(finite.max()),
        mean,
        m2,
    )


def _merge(a: Tuple, b: Tuple) -> Tuple:
    """Two runs of values as one (csrc/stats.cc Stats::Merge)."""
    counts = tuple(x + y for x, y in zip(a[:5], b[:5]))
    fa = a[0] - a[1] - a[2] - a[3]
    fb = b[0] - b[1] - b[2] - b[3]
    if fb == 0:
        return counts + a[5:]
    if fa == 0:
        return counts + b[5:]
    n = fa + fb
    delta = b[7] - a[7]
    if math.isinf(delta):  # values near the float64 limits (csrc/stats.cc)
        mean = a[7] * (fa / n) + b[7] * (fb / n)
    else:
        mean = a[7] + delta * (fb / n)
    m2 = a[8] + b[8] + delta * delta * (fa / n) * fb
    return counts + (min(a[5], b[5]), max(a[6], b[6]), mean, m2)


def tensor_stats(data, dtype: int, swap: bool = False) -> Tuple:
    """(count, nan, posinf, neginf, zeros, min, max, mean, m2) of a payload of DataType
    `dtype`; min..m2 over the finite values (0.0 when there are none)."""
    size = dtype_sizes[dtype] if 0 <= dtype < len(dtype_sizes) else -1
    if size <= 0 or dtype in (_STRING, _VARIANT):
        raise InvalidArgumentError(f"no statistics for values of DataType {dtype}")
    mv = _bytes_view(data)
    if len(mv) % size:
        raise InvalidArgumentError(
            f"{len(mv)} bytes are not a whole number of {size}-byte elements"
        )
    itemsize, decode = _decoder(dtype, swap)
    out: Tuple = (0, 0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0)
    step = _BLOCK * itemsize
    for start in range(0, len(mv), step):
        out = _merge(out, _block_moments(decode(mv[start : start + step])))
    return out
