"""The one dtype table (tfckpt/dtypes.py) against the native core, the protobuf enum and
TensorFlow itself."""

import numpy as np
import pytest

import tfckpt
from tfckpt import _native
from tfckpt.dtypes import STRING, VARIANT, all_dtypes, by_code, by_name, code_of, numpy_dtype
from tfckpt.proto import DataType


def test_itemsize_is_the_native_cores_element_size():
    sizes = _native.dtype_sizes
    for d in all_dtypes():
        assert d.itemsize == sizes[d.code], d.name
    assert by_code(0).itemsize == sizes[0] == -1
    assert by_code(99).itemsize == -1


def test_codes_and_enum_names_are_the_protobuf_enums():
    for d in all_dtypes():
        assert DataType.Value(d.enum_name) == d.code
    # Every value the enum defines below the reference types has a row (0 is DT_INVALID).
    defined = {v.number for v in DataType.DESCRIPTOR.values if 0 < v.number < 100}
    assert defined == {d.code for d in all_dtypes()}


def test_names_sizes_and_kinds_agree_with_tensorflow():
    import tensorflow as tf

    for d in all_dtypes():
        t = tf.dtypes.as_dtype(d.code)
        assert t.name == d.name, d.code
        if d.itemsize > 0:
            assert t.size == d.itemsize, d.name
        assert t.is_quantized == d.is_quantized, d.name
        assert t.is_floating == (d.kind == "float"), d.name
        assert t.is_complex == (d.kind == "complex"), d.name
        assert t.is_bool == (d.kind == "bool"), d.name
        if d.kind in ("int", "uint"):
            assert t.is_integer and t.is_unsigned == (d.kind == "uint"), d.name
        if d.kind not in ("quantized", "string", "variant", "resource"):
            assert np.dtype(t.as_numpy_dtype) == numpy_dtype(d.code), d.name
    for name in ("half", "float", "double", "DT_BFLOAT16"):
        assert by_name(name) is by_name(tf.dtypes.as_dtype(name.lower().replace("dt_", "")).name)


def test_swap_unit_divides_the_element_size():
    for d in all_dtypes():
        if d.itemsize > 1:
            assert d.swap > 0 and d.itemsize % d.swap == 0, d.name
        elif d.itemsize == 1:
            assert d.swap == 0, d.name


def test_code_of_a_numpy_dtype():
    assert code_of(np.float32) == 1 and code_of(np.dtype("<f4")) == 1
    assert code_of(np.int8) == 6  # never qint8: quantized types are asked for by name
    assert code_of(np.dtype("S3")) == code_of(np.dtype("U2")) == code_of(object) == STRING
    import ml_dtypes

    assert code_of(ml_dtypes.bfloat16) == 14 and code_of(ml_dtypes.int4) == 29
    with pytest.raises(ValueError, match="numpy dtype float128|has no TensorFlow equivalent"):
        code_of(np.dtype("V4"))
    assert VARIANT == tfckpt.dtypes.by_name("variant").code


def test_safetensors_and_zarr_names_hold_the_same_bytes():
    for d in all_dtypes():
        if d.zarr is not None:
            assert np.dtype(d.zarr).itemsize == d.itemsize, d.name
        if d.safetensors is not None:
            bits = {
                "BOOL": 8,
                "U8": 8,
                "I8": 8,
                "I16": 16,
                "U16": 16,
                "F16": 16,
                "BF16": 16,
                "I32": 32,
                "U32": 32,
                "F32": 32,
                "C64": 64,
                "F64": 64,
                "I64": 64,
                "U64": 64,
                "F8_E5M2": 8,
                "F8_E4M3": 8,
                "F8_E4M3FNUZ": 8,
                "F8_E5M2FNUZ": 8,
            }[d.safetensors]
            assert bits == 8 * d.itemsize, d.name
