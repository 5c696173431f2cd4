"""A TF-to-PyTorch weight conversion in the style of the BERT converters: list the
checkpoint, skip optimizer state, load each weight, transpose kernels, and name the result
the PyTorch way. Prints what it would assign (name, shape, digest)."""

import hashlib
import sys

import numpy as np
import tensorflow as tf

SKIPPED = (
    "adam_v",
    "adam_m",
    "AdamWeightDecayOptimizer",
    "AdamWeightDecayOptimizer_1",
    "global_step",
    "_CHECKPOINTABLE_OBJECT_GRAPH",
    "save_counter",
    "optimizer",
)


def pytorch_name(parts):
    out = []
    for part in parts:
        if part in ("kernel", "gamma"):
            out.append("weight")
        elif part in ("output_bias", "beta"):
            out.append("bias")
        elif part == "output_weights":
            out.append("weight")
        elif part.startswith("layer_") and part[6:].isdigit():
            out.extend(["layer", part[6:]])
        else:
            out.append(part)
    return ".".join(out)


def convert(tf_path):
    init_vars = tf.train.list_variables(tf_path)
    names, arrays = [], []
    for name, shape in init_vars:
        print(f"Loading TF weight {name} with shape {shape}")
        array = tf.train.load_variable(tf_path, name)
        names.append(name)
        arrays.append(array)
    converted = {}
    for name, array in zip(names, arrays):
        parts = name.split("/")
        if any(p in SKIPPED for p in parts):
            print(f"Skipping {'/'.join(parts)}")
            continue
        if parts[-1] in (".ATTRIBUTES", "VARIABLE_VALUE") or ".ATTRIBUTES" in parts:
            parts = parts[: parts.index(".ATTRIBUTES")]
        if parts and parts[-1] == "kernel":
            array = np.transpose(array)
        if isinstance(array, bytes) or np.asarray(array).dtype.kind == "O":
            print(f"Skipping non-numeric {name}")
            continue
        array = np.ascontiguousarray(array)
        converted[pytorch_name(parts)] = array
    for key in sorted(converted):
        a = converted[key]
        print(f"{key} {a.dtype} {list(np.shape(a))} {hashlib.sha256(a.tobytes()).hexdigest()[:16]}")
    return converted


if __name__ == "__main__":
    for path in sys.argv[1:]:
        print(f"== {path.rsplit('/', 1)[-1]}")
        try:
            convert(path)
        except (tf.errors.OpError, ValueError) as e:
            print(f"failed: {type(e).__name__}: {e}")
