"""Prints everything TensorFlow's checkpoint-reading API says about each path on the command
line. tests/test_compat.py runs it under TensorFlow and under ``python -m tfckpt.compat`` and
compares the two outputs exactly."""

import hashlib
import os
import sys

import numpy as np
import tensorflow as tf


def attempt(label, fn):
    try:
        result = fn()
    except Exception as e:  # noqa: BLE001 - the error is the result
        print(f"  {label}: raised {type(e).__name__}: {e}")
        return None
    return result


def describe(value):
    """Type, dtype, shape, writability and a digest of the contents."""
    if isinstance(value, bytes):
        return f"bytes {value!r}"
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            body = repr(value.tolist()).encode()
        else:
            body = value.tobytes()
        digest = hashlib.sha256(body).hexdigest()[:16]
        return f"ndarray {value.dtype} {value.shape} writeable={value.flags.writeable} {digest}"
    return f"{type(value).__name__} {value!r}"


def numpy_type(dtype):
    try:
        return repr(dtype.as_numpy_dtype)
    except KeyError as e:
        return f"KeyError {e}"


def probe(path):
    print(f"== {os.path.basename(path)}")
    reader = attempt("load_checkpoint", lambda: tf.train.load_checkpoint(path))
    new = attempt("NewCheckpointReader", lambda: tf.compat.v1.train.NewCheckpointReader(path))
    if new is not None:
        print(f"  NewCheckpointReader: {len(new.get_variable_to_shape_map())} keys")
    attempt("list_variables", lambda: print(f"  list_variables: {tf.train.list_variables(path)}"))
    if os.path.isdir(path):
        attempt("latest_checkpoint", lambda: print(f"  latest: {tf.train.latest_checkpoint(path)}"))
    if reader is None:
        return
    dtypes = reader.get_variable_to_dtype_map()
    shapes = reader.get_variable_to_shape_map()
    for name in sorted(shapes):
        d = dtypes[name]
        print(
            f"  {name!r} {shapes[name]} {d!r} {d.name} {d.as_datatype_enum} {numpy_type(d)} "
            f"{d == d.name} {d == tf.as_dtype(d.as_datatype_enum)}"
        )
        value = attempt(f"get_tensor {name!r}", lambda: reader.get_tensor(name))
        if value is not None:
            print(f"    {describe(value)}")
    first = sorted(shapes)[0] if shapes else "none"
    print(f"  has_tensor: {reader.has_tensor(first)} {reader.has_tensor('no/such/key')}")
    attempt("get_tensor missing", lambda: reader.get_tensor("no/such/key"))
    attempt("load_variable missing", lambda: tf.train.load_variable(path, "no/such/key"))
    value = attempt("load_variable :0", lambda: tf.train.load_variable(path, first + ":0"))
    if value is not None:
        print(f"  load_variable {first}:0 -> {describe(value)}")
    text = reader.debug_string().decode("utf-8", errors="ignore")
    print("  debug_string:", sorted(text.splitlines()))


for p in sys.argv[1:]:
    probe(p)
print(
    "dtypes:",
    [
        (n, repr(getattr(tf, n)), str(getattr(tf, n)))
        for n in ("float32", "half", "double", "bfloat16", "string", "variant", "qint8")
    ],
)
print(
    "equal:",
    tf.float32 == "float32",
    tf.float32 == np.float32,
    tf.float32 != tf.int32,
    tf.float32 == "no-such-type",
    tf.as_dtype(np.int64) == tf.int64,
    hash(tf.float32) == hash(tf.as_dtype("float32")),
)
