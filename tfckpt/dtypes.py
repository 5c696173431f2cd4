"""One table of TensorFlow's DataType enum: names, numpy types, sizes, byte swapping.

Sizes in data files come from the native core (``_native.dtype_sizes``), so the
fact lives in one place; everything else about a dtype lives here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

__all__ = ["DType", "by_code", "by_name", "numpy_dtype"]


@dataclass(frozen=True)
class DType:
    code: int           # the DataType enum value
    name: str           # as tf.DType.name spells it
    enum_name: str      # as types.proto spells it (DT_FLOAT)
    numpy: Optional[str]  # numpy / ml_dtypes type name, None when not an array of scalars
    # Bytes per byte-swapped unit when the checkpoint's byte order is not the host's:
    # 0 for one-byte types (nothing to swap), -1 where swapping is not defined.
    swap: int

    @property
    def itemsize(self) -> int:
        """Bytes per element in a data file; 0 for strings and variants, -1 if not storable."""
        from . import _native

        return _native.dtype_sizes[self.code] if 0 <= self.code < len(_native.dtype_sizes) else -1

    @property
    def is_quantized(self) -> bool:
        return self.name.startswith(("qint", "quint"))

    def to_numpy(self):
        """The numpy dtype TensorFlow's reader returns for this type."""
        return numpy_dtype(self.code)


_ROWS = [
    # code, tf name, numpy, swap unit
    (1, "float32", "float32", 4),
    (2, "float64", "float64", 8),
    (3, "int32", "int32", 4),
    (4, "uint8", "uint8", 0),
    (5, "int16", "int16", 2),
    (6, "int8", "int8", 0),
    (7, "string", "object", 0),
    (8, "complex64", "complex64", 4),
    (9, "int64", "int64", 8),
    (10, "bool", "bool", 0),
    (11, "qint8", "q:int8", 0),
    (12, "quint8", "q:uint8", 0),
    (13, "qint32", "q:int32", 4),
    (14, "bfloat16", "ml:bfloat16", 2),
    (15, "qint16", "q:int16", 2),
    (16, "quint16", "q:uint16", 2),
    (17, "uint16", "uint16", 2),
    (18, "complex128", "complex128", 8),
    (19, "float16", "float16", 2),
    (20, "resource", None, -1),
    (21, "variant", "object", -1),
    (22, "uint32", "uint32", 4),
    (23, "uint64", "uint64", 8),
    (24, "float8_e5m2", "ml:float8_e5m2", 0),
    (25, "float8_e4m3fn", "ml:float8_e4m3fn", 0),
    (26, "float8_e4m3fnuz", "ml:float8_e4m3fnuz", 0),
    (27, "float8_e4m3b11fnuz", "ml:float8_e4m3b11fnuz", 0),
    (28, "float8_e5m2fnuz", "ml:float8_e5m2fnuz", 0),
    (29, "int4", "ml:int4", 0),
    (30, "uint4", "ml:uint4", 0),
    (31, "int2", "ml:int2", 0),
    (32, "uint2", "ml:uint2", 0),
    (33, "float4_e2m1fn", "ml:float4_e2m1fn", 0),
]

_ENUM_NAMES = {
    1: "DT_FLOAT", 2: "DT_DOUBLE", 3: "DT_INT32", 4: "DT_UINT8", 5: "DT_INT16", 6: "DT_INT8",
    7: "DT_STRING", 8: "DT_COMPLEX64", 9: "DT_INT64", 10: "DT_BOOL", 11: "DT_QINT8",
    12: "DT_QUINT8", 13: "DT_QINT32", 14: "DT_BFLOAT16", 15: "DT_QINT16", 16: "DT_QUINT16",
    17: "DT_UINT16", 18: "DT_COMPLEX128", 19: "DT_HALF", 20: "DT_RESOURCE", 21: "DT_VARIANT",
    22: "DT_UINT32", 23: "DT_UINT64", 24: "DT_FLOAT8_E5M2", 25: "DT_FLOAT8_E4M3FN",
    26: "DT_FLOAT8_E4M3FNUZ", 27: "DT_FLOAT8_E4M3B11FNUZ", 28: "DT_FLOAT8_E5M2FNUZ",
    29: "DT_INT4", 30: "DT_UINT4", 31: "DT_INT2", 32: "DT_UINT2", 33: "DT_FLOAT4_E2M1FN",
}

_BY_CODE = {code: DType(code, name, _ENUM_NAMES[code], np_name, swap)
            for code, name, np_name, swap in _ROWS}
_BY_NAME = {d.name: d for d in _BY_CODE.values()}
_BY_NAME.update({d.enum_name: d for d in _BY_CODE.values()})
_BY_NAME.update({"half": _BY_CODE[19], "float": _BY_CODE[1], "double": _BY_CODE[2]})


def by_code(code: int) -> DType:
    """The DType for a DataType enum value; unknown values get a placeholder row."""
    d = _BY_CODE.get(code)
    if d is None:
        if code > 100 and code - 100 in _BY_CODE:
            base = _BY_CODE[code - 100]
            return DType(code, base.name + "_ref", base.enum_name + "_REF", None, -1)
        return DType(code, f"unknown_dtype_{code}", f"DT_INVALID({code})" if code == 0
                     else f"DT_UNKNOWN_{code}", None, -1)
    return d


def by_name(name: str) -> DType:
    """Looks a dtype up by tf.DType name (``float32``), enum name (``DT_FLOAT``) or alias."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown TensorFlow dtype name {name!r}") from None


@lru_cache(maxsize=None)
def numpy_dtype(code: int):
    """The numpy dtype of values of DataType `code`, as TensorFlow's reader returns them.

    Quantized types come back as their integer base type (qint8 -> int8), as TensorFlow's
    checkpoint reader returns them; bfloat16, float8, int4, int2 and float4 come from ml_dtypes.
    """
    import numpy as np

    d = by_code(code)
    if d.numpy is None:
        raise TypeError(f"dtype {d.name} has no numpy equivalent")
    if d.numpy.startswith("ml:"):
        import ml_dtypes

        return np.dtype(getattr(ml_dtypes, d.numpy[3:]))
    if d.numpy.startswith("q:"):
        return np.dtype(d.numpy[2:])
    return np.dtype(d.numpy)
