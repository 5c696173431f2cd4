"""Casting a value to the dtype a checkpoint stores, without silent loss: the one rule that
``edit``, ``Writer.add(dtype=...)`` and the converters follow."""

from __future__ import annotations

import warnings
from typing import Any, Optional

from .errors import InvalidArgumentError

__all__ = ["cast_value"]


def cast_value(key: str, value: Any, target: Any, *, allow_cast: bool = False) -> Any:
    """`value` (a numpy array) as numpy dtype `target`, without silent loss.

    The cast is made when it is exact for every element (float64 ``1.5`` into float32,
    int64 ``3`` into float32); anything else is refused unless `allow_cast`, and even then
    a value that does not fit the target (``1e300`` into float32, ``300`` into uint8, NaN
    into an integer) is refused: it would be stored as something else entirely.
    """
    import numpy as np

    if value.dtype == target:
        return value
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cast = value.astype(target)
        overflow = _overflows(value, cast, target)
        if overflow is not None:
            raise InvalidArgumentError(
                f"{key}: the value {overflow} does not fit {target.name}; nothing was cast"
            )
        if not allow_cast and not _round_trips(value, cast):
            raise InvalidArgumentError(
                f"{key}: the value is {value.dtype}, the checkpoint holds {target.name}, and "
                "casting would change values; pass allow_cast (--cast) to round them, or "
                "allow_dtype_change (--allow-dtype-change) to store the value's own dtype"
            )
    return cast


def _overflows(value: Any, cast: Any, target: Any) -> Optional[str]:
    """The first element of `value` that cannot be represented in `target` at all (as
    text), or None: a finite number that becomes infinite, an integer out of range, NaN or
    infinity into an integer, a complex number with an imaginary part into a real type."""
    import numpy as np

    flat, out = value.reshape(-1), cast.reshape(-1)
    if value.dtype.kind == "c" and target.kind != "c":
        bad = np.flatnonzero(flat.imag != 0)
        if bad.size:
            return repr(flat[bad[0]].item())
        flat = flat.real
    if target.kind in "iu" and flat.dtype.kind in "fiub":
        info = np.iinfo(target)
        if flat.dtype.kind == "f":
            wide = flat.astype(np.float64)
            bad = np.flatnonzero(
                ~np.isfinite(wide) | (wide < float(info.min)) | (wide >= float(info.max) + 1.0)
            )
        else:
            bad = np.flatnonzero((flat < info.min) | (flat > info.max))
    elif target.kind in "fc" or _is_float_like(target):
        finite = (
            np.isfinite(flat.astype(np.complex128 if flat.dtype.kind == "c" else np.float64))
            if flat.dtype.kind in "fciub"
            else np.ones(flat.shape, bool)
        )
        landed = np.isfinite(out.astype(np.complex128 if out.dtype.kind == "c" else np.float64))
        bad = np.flatnonzero(finite & ~landed)
    else:
        return None
    return repr(flat[bad[0]].item()) if bad.size else None


def _is_float_like(dtype: Any) -> bool:
    """bfloat16 and the other ml_dtypes floats, which numpy gives kind 'V'."""
    return dtype.kind == "V" and "float" in dtype.name


def _round_trips(value: Any, cast: Any) -> bool:
    """Whether `cast`, converted back, is `value` element for element (NaN equal to NaN)."""
    import numpy as np

    if value.dtype == object or cast.dtype == object:
        return bool(np.all(value == cast))
    back = cast.astype(value.dtype)
    if value.dtype.kind in "fc" or _is_float_like(value.dtype):
        return bool(np.array_equal(back, value, equal_nan=True))
    return bool(np.array_equal(back, value))
