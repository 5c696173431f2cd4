"""TensorProto -> numpy, for the tensors inside variant values (and format V1 data)."""

from __future__ import annotations

from .dtypes import RESOURCE, STRING, VARIANT, by_code, code_of, numpy_dtype
from .entries import Variant
from .errors import CorruptCheckpointError, InvalidArgumentError, UnsupportedCheckpointError

__all__ = ["to_numpy", "from_numpy", "decode_variant", "variant_to_bytes"]

_MAX_ELEMENTS = 1 << 31  # a typed field value is repeated at most this far
# A TensorProto that stores fewer values than it declares is filled with the last one (as
# TensorFlow does), so a few bytes could declare gigabytes. The filled tensor may take at
# most this many bytes per byte of the serialized proto, beyond a small allowance: reading
# a hostile variant then costs memory in proportion to the file.
_FILL_RATIO = 64
_FILL_FREE_BYTES = 1 << 12


def _check_fill(tp, n: int, stored: int, itemsize: int) -> None:
    if stored >= n:
        return
    need = n * max(itemsize, 8)
    if need > _FILL_FREE_BYTES + _FILL_RATIO * tp.ByteSize():
        raise UnsupportedCheckpointError(
            f"TensorProto declares {n} elements but stores {stored}; filling it would take "
            f"{need} bytes from a {tp.ByteSize()}-byte proto (refused: limit "
            f"{_FILL_FREE_BYTES} + {_FILL_RATIO} bytes per proto byte)"
        )


def to_numpy(tp):
    """Converts a TensorProto message to a numpy array (object arrays for strings/variants)."""
    import numpy as np

    code = tp.dtype
    shape = tuple(d.size for d in tp.tensor_shape.dim)
    if any(d < 0 for d in shape):
        raise CorruptCheckpointError(f"TensorProto with invalid shape {list(shape)}")
    n = 1
    for d in shape:
        n *= d
    d = by_code(code)
    if code == RESOURCE:
        _check_fill(tp, n, len(tp.resource_handle_val), 8)
        return (
            np.array([repr(h) for h in tp.resource_handle_val], dtype=object).reshape(shape)
            if n == len(tp.resource_handle_val)
            else np.empty(shape, dtype=object)
        )
    if d.numpy is None:
        raise UnsupportedCheckpointError(f"TensorProto of dtype {d.name} cannot be converted")
    dtype = numpy_dtype(code)
    if tp.tensor_content and code not in (STRING, VARIANT):
        if len(tp.tensor_content) != n * dtype.itemsize:
            raise CorruptCheckpointError(
                f"TensorProto tensor_content of {len(tp.tensor_content)} bytes for "
                f"{d.name}{list(shape)}"
            )
        return np.frombuffer(tp.tensor_content, dtype=dtype).reshape(shape).copy()
    if d.proto_field == "float8_val":
        raw = np.frombuffer(tp.float8_val, dtype=np.uint8)
        values = raw.view(dtype)
    else:
        field = d.proto_field
        if field is None:
            raise UnsupportedCheckpointError(f"TensorProto of dtype {d.name} cannot be converted")
        values = list(getattr(tp, field))
        if code == VARIANT:
            values = [
                Variant(v.type_name, bytes(v.metadata), [to_numpy(t) for t in v.tensors])
                for v in values
            ]
    if n > _MAX_ELEMENTS and len(values) < n:
        raise CorruptCheckpointError(f"TensorProto declares {n} elements but stores {len(values)}")
    _check_fill(tp, n, len(values), dtype.itemsize)
    if code in (STRING, VARIANT):
        out = np.empty(n, dtype=object)
        if values:
            out[: len(values)] = values[:n]
            out[len(values) :] = [values[-1]] * max(0, n - len(values))
        return out.reshape(shape)
    if d.kind == "complex":
        flat = np.asarray(values, dtype=np.float32 if code == 8 else np.float64)
        values = flat[0::2] + 1j * flat[1::2] if flat.size else flat
    if d.proto_field == "half_val":
        arr = np.asarray(values, dtype=np.uint32).astype(np.uint16).view(dtype)
    elif d.is_quantized:
        arr = np.asarray(values, dtype=np.int64).astype(dtype)
    else:
        arr = np.asarray(values).astype(dtype)
    if arr.size == n:
        return arr.reshape(shape)
    if arr.size == 0:
        return np.zeros(shape, dtype=dtype)
    if arr.size > n:
        raise CorruptCheckpointError(f"TensorProto stores {arr.size} values for {n} elements")
    # TensorFlow repeats the last value to fill the tensor.
    out = np.empty(n, dtype=dtype)
    out[: arr.size] = arr
    out[arr.size :] = arr[-1]
    return out.reshape(shape)


def from_numpy(arr):
    """A TensorProto message holding `arr` (tensor_content for numbers, string_val for
    strings, variant_val for Variant objects)."""
    import numpy as np

    from .proto import TensorProto

    arr = np.asarray(arr)
    tp = TensorProto()
    if arr.dtype == object and arr.size and all(hasattr(x, "type_name") for x in arr.reshape(-1)):
        tp.dtype = VARIANT
        for v in arr.reshape(-1):
            tp.variant_val.add().CopyFrom(_variant_message(v))
    else:
        try:
            tp.dtype = code_of(arr.dtype)
        except ValueError as e:
            raise InvalidArgumentError(str(e)) from None
        if tp.dtype == STRING:
            tp.string_val.extend(
                x if isinstance(x, bytes) else str(x).encode("utf-8")
                for x in arr.reshape(-1).tolist()
            )
        else:
            tp.tensor_content = np.ascontiguousarray(arr).tobytes()
    tp.tensor_shape.SetInParent()  # a scalar's shape is present and empty, as TF writes it
    for d in arr.shape:
        tp.tensor_shape.dim.add(size=int(d))
    return tp


def _variant_message(v):
    from .proto import VariantTensorDataProto

    msg = VariantTensorDataProto(type_name=v.type_name, metadata=bytes(v.metadata))
    for t in v.tensors:
        msg.tensors.add().CopyFrom(from_numpy(t))
    return msg


def variant_to_bytes(v) -> bytes:
    """Serializes a tfckpt.Variant (or raw bytes, passed through) for a DT_VARIANT tensor."""
    if isinstance(v, (bytes, bytearray)):
        return bytes(v)
    return _variant_message(v).SerializeToString()


def decode_variant(raw: bytes, key: str) -> Variant:
    """One serialized VariantTensorDataProto (an element of a DT_VARIANT tensor) as a
    :class:`tfckpt.Variant`."""
    from .proto import VariantTensorDataProto

    msg = VariantTensorDataProto()
    try:
        msg.ParseFromString(raw)
    except Exception:
        raise CorruptCheckpointError(
            f"variant tensor {key}: Unable to parse VariantTensorDataProto from buffer of size "
            f"{len(raw)}",
            key=key,
        ) from None
    return Variant(msg.type_name, bytes(msg.metadata), [to_numpy(t) for t in msg.tensors])
