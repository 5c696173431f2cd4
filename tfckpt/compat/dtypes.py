"""``tf.dtypes``: TensorFlow's DType objects, built on tfckpt's one dtype table
(:mod:`tfckpt.dtypes`). They compare equal to TensorFlow's names, numpy types and enum values
as ``tf.float32`` does, and ``as_numpy_dtype`` gives what TensorFlow gives, quirks included
(a structured dtype for quantized types, ``KeyError`` for variant and resource)."""

from __future__ import annotations

import builtins
from typing import Any, Dict, Tuple

from tfckpt import dtypes as _table

from .namespace import missing

__all__ = ["DType", "as_dtype", "TOP_LEVEL"]

#: The dtype constants TensorFlow has at its top level (``tf.float32``); the newer narrow
#: types (float8, int4, float4 ...) are only in ``tf.dtypes``.
TOP_LEVEL: Tuple[str, ...] = (
    "bfloat16",
    "bool",
    "complex128",
    "complex64",
    "double",
    "float16",
    "float32",
    "float64",
    "half",
    "int16",
    "int32",
    "int64",
    "int8",
    "qint16",
    "qint32",
    "qint8",
    "quint16",
    "quint8",
    "resource",
    "string",
    "uint16",
    "uint32",
    "uint64",
    "uint8",
    "variant",
)


class DType:
    """One TensorFlow DataType, as ``tf.DType`` presents it to scripts."""

    __slots__ = ("_row",)

    def __init__(self, type_enum: int) -> None:
        self._row = _table.by_code(int(type_enum))

    @property
    def name(self) -> str:
        return self._row.name

    @property
    def as_datatype_enum(self) -> int:
        return self._row.code

    @property
    def as_numpy_dtype(self) -> Any:
        """The numpy type TensorFlow names: a scalar type, ``object`` for strings, a
        structured dtype for quantized types; ``KeyError`` where there is none."""
        import numpy as np

        row = self._row
        if row.kind in ("variant", "resource") or row.numpy is None:
            raise KeyError(row.code)
        if row.kind == "string":
            return object
        if row.is_quantized:
            return np.dtype([(row.name, _table.numpy_dtype(row.code))])
        return _table.numpy_dtype(row.code).type

    @property
    def size(self) -> int:
        return max(self._row.itemsize, 0)

    @property
    def base_dtype(self) -> "DType":
        return self

    @property
    def real_dtype(self) -> "DType":
        return as_dtype({"complex64": "float32", "complex128": "float64"}.get(self.name, self.name))

    is_floating = property(lambda self: self._row.kind == "float")
    is_complex = property(lambda self: self._row.kind == "complex")
    is_integer = property(lambda self: self._row.kind in ("int", "uint"))
    is_unsigned = property(lambda self: self._row.kind == "uint")
    is_bool = property(lambda self: self._row.kind == "bool")
    is_quantized = property(lambda self: self._row.is_quantized)

    def __eq__(self, other: object) -> bool:
        if other is None:
            return False
        if not isinstance(other, DType):
            try:
                other = as_dtype(other)
            except TypeError:
                return False
        return self.as_datatype_enum == other.as_datatype_enum

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return self.as_datatype_enum

    def __repr__(self) -> str:
        return f"tf.{self.name}"

    def __str__(self) -> str:
        return f"<dtype: {self.name!r}>"

    def __reduce__(self) -> Any:
        return as_dtype, (self.name,)

    def __getattr__(self, attr: str) -> Any:
        missing("tensorflow.dtypes.DType", attr)


_BY_CODE: Dict[int, DType] = {d.code: DType(d.code) for d in _table.all_dtypes()}
_BY_NAME: Dict[str, DType] = {d.name: _BY_CODE[d.code] for d in _table.all_dtypes()}
_BY_NAME.update(half=_BY_NAME["float16"], float=_BY_NAME["float32"], double=_BY_NAME["float64"])


def as_dtype(type_value: Any) -> DType:
    """The DType for a DType, a TensorFlow type name, an enum value or a numpy type."""
    if isinstance(type_value, DType):
        return type_value
    if isinstance(type_value, int) and not isinstance(type_value, builtins.bool):
        if type_value in _BY_CODE:
            return _BY_CODE[type_value]
    elif isinstance(type_value, str):
        if type_value in _BY_NAME:
            return _BY_NAME[type_value]
    else:
        found = _from_numpy(type_value)
        if found is not None:
            return found
    raise TypeError(
        f"Cannot convert the argument `type_value`: {type_value!r} to a TensorFlow DType."
    )


def _from_numpy(type_value: Any) -> "DType | None":
    import numpy as np

    try:
        dt = np.dtype(type_value)
    except TypeError:
        return None
    if dt.names and len(dt.names) == 1 and dt.names[0] in _BY_NAME:  # quantized: [("qint8", i1)]
        found = _BY_NAME[dt.names[0]]
        return found if found.is_quantized else None
    try:
        return _BY_CODE[_table.code_of(dt)]
    except ValueError:
        return None


# The constants shadow builtins (bool, float) here: code above says builtins.bool.
globals().update(_BY_NAME)
__all__ += sorted(_BY_NAME)


def __getattr__(name: str) -> Any:
    missing("tensorflow.dtypes", name)
