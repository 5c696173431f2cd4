"""THE table of TensorFlow's DataType enum: every fact about a dtype that tfckpt uses.

One row per DataType value (``types.proto``): its names, the numpy type its values read as,
bytes per element in a data file, the byte-swap unit, its kind, the TensorProto field that
holds its values, and its names in safetensors and zarr. Every other module reads these
facts from here; ``tests/test_dtypes.py`` checks the table against the native core's sizes
and TensorFlow's own enum.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Dict, Optional, Tuple

__all__ = [
    "DType",
    "by_code",
    "by_name",
    "numpy_dtype",
    "code_of",
    "all_dtypes",
    "STRING",
    "VARIANT",
    "RESOURCE",
    "FLOAT",
    "BOOL",
]

#: DataType values that code branches on by name.
FLOAT, BOOL, STRING, RESOURCE, VARIANT = 1, 10, 7, 20, 21


@dataclass(frozen=True)
class DType:
    code: int  # the DataType enum value
    name: str  # as tf.DType.name spells it
    enum_name: str  # as types.proto spells it (DT_FLOAT)
    numpy: Optional[str]  # numpy type name; "ml:" ml_dtypes, "q:" quantized base; None: none
    #: Bytes per element in a data file: 0 for strings and variants (variable length),
    #: -1 where the dtype cannot be stored (resource, unknown codes).
    itemsize: int
    #: Bytes per byte-swapped unit when the checkpoint's byte order is not the host's:
    #: 0 for one-byte types (nothing to swap), -1 where swapping is not defined.
    swap: int
    #: "float", "complex", "int", "uint", "bool", "quantized", "string", "variant", "resource"
    kind: str
    #: The repeated TensorProto field holding the values when ``tensor_content`` is empty.
    proto_field: Optional[str]
    #: The safetensors dtype it is stored as (quantized and int4-like as their integers).
    safetensors: Optional[str]
    #: The zarr (format 2) dtype of its bytes, None where zarr has no such type.
    zarr: Optional[str]

    @property
    def is_quantized(self) -> bool:
        return self.kind == "quantized"

    @property
    def is_numeric(self) -> bool:
        """Fixed-size elements that read as a numpy array of numbers (or bools)."""
        return self.itemsize > 0

    @property
    def is_floating(self) -> bool:
        return self.kind in ("float", "complex")

    def to_numpy(self) -> Any:
        """The numpy dtype TensorFlow's reader returns for this type."""
        return numpy_dtype(self.code)


_ROWS = [
    # code, tf name, enum name, numpy, itemsize, swap, kind, TensorProto field, safetensors, zarr
    (1, "float32", "DT_FLOAT", "float32", 4, 4, "float", "float_val", "F32", "f4"),
    (2, "float64", "DT_DOUBLE", "float64", 8, 8, "float", "double_val", "F64", "f8"),
    (3, "int32", "DT_INT32", "int32", 4, 4, "int", "int_val", "I32", "i4"),
    (4, "uint8", "DT_UINT8", "uint8", 1, 0, "uint", "int_val", "U8", "u1"),
    (5, "int16", "DT_INT16", "int16", 2, 2, "int", "int_val", "I16", "i2"),
    (6, "int8", "DT_INT8", "int8", 1, 0, "int", "int_val", "I8", "i1"),
    (7, "string", "DT_STRING", "object", 0, 0, "string", "string_val", None, None),
    (8, "complex64", "DT_COMPLEX64", "complex64", 8, 4, "complex", "scomplex_val", "C64", "c8"),
    (9, "int64", "DT_INT64", "int64", 8, 8, "int", "int64_val", "I64", "i8"),
    (10, "bool", "DT_BOOL", "bool", 1, 0, "bool", "bool_val", "BOOL", "b1"),
    (11, "qint8", "DT_QINT8", "q:int8", 1, 0, "quantized", "int_val", "I8", "i1"),
    (12, "quint8", "DT_QUINT8", "q:uint8", 1, 0, "quantized", "int_val", "U8", "u1"),
    (13, "qint32", "DT_QINT32", "q:int32", 4, 4, "quantized", "int_val", "I32", "i4"),
    (14, "bfloat16", "DT_BFLOAT16", "ml:bfloat16", 2, 2, "float", "half_val", "BF16", None),
    (15, "qint16", "DT_QINT16", "q:int16", 2, 2, "quantized", "int_val", "I16", "i2"),
    (16, "quint16", "DT_QUINT16", "q:uint16", 2, 2, "quantized", "int_val", "U16", "u2"),
    (17, "uint16", "DT_UINT16", "uint16", 2, 2, "uint", "int_val", "U16", "u2"),
    (
        18,
        "complex128",
        "DT_COMPLEX128",
        "complex128",
        16,
        8,
        "complex",
        "dcomplex_val",
        None,
        "c16",
    ),
    (19, "float16", "DT_HALF", "float16", 2, 2, "float", "half_val", "F16", "f2"),
    (20, "resource", "DT_RESOURCE", None, -1, -1, "resource", None, None, None),
    (21, "variant", "DT_VARIANT", "object", 0, -1, "variant", "variant_val", None, None),
    (22, "uint32", "DT_UINT32", "uint32", 4, 4, "uint", "uint32_val", "U32", "u4"),
    (23, "uint64", "DT_UINT64", "uint64", 8, 8, "uint", "uint64_val", "U64", "u8"),
    (
        24,
        "float8_e5m2",
        "DT_FLOAT8_E5M2",
        "ml:float8_e5m2",
        1,
        0,
        "float",
        "float8_val",
        "F8_E5M2",
        None,
    ),
    (
        25,
        "float8_e4m3fn",
        "DT_FLOAT8_E4M3FN",
        "ml:float8_e4m3fn",
        1,
        0,
        "float",
        "float8_val",
        "F8_E4M3",
        None,
    ),
    (
        26,
        "float8_e4m3fnuz",
        "DT_FLOAT8_E4M3FNUZ",
        "ml:float8_e4m3fnuz",
        1,
        0,
        "float",
        "float8_val",
        "F8_E4M3FNUZ",
        None,
    ),
    (
        27,
        "float8_e4m3b11fnuz",
        "DT_FLOAT8_E4M3B11FNUZ",
        "ml:float8_e4m3b11fnuz",
        1,
        0,
        "float",
        "float8_val",
        None,
        None,
    ),
    (
        28,
        "float8_e5m2fnuz",
        "DT_FLOAT8_E5M2FNUZ",
        "ml:float8_e5m2fnuz",
        1,
        0,
        "float",
        "float8_val",
        "F8_E5M2FNUZ",
        None,
    ),
    (29, "int4", "DT_INT4", "ml:int4", 1, 0, "int", "int_val", "I8", None),
    (30, "uint4", "DT_UINT4", "ml:uint4", 1, 0, "uint", "int_val", "U8", None),
    (31, "int2", "DT_INT2", "ml:int2", 1, 0, "int", "int_val", "I8", None),
    (32, "uint2", "DT_UINT2", "ml:uint2", 1, 0, "uint", "int_val", "U8", None),
    (
        33,
        "float4_e2m1fn",
        "DT_FLOAT4_E2M1FN",
        "ml:float4_e2m1fn",
        1,
        0,
        "float",
        "float8_val",
        None,
        None,
    ),
]

_BY_CODE: Dict[int, DType] = {row[0]: DType(*row) for row in _ROWS}
_BY_NAME: Dict[str, DType] = {d.name: d for d in _BY_CODE.values()}
_BY_NAME.update({d.enum_name: d for d in _BY_CODE.values()})
_BY_NAME.update({"half": _BY_CODE[19], "float": _BY_CODE[1], "double": _BY_CODE[2]})


def all_dtypes() -> Tuple[DType, ...]:
    """Every known DataType row, by code."""
    return tuple(_BY_CODE[c] for c in sorted(_BY_CODE))


def by_code(code: int) -> DType:
    """The DType for a DataType enum value; unknown values get a placeholder row."""
    d = _BY_CODE.get(code)
    if d is None:
        return _placeholder(code)
    return d


@lru_cache(maxsize=None)
def _placeholder(code: int) -> DType:
    if code > 100 and code - 100 in _BY_CODE:
        base = _BY_CODE[code - 100]
        return DType(
            code,
            base.name + "_ref",
            base.enum_name + "_REF",
            None,
            -1,
            -1,
            "reference",
            None,
            None,
            None,
        )
    return DType(
        code,
        f"unknown_dtype_{code}",
        f"DT_INVALID({code})" if code == 0 else f"DT_UNKNOWN_{code}",
        None,
        -1,
        -1,
        "unknown",
        None,
        None,
        None,
    )


def by_name(name: str) -> DType:
    """Looks a dtype up by tf.DType name (``float32``), enum name (``DT_FLOAT``) or alias."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown TensorFlow dtype name {name!r}") from None


@lru_cache(maxsize=None)
@lru_cache(maxsize=None)
def numpy_dtype(code: int) -> Any:
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


@lru_cache(maxsize=None)
def _code_by_numpy() -> Dict[Any, int]:
    """numpy dtype -> DataType code, for the types an array can say it is (quantized types
    share their base type's numpy dtype, so they are written only when asked for by name)."""
    out: Dict[Any, int] = {}
    for d in all_dtypes():
        if d.numpy is None or d.kind in ("string", "variant", "quantized"):
            continue
        out.setdefault(numpy_dtype(d.code), d.code)
    return out


def code_of(dtype: Any) -> int:
    """The DataType code of a numpy dtype (bytes/str/object arrays are strings).

    Raises ValueError for a numpy dtype TensorFlow has no equivalent of."""
    import numpy as np

    dt = np.dtype(dtype)
    if dt.kind in "OSU":
        return STRING
    code = _code_by_numpy().get(dt)
    if code is None:
        raise ValueError(f"numpy dtype {dt} has no TensorFlow equivalent")
    return code
