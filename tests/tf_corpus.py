"""Builds a corpus of REAL TensorFlow checkpoints for the tfckpt test suite.

TensorFlow (2.21, tensorflow-cpu) is only the test oracle here: this module
uses it to *write* checkpoints of every kind; tfckpt itself must read them
without TensorFlow.  Nothing in here imports tfckpt.

Entry point: ``build_corpus(root) -> dict[str, Case]``.  Every case lives in
its own subdirectory ``root/<case name>/`` and, once complete, gets a
``case.json`` marker there, so an existing corpus directory can be reused
(``build_corpus(root, reuse=True)``; see ``tests/conftest.py`` and the
``TFCKPT_CORPUS_DIR`` environment variable).

The ``multi_device*`` cases need several logical CPU devices, which must be
configured before TensorFlow initialises its runtime; they are therefore built
by running this file as a script in a separate process (started first, so it
runs in parallel with the in-process cases).

Run ``python tests/tf_corpus.py OUTDIR`` to build a corpus by hand; it prints
every case and the build time.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time
import warnings
from typing import Callable, Dict, Iterable, Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import ml_dtypes  # noqa: E402
import numpy as np  # noqa: E402

# TensorFlow is imported lazily (``_tf()``) so that the multi-device
# subprocess can configure logical devices before anything touches the
# runtime, and so that importing this module for its constants is cheap.

SEED = 0
CASE_FILE = "case.json"
#: bump whenever a builder changes, so reused corpus directories are rebuilt
CORPUS_VERSION = 1
MULTI_DEVICE_COUNT = 3


@dataclasses.dataclass
class Case:
    """One checkpoint of the corpus.

    ``prefix`` is the checkpoint prefix (path without ``.index``); for the V1
    case it is the single V1 file, and for the ``not_checkpoint_*`` kinds the
    path of the non-checkpoint file.  ``extra`` holds case-specific facts
    (e.g. ``savedmodel_dir``, ``state_file``, ``expected_num_shards``).
    """

    name: str
    prefix: str
    kind: str
    notes: str
    extra: dict = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "Case":
        return cls(**d)


# --------------------------------------------------------------------------
# helpers


def _tf():
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except Exception:  # pragma: no cover - absl always ships with TF
        pass
    return tf


def _fresh_dir(path: pathlib.Path) -> pathlib.Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def _write_case(root: pathlib.Path, case: Case) -> Case:
    doc = {"corpus_version": CORPUS_VERSION, "case": case.to_json()}
    (root / case.name / CASE_FILE).write_text(json.dumps(doc, indent=2, sort_keys=True))
    return case


def load_case(root: pathlib.Path, name: str) -> Optional[Case]:
    """The complete case ``name`` in ``root``, or None (missing, partial or stale)."""
    f = pathlib.Path(root) / name / CASE_FILE
    if not f.is_file():
        return None
    try:
        doc = json.loads(f.read_text())
        if doc.get("corpus_version") != CORPUS_VERSION:
            return None
        return Case.from_json(doc["case"])
    except Exception:
        return None


def num_shards_on_disk(prefix: str) -> int:
    """Number of ``<prefix>.data-*`` files (not parsing the index)."""
    p = pathlib.Path(prefix)
    return len(list(p.parent.glob(p.name + ".data-*-of-*")))


# --------------------------------------------------------------------------
# dtypes

FLOAT_TYPES = {
    "float16": np.float16,
    "float32": np.float32,
    "float64": np.float64,
    "bfloat16": ml_dtypes.bfloat16,
    "float8_e5m2": ml_dtypes.float8_e5m2,
    "float8_e4m3fn": ml_dtypes.float8_e4m3fn,
    "float8_e4m3fnuz": ml_dtypes.float8_e4m3fnuz,
    "float8_e4m3b11fnuz": ml_dtypes.float8_e4m3b11fnuz,
    "float8_e5m2fnuz": ml_dtypes.float8_e5m2fnuz,
    "float4_e2m1fn": ml_dtypes.float4_e2m1fn,
}
INT_TYPES = {
    "int8": np.int8,
    "int16": np.int16,
    "int32": np.int32,
    "int64": np.int64,
    "uint8": np.uint8,
    "uint16": np.uint16,
    "uint32": np.uint32,
    "uint64": np.uint64,
    "int4": ml_dtypes.int4,
    "uint4": ml_dtypes.uint4,
    "int2": ml_dtypes.int2,
    "uint2": ml_dtypes.uint2,
}
# quantized dtype -> numpy base type of the same memory layout
QUANT_TYPES = {
    "qint8": np.int8,
    "quint8": np.uint8,
    "qint16": np.int16,
    "quint16": np.uint16,
    "qint32": np.int32,
}
COMPLEX_TYPES = {"complex64": np.complex64, "complex128": np.complex128}

#: tf.DType.name of every dtype a checkpoint bundle can hold (everything in
#: types.proto below 100 except DT_INVALID and DT_RESOURCE).  ``variant`` is
#: covered by the ``data_iterator`` case, all others by ``dtypes``.
ALL_SAVEABLE_DTYPE_NAMES = sorted(
    list(FLOAT_TYPES)
    + list(INT_TYPES)
    + list(QUANT_TYPES)
    + list(COMPLEX_TYPES)
    + ["bool", "string"]
)
DTYPES_CASE_DTYPE_NAMES = ALL_SAVEABLE_DTYPE_NAMES  # all but variant


def _float_values(npdt) -> np.ndarray:
    fi = ml_dtypes.finfo(npdt)
    specials = []
    nan_arr = np.array([np.nan]).astype(npdt).astype(np.float64)
    inf_arr = np.array([np.inf, -np.inf]).astype(npdt).astype(np.float64)
    if np.isnan(nan_arr).all():
        specials.append(np.nan)
    if np.isinf(inf_arr).all():
        specials += [np.inf, -np.inf]
    vals = [
        0.0,
        -0.0,
        0.5,
        1.0,
        -1.5,
        3.0,
        float(fi.max),
        float(fi.min),
        float(fi.tiny),
        float(fi.smallest_subnormal),
        -float(fi.smallest_subnormal),
    ] + specials
    with np.errstate(all="ignore"):
        return np.array(vals, dtype=np.float64).astype(npdt)


def _int_values(npdt) -> np.ndarray:
    ii = ml_dtypes.iinfo(npdt)
    lo, hi = int(ii.min), int(ii.max)
    vals = [0, 1, hi, hi - 1, lo, lo + 1, hi // 2]
    if lo < 0:
        vals += [-1]
    return np.array(vals, dtype=object).astype(np.int64 if hi < 2**63 else np.uint64).astype(npdt)


def _complex_values(npdt) -> np.ndarray:
    fdt = np.float32 if npdt == np.complex64 else np.float64
    fi = np.finfo(fdt)
    vals = [
        complex(1, 2),
        complex(-0.0, -1.5),
        complex(np.nan, np.inf),
        complex(-np.inf, 0.0),
        complex(float(fi.max), float(fi.min)),
        complex(float(fi.tiny), -float(fi.smallest_subnormal)),
    ]
    return np.array(vals, dtype=np.complex128).astype(npdt)


def dtype_test_arrays() -> Dict[str, np.ndarray]:
    """name -> 1-D numpy array of interesting values (quantized: base type)."""
    out: Dict[str, np.ndarray] = {}
    for name, t in FLOAT_TYPES.items():
        out[name] = _float_values(t)
    for name, t in INT_TYPES.items():
        out[name] = _int_values(t)
    for name, t in QUANT_TYPES.items():
        out[name] = _int_values(t)
    for name, t in COMPLEX_TYPES.items():
        out[name] = _complex_values(t)
    out["bool"] = np.array([True, False, False, True, True])
    out["string"] = np.array([b"a", b"", b"\xff\x00z", "\u00e9t\u00e9".encode()], dtype=object)
    return out


def _to_tensor(tf, name: str, arr: np.ndarray):
    if name in QUANT_TYPES:
        return tf.constant(arr, dtype=getattr(tf, name))
    if name == "string":
        return tf.constant(arr, dtype=tf.string)
    return tf.constant(arr)


def _build_dtypes(tf, d: pathlib.Path) -> Case:
    prefix = str(d / "dtypes")
    names, tensors = [], []
    for name, arr in dtype_test_arrays().items():
        t = _to_tensor(tf, name, arr)
        assert t.dtype.name == name, (name, t.dtype)
        scalar = arr[2:3].reshape(())
        empty = arr[:0].reshape((0, 3)) if name != "string" else np.zeros((0, 3), dtype=object)
        rank3 = (
            np.resize(arr, (2, 3, 4))
            if name != "string"
            else np.array([b"%d" % i for i in range(24)], dtype=object).reshape(2, 3, 4)
        )
        for key, a in (
            (f"dt/{name}", arr),
            (f"scalar/{name}", scalar),
            (f"empty/{name}", empty),
            (f"rank3/{name}", rank3),
        ):
            tt = _to_tensor(tf, name, a)
            assert tt.dtype.name == name and list(tt.shape) == list(a.shape), (
                key,
                tt.dtype,
                tt.shape,
            )
            names.append(key)
            tensors.append(tt)
    tf.raw_ops.SaveV2(
        prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names), tensors=tensors
    )
    return Case(
        "dtypes",
        prefix,
        "raw_savev2",
        "raw SaveV2, one single-shard bundle. For every saveable dtype D (all of types.proto except "
        "invalid/resource/variant): dt/D 1-D interesting values (floats: +-0, max, min, tiny, subnormals, "
        "NaN and +-inf where representable; ints: min/max/-1), scalar/D (scalar = dt/D[2]), empty/D "
        "(shape [0,3]) and rank3/D (shape [2,3,4], dt/D tiled). Quantized types created with "
        "tf.constant(base_int_array, dtype=tf.qintN); float8/float4/int4/uint4/int2/uint2 with "
        "tf.constant(ml_dtypes array). Nothing in TF 2.21 refused to save.",
        {"dtype_names": DTYPES_CASE_DTYPE_NAMES, "num_keys": len(names)},
    )


# --------------------------------------------------------------------------
# strings

LONG_STRING_LEN = (1 << 20) + 12345  # > 1 MiB


def string_test_arrays() -> Dict[str, np.ndarray]:
    rs = np.random.RandomState(SEED)
    long = rs.bytes(LONG_STRING_LEN)
    return {
        "str/empty_element": np.array([b""], dtype=object),
        "str/empty_scalar": np.array(b"", dtype=object),
        "str/scalar": np.array(b"hello checkpoint", dtype=object),
        "str/long": np.array([long], dtype=object),
        "str/binary": np.array(
            [bytes(range(256)), b"\x00", b"\xff\xfe\x00\x00\xff", b"a\x00b"], dtype=object
        ),
        "str/unicode": np.array(
            [
                s.encode("utf-8")
                for s in ["caf\u00e9", "\u65e5\u672c\u8a9e", "\U0001f600 emoji", "\u0416\u0416"]
            ],
            dtype=object,
        ),
        "str/zero_len": np.zeros((0,), dtype=object),
        "str/2d": np.array(
            [[b"r0c0", b"", b"r0c2"], [b"x" * 127, b"y" * 128, b"z" * 16384]], dtype=object
        ),
        "str/mixed_lengths": np.array([b"", b"a", b"b" * 200, long[:70000], b""], dtype=object),
    }


def _build_strings(tf, d: pathlib.Path) -> Case:
    prefix = str(d / "strings")
    arrays = string_test_arrays()
    names = list(arrays)
    tensors = [tf.constant(a, dtype=tf.string) for a in arrays.values()]
    tf.raw_ops.SaveV2(
        prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names), tensors=tensors
    )
    return Case(
        "strings",
        prefix,
        "raw_savev2",
        "raw SaveV2 of DT_STRING tensors: empty element, empty scalar, scalar, one >1 MiB random-bytes "
        "string, binary with \\x00/\\xff, UTF-8, a [0]-shaped tensor, a [2,3] tensor with lengths "
        "127/128/16384 (1/2/3-byte varints) and a mixed-length vector.",
        {"long_string_len": LONG_STRING_LEN},
    )


# --------------------------------------------------------------------------
# module_nested


def _build_module_nested(tf, d: pathlib.Path) -> Case:
    rs = np.random.RandomState(SEED)

    class Leaf(tf.Module):
        def __init__(self, n):
            super().__init__()
            self.w = tf.Variable(rs.randn(n, 2).astype(np.float32))
            self.b = tf.Variable(np.arange(2, dtype=np.float64) + n)

    class Root(tf.Module):
        def __init__(self):
            super().__init__()
            self.layers = [Leaf(1), Leaf(2), [Leaf(3), tf.Variable(np.int32(5))]]
            self.table = {
                "k.x/y": tf.Variable([1.0, 2.0, 3.0]),
                "plain": tf.Variable(np.int64(-7)),
                "a..b": tf.Variable([True, False]),
                ".S": tf.Variable(np.float16(1.5)),
                "trailing/": tf.Variable(np.uint8(200)),
                "\u043a\u043b\u044e\u0447": tf.Variable([0.25], dtype=tf.bfloat16),
            }
            setattr(self, "attr.with.dots", tf.Variable(np.ones((2, 2), np.float32)))
            setattr(self, "attr/with/slash", tf.Variable(np.full((3,), 2, np.int16)))
            self.nested = {"inner": [tf.Variable(np.float32(9.5)), {"deep": Leaf(4)}]}
            self.text = tf.Variable("a string variable")
            self.flag = tf.Variable(True)
            self.counter = tf.Variable(np.int64(123456789012))

    root = Root()
    ckpt = tf.train.Checkpoint(model=root, step=tf.Variable(np.int64(1)))
    prefix = ckpt.save(str(d / "ckpt"))
    return Case(
        "module_nested",
        prefix,
        "tf2_object",
        "tf.train.Checkpoint(model=nested tf.Module, step=...).save(): lists, nested lists, dicts with keys "
        "'k.x/y', 'a..b', '.S', 'trailing/', a Cyrillic key, attributes 'attr.with.dots' and "
        "'attr/with/slash' (escaping '.'->'..', '/'->'.S'), string/bool/int64/bfloat16/float16/uint8 "
        "variables. Single shard; `checkpoint` state file written by save().",
        {"state_file": str(d / "checkpoint")},
    )


# --------------------------------------------------------------------------
# keras


def _keras_model(keras, n_in=4, hidden=3, n_out=2):
    keras.utils.set_random_seed(SEED)
    model = keras.Sequential(
        [
            keras.Input((n_in,)),
            keras.layers.Dense(hidden, activation="relu", name="hidden"),
            keras.layers.Dense(n_out, name="logits"),
        ]
    )
    return model


def _build_keras_adam(tf, d: pathlib.Path) -> Case:
    import keras

    model = _keras_model(keras)
    opt = keras.optimizers.Adam(learning_rate=1e-2)
    model.compile(optimizer=opt, loss="mse")
    rs = np.random.RandomState(SEED)
    x = rs.randn(8, 4).astype(np.float32)
    y = rs.randn(8, 2).astype(np.float32)
    ckpt = tf.train.Checkpoint(model=model, optimizer=opt)
    mgr = tf.train.CheckpointManager(ckpt, str(d), max_to_keep=2)
    model.train_on_batch(x, y)
    mgr.save()
    model.train_on_batch(x, y)
    prefix = mgr.save()
    return Case(
        "keras_adam",
        prefix,
        "tf2_object",
        "Keras 3 Sequential(Dense 4->3 relu, Dense 3->2) + keras Adam, tf.train.Checkpoint(model, "
        "optimizer) via CheckpointManager(max_to_keep=2), train_on_batch then save, twice (ckpt-1, "
        "ckpt-2). Keras 3 layout: model weights appear ONLY under optimizer/_trainable_variables/N "
        "(shortest path wins in the object graph), Adam moments as optimizer/_variables/N; no "
        ".OPTIMIZER_SLOT keys.",
        {
            "state_file": str(d / "checkpoint"),
            "all_prefixes": [str(d / "ckpt-1"), str(d / "ckpt-2")],
        },
    )


def _build_tf2_optimizer_slots(tf, d: pathlib.Path) -> Case:
    class Dense(tf.Module):
        def __init__(self, n_in, n_out, seed, name):
            super().__init__(name=name)
            self.kernel = tf.Variable(
                tf.random.stateless_normal([n_in, n_out], seed=[SEED, seed]) * 0.5
            )
            self.bias = tf.Variable(tf.zeros([n_out]))

        def __call__(self, x):
            return x @ self.kernel + self.bias

    class MLP(tf.Module):
        def __init__(self):
            super().__init__()
            self.hidden = Dense(4, 3, 1, "hidden")
            self.out = Dense(3, 2, 2, "out")

        def __call__(self, x):
            return self.out(tf.nn.relu(self.hidden(x)))

    model = MLP()
    opt = tf.compat.v1.train.AdamOptimizer(0.01)
    x = tf.constant(np.random.RandomState(SEED).randn(5, 4).astype(np.float32))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(x) ** 2)
    grads = tape.gradient(loss, model.trainable_variables)
    opt.apply_gradients(zip(grads, model.trainable_variables))
    prefix = tf.train.Checkpoint(model=model, optimizer=opt).save(str(d / "ckpt"))
    return Case(
        "tf2_optimizer_slots",
        prefix,
        "tf2_object",
        "Eager tf.Module MLP + tf.compat.v1.train.AdamOptimizer after one step, tf.train.Checkpoint.save(): "
        "slot variables are keyed '<var path>/.OPTIMIZER_SLOT/optimizer/{m,v}/.ATTRIBUTES/VARIABLE_VALUE' "
        "(Keras 3 optimizers do not use this naming), plus optimizer/beta{1,2}_power.",
        {"state_file": str(d / "checkpoint")},
    )


def _build_keras_model_only(tf, d: pathlib.Path) -> Case:
    import keras

    model = _keras_model(keras)
    model(np.zeros((1, 4), np.float32))
    prefix = tf.train.Checkpoint(model=model).write(str(d / "model"))
    return Case(
        "keras_model_only",
        prefix,
        "tf2_object",
        "tf.train.Checkpoint(model=Keras 3 Sequential).write() (no optimizer, no save_counter, no state "
        "file): shows the Keras 3 model-side key layout.",
    )


def _build_keras_weights(tf, d: pathlib.Path) -> Case:
    import keras

    model = _keras_model(keras)
    model.compile(optimizer="adam", loss="mse")
    path = d / "model.weights.h5"
    model.save_weights(str(path))
    refused = {}
    for bad in ("model.ckpt", "model"):
        try:
            model.save_weights(str(d / bad))
            refused[bad] = None
        except Exception as e:  # Keras 3: ValueError, must end in .weights.h5
            refused[bad] = f"{type(e).__name__}: {e}"
    return Case(
        "keras_weights",
        str(path),
        "not_checkpoint_h5",
        "Keras 3 model.save_weights() only writes HDF5 '.weights.h5'; any other name is refused "
        "(see extra['save_weights_refused']). This file is HDF5, not a TF checkpoint.",
        {"save_weights_refused": refused},
    )


def _build_keras_archive(tf, d: pathlib.Path) -> Case:
    import keras

    model = _keras_model(keras)
    model.compile(optimizer="adam", loss="mse")
    path = d / "model.keras"
    model.save(str(path))
    return Case(
        "keras_archive",
        str(path),
        "not_checkpoint_keras",
        "Keras 3 model.save('model.keras'): a zip archive (config.json, metadata.json, "
        "model.weights.h5), not a TF checkpoint.",
    )


# --------------------------------------------------------------------------
# TF1 graph-mode cases


def _partitioned_init(tf, full: np.ndarray):
    """Initializer giving each partition its slice of ``full``."""

    def init(shape, dtype=None, partition_info=None):
        off = partition_info.var_offset if partition_info is not None else [0] * len(shape)
        sl = tuple(slice(o, o + n) for o, n in zip(off, shape))
        return tf.constant(full[sl], dtype=dtype)

    return init


def _build_tf1_partitioned(tf, d: pathlib.Path) -> Case:
    v1 = tf.compat.v1
    g = tf.Graph()
    with g.as_default():
        v1.set_random_seed(SEED)
        rs = np.random.RandomState(SEED)
        pv2 = v1.get_variable(
            "pv2",
            shape=[6, 3],
            dtype=tf.float32,
            initializer=_partitioned_init(tf, rs.randn(6, 3).astype(np.float32)),
            partitioner=v1.fixed_size_partitioner(2),
        )
        with v1.variable_scope("scope"):
            pv3 = v1.get_variable(
                "pv3",
                shape=[7, 4],
                dtype=tf.float32,
                initializer=_partitioned_init(tf, np.arange(28, dtype=np.float32).reshape(7, 4)),
                partitioner=v1.fixed_size_partitioner(3),
            )
        w = v1.get_variable("w", initializer=rs.randn(3, 4).astype(np.float32))
        b = v1.get_variable("b", initializer=np.zeros(4, np.float32))
        ints = v1.get_variable("ints", initializer=np.arange(5, dtype=np.int32), trainable=False)
        gs = v1.train.get_or_create_global_step()
        x = tf.constant(rs.randn(2, 6).astype(np.float32))
        h = tf.matmul(x, tf.convert_to_tensor(pv2))  # [2,3]
        out = tf.matmul(h, w) + b  # [2,4]
        loss = tf.reduce_sum(tf.square(out)) + tf.reduce_sum(tf.convert_to_tensor(pv3))
        train = v1.train.AdamOptimizer(0.1).minimize(loss, global_step=gs)
        saver = v1.train.Saver()  # V2, not sharded, save_relative_paths=False
        with v1.Session(graph=g) as s:
            s.run(v1.global_variables_initializer())
            s.run(train)
            prefix = saver.save(s, str(d / "model.ckpt"), global_step=gs)
    del pv3, ints
    return Case(
        "tf1_partitioned",
        prefix,
        "tf1_name_based",
        "TF1 graph mode, tf.compat.v1.train.Saver() defaults (V2, sharded=False, absolute paths in the "
        "state file): partitioned pv2 [6,3] (fixed_size_partitioner(2)), scope/pv3 [7,4] (3 parts: "
        "rows 3,2,2), w, b, ints (int32), global_step, AdamOptimizer after one step (slots w/Adam, "
        "w/Adam_1, partitioned slots pv2/Adam..., beta1_power, beta2_power). Also writes .meta.",
        {"state_file": str(d / "checkpoint"), "meta_graph": prefix + ".meta"},
    )


def _build_name_based_scalar(tf, d: pathlib.Path) -> Case:
    v1 = tf.compat.v1
    g = tf.Graph()
    with g.as_default():
        gs = v1.train.get_or_create_global_step()
        bf = tf.Variable(
            np.array([1.0, -2.5, 3.140625, np.inf], dtype=ml_dtypes.bfloat16), name="bf16_var"
        )
        set_gs = gs.assign(42)
        saver = v1.train.Saver()
        with v1.Session(graph=g) as s:
            s.run(v1.global_variables_initializer())
            s.run(set_gs)
            prefix = saver.save(s, str(d / "model.ckpt"), global_step=gs, write_meta_graph=False)
    assert bf.dtype.base_dtype.name == "bfloat16"
    return Case(
        "name_based_v1_saver_scalar",
        prefix,
        "tf1_name_based",
        "TF1 Saver (V2 format), keys 'global_step' (int64 scalar = 42) and 'bf16_var' (bfloat16 [4]).",
        {"state_file": str(d / "checkpoint")},
    )


def _build_v1_format(tf, d: pathlib.Path) -> Case:
    v1 = tf.compat.v1
    g = tf.Graph()
    with g.as_default():
        rs = np.random.RandomState(SEED)
        tf.Variable(rs.randn(3, 2).astype(np.float32), name="f32")
        tf.Variable(np.array([1.5, -2.0]), name="f64")
        tf.Variable(np.array([1, -2, 3], np.int32), name="i32")
        tf.Variable(np.int64(-9), name="i64")
        tf.Variable(np.array([True, False]), name="flag")
        tf.Variable(np.array([b"v1", b"", b"\x00\xff"], dtype=object), dtype=tf.string, name="text")
        tf.Variable(np.array([0.5, -1.0], np.float16), name="half")
        tf.Variable(np.array([1 + 2j], np.complex64), name="c64")
        tf.Variable(np.array([7, 8], np.uint8), name="u8")
        v1.get_variable(
            "part",
            shape=[5, 3],
            initializer=_partitioned_init(tf, np.arange(15, dtype=np.float32).reshape(5, 3)),
            partitioner=v1.fixed_size_partitioner(2),
        )
        saver = v1.train.Saver(write_version=v1.train.SaverDef.V1)
        with v1.Session(graph=g) as s:
            s.run(v1.global_variables_initializer())
            path = saver.save(s, str(d / "model.ckpt"), write_meta_graph=False)
    return Case(
        "v1_format",
        path,
        "v1",
        "Old V1 format (SaverDef.V1): a single table file 'model.ckpt' of SavedSlice entries; float32, "
        "float64, int32, int64, bool, string, half, complex64, uint8 and a 2-way partitioned part [5,3]. "
        "TF's CheckpointReader cannot get_tensor half/complex64/partitioned from V1 (see oracle).",
        {"state_file": str(d / "checkpoint")},
    )


# --------------------------------------------------------------------------
# sharding policy


def _build_sharded_policy(tf, d: pathlib.Path) -> Case:
    rs = np.random.RandomState(SEED)
    max_shard = 2048
    ckpt = tf.train.Checkpoint(
        big=tf.Variable(rs.randn(64, 32).astype(np.float32)),  # 8 KiB -> 4+ slices
        half=tf.Variable(rs.randn(32, 48).astype(np.float16)),  # 3 KiB -> sliced
        u16=tf.Variable(np.arange(1536, dtype=np.uint16).reshape(48, 32)),
        bf16=tf.Variable(rs.randn(40, 40).astype(ml_dtypes.bfloat16)),
        f64=tf.Variable(rs.randn(20, 30)),
        i8=tf.Variable((np.arange(3000) % 256 - 128).astype(np.int8).reshape(100, 30)),
        c64=tf.Variable((rs.randn(300) + 1j * rs.randn(300)).astype(np.complex64)),
        text=tf.Variable(np.array([b"s%04d" % i for i in range(600)], dtype=object)),
        small=tf.Variable([1.0, 2.0]),
    )
    opts = tf.train.CheckpointOptions(
        experimental_sharding_callback=tf.train.experimental.MaxShardSizePolicy(
            max_shard_size=max_shard
        )
    )
    prefix = ckpt.save(str(d / "ckpt"), options=opts)
    return Case(
        "sharded_policy",
        prefix,
        "tf2_sharded",
        f"tf.train.Checkpoint saved with MaxShardSizePolicy(max_shard_size={max_shard}): float32 [64,32], "
        "float16 [32,48], uint16 [48,32], bfloat16 [40,40], float64 [20,30], int8 [100,30], complex64 [300] "
        "are split into slices (full-tensor entries with `slices` + slice keys) across many data shards. "
        "TF itself cannot assemble some sliced dtypes (see oracle errors).",
        {"max_shard_size": max_shard, "state_file": str(d / "checkpoint")},
    )


# --------------------------------------------------------------------------
# SavedModels


def _build_savedmodel(tf, d: pathlib.Path) -> Case:
    rs = np.random.RandomState(SEED)

    class Model(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(rs.randn(3, 2).astype(np.float32), name="w")
            self.b = tf.Variable(np.zeros(2, np.float32), name="b")
            self.steps = tf.Variable(np.int64(17), name="steps")
            self.vocab = [tf.Variable(np.array([b"a", b"b"], dtype=object))]

        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])
        def __call__(self, x):
            return tf.matmul(x, self.w) + self.b

    m = Model()
    m(tf.zeros([1, 3]))
    sm_dir = d / "saved_model"
    tf.saved_model.save(m, str(sm_dir))
    return Case(
        "savedmodel",
        str(sm_dir / "variables" / "variables"),
        "savedmodel",
        "tf.saved_model.save of a tf.Module with a tf.function and variables (w, b, steps int64, a list "
        "holding a string variable). Object-based keys; no `checkpoint` state file.",
        {"savedmodel_dir": str(sm_dir)},
    )


def _build_tf1_savedmodel(tf, d: pathlib.Path) -> Case:
    v1 = tf.compat.v1
    sm_dir = d / "saved_model"
    g = tf.Graph()
    with g.as_default():
        rs = np.random.RandomState(SEED)
        x = v1.placeholder(tf.float32, [None, 3], name="x")
        with v1.variable_scope("dense"):
            w = v1.get_variable("kernel", initializer=rs.randn(3, 2).astype(np.float32))
            b = v1.get_variable("bias", initializer=np.array([0.5, -0.5], np.float32))
        y = tf.identity(tf.matmul(x, w) + b, name="y")
        v1.train.get_or_create_global_step()
        with v1.Session(graph=g) as s:
            s.run(v1.global_variables_initializer())
            builder = v1.saved_model.Builder(str(sm_dir))
            sig = v1.saved_model.predict_signature_def({"x": x}, {"y": y})
            builder.add_meta_graph_and_variables(
                s,
                [v1.saved_model.tag_constants.SERVING],
                signature_def_map={"serving_default": sig},
            )
            builder.save()
    return Case(
        "tf1_savedmodel",
        str(sm_dir / "variables" / "variables"),
        "savedmodel",
        "TF1 tf.compat.v1.saved_model.Builder SavedModel: name-based keys dense/kernel, dense/bias, "
        "global_step.",
        {"savedmodel_dir": str(sm_dir)},
    )


# --------------------------------------------------------------------------
# special objects


def _build_data_iterator(tf, d: pathlib.Path) -> Case:
    it = iter(tf.data.Dataset.range(10).batch(3))
    first = next(it)
    ckpt = tf.train.Checkpoint(it=it)
    prefix = ckpt.save(str(d / "ckpt"))
    return Case(
        "data_iterator",
        prefix,
        "tf2_object",
        "tf.train.Checkpoint(it=iter(Dataset.range(10).batch(3))) after one next(): "
        "key it/.ATTRIBUTES/ITERATOR_STATE has dtype variant.",
        {"first_batch": first.numpy().tolist(), "state_file": str(d / "checkpoint")},
    )


def _build_lookup_table(tf, d: pathlib.Path) -> Case:
    table = tf.lookup.experimental.MutableHashTable(
        key_dtype=tf.string, value_dtype=tf.int64, default_value=-1
    )
    table.insert(
        tf.constant(["apple", "banana", "", "\u00fcber"]),
        tf.constant([1, 2, -3, 2**40], dtype=tf.int64),
    )
    dense = tf.lookup.experimental.DenseHashTable(
        key_dtype=tf.int64,
        value_dtype=tf.float32,
        default_value=-1.0,
        empty_key=-1,
        deleted_key=-2,
        initial_num_buckets=8,
    )
    dense.insert(tf.constant([3, 10, 42], dtype=tf.int64), tf.constant([0.5, 1.5, -2.0]))
    ckpt = tf.train.Checkpoint(table=table, dense=dense)
    prefix = ckpt.save(str(d / "ckpt"))
    return Case(
        "lookup_table",
        prefix,
        "tf2_object",
        "MutableHashTable string->int64 (4 entries) and DenseHashTable int64->float32 (3 entries, 8 "
        "buckets): saved as table-keys / table-values tensors.",
        {"state_file": str(d / "checkpoint")},
    )


BIG_KEY_COUNT = 4000


def big_key_names(n: int = BIG_KEY_COUNT):
    # ~210-byte keys that diverge early (after ~10 bytes) so prefix compression
    # cannot shrink them: the index needs several 256 KiB data blocks.
    tail = "/" + "a_rather_long_scope_name_" * 7 + "kernel"
    return [f"big/{i:05d}/{(i * 7919) % 1000:03d}" + tail for i in range(n)]


def _build_big_key_count(tf, d: pathlib.Path) -> Case:
    prefix = str(d / "big")
    names = big_key_names()
    vals = np.arange(len(names), dtype=np.float32)
    tensors = [tf.constant(v) for v in vals]
    tf.raw_ops.SaveV2(
        prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names), tensors=tensors
    )
    index_size = os.path.getsize(prefix + ".index")
    assert index_size > 3 * 262144, index_size
    return Case(
        "big_key_count",
        prefix,
        "raw_savev2",
        f"raw SaveV2 of {len(names)} float32 scalars (value = position in key order) with ~210-byte keys "
        f"diverging early; .index is {index_size} bytes, i.e. several 256 KiB data blocks.",
        {"num_keys": len(names), "index_size": index_size},
    )


# --------------------------------------------------------------------------
# multi-device (subprocess)

MULTI_DEVICE_CASES = ("multi_device", "multi_device_default", "multi_device_tf1")


def _multi_device_main(root: pathlib.Path, reuse: bool) -> None:
    """Runs in a fresh process: configure logical CPUs first, then build."""
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(MULTI_DEVICE_COUNT)]
    )
    tf = _tf()
    assert len(tf.config.list_logical_devices("CPU")) == MULTI_DEVICE_COUNT

    class ShardByDevice(tf.train.experimental.ShardingCallback):
        @property
        def description(self):
            return "one shard per device"

        def __call__(self, shardable_tensors):
            shards = {}
            for st in shardable_tensors:
                shards.setdefault(
                    st.device.to_string() if hasattr(st.device, "to_string") else str(st.device), {}
                ).setdefault(st.checkpoint_key, {})[st.slice_spec] = st.tensor
            return [shards[k] for k in sorted(shards)]

    def variables():
        out = {}
        for i in range(MULTI_DEVICE_COUNT):
            with tf.device(f"/device:CPU:{i}"):
                out[f"v{i}"] = tf.Variable(np.arange(4 * (i + 1), dtype=np.float32) + 100 * i)
                out[f"s{i}"] = tf.Variable(np.int64(i))
        return out

    def builder(name, fn):
        if reuse and load_case(root, name) is not None:
            return
        d = _fresh_dir(root / name)
        _write_case(root, fn(d))

    def by_device(d):
        vs = variables()
        ckpt = tf.train.Checkpoint(**vs)
        prefix = ckpt.save(
            str(d / "ckpt"),
            options=tf.train.CheckpointOptions(experimental_sharding_callback=ShardByDevice()),
        )
        return Case(
            "multi_device",
            prefix,
            "tf2_sharded",
            f"{MULTI_DEVICE_COUNT} logical CPU devices (separate process), variables v_i/s_i placed on "
            "CPU:i, tf.train.Checkpoint.save with a custom one-shard-per-device ShardingCallback "
            "(TF 2.21's default ShardByTaskPolicy puts everything of one task in ONE shard, see "
            "multi_device_default).",
            {
                "expected_num_shards": num_shards_on_disk(prefix),
                "state_file": str(d / "checkpoint"),
            },
        )

    def default_policy(d):
        vs = variables()
        prefix = tf.train.Checkpoint(**vs).save(str(d / "ckpt"))
        return Case(
            "multi_device_default",
            prefix,
            "tf2_object",
            "Same variables on 3 logical CPUs, default tf.train.Checkpoint.save (ShardByTaskPolicy): "
            "TF 2.21 writes a single data shard.",
            {"expected_num_shards": num_shards_on_disk(prefix)},
        )

    def tf1_sharded(d):
        v1 = tf.compat.v1
        g = tf.Graph()
        with g.as_default():
            for i in range(MULTI_DEVICE_COUNT):
                with tf.device(f"/device:CPU:{i}"):
                    tf.Variable(np.arange(3, dtype=np.float32) * (i + 1), name=f"dev{i}/w")
                    tf.Variable(np.array([b"dev%d" % i], dtype=object), name=f"dev{i}/name")
            saver = v1.train.Saver(sharded=True)
            cfg = v1.ConfigProto(device_count={"CPU": MULTI_DEVICE_COUNT})
            with v1.Session(graph=g, config=cfg) as s:
                s.run(v1.global_variables_initializer())
                prefix = saver.save(s, str(d / "model.ckpt"), write_meta_graph=False)
        return Case(
            "multi_device_tf1",
            prefix,
            "tf1_name_based",
            "TF1 graph-mode Saver(sharded=True) with variables on 3 CPU devices: one data shard per "
            "device, merged by MergeV2Checkpoints.",
            {
                "expected_num_shards": num_shards_on_disk(prefix),
                "state_file": str(d / "checkpoint"),
            },
        )

    builder("multi_device", by_device)
    builder("multi_device_default", default_policy)
    builder("multi_device_tf1", tf1_sharded)


# --------------------------------------------------------------------------
# driver

BUILDERS: Dict[str, Callable] = {
    "dtypes": _build_dtypes,
    "strings": _build_strings,
    "module_nested": _build_module_nested,
    "keras_adam": _build_keras_adam,
    "keras_model_only": _build_keras_model_only,
    "tf2_optimizer_slots": _build_tf2_optimizer_slots,
    "keras_weights": _build_keras_weights,
    "keras_archive": _build_keras_archive,
    "tf1_partitioned": _build_tf1_partitioned,
    "sharded_policy": _build_sharded_policy,
    "savedmodel": _build_savedmodel,
    "tf1_savedmodel": _build_tf1_savedmodel,
    "data_iterator": _build_data_iterator,
    "lookup_table": _build_lookup_table,
    "big_key_count": _build_big_key_count,
    "name_based_v1_saver_scalar": _build_name_based_scalar,
    "v1_format": _build_v1_format,
}
ALL_CASES = tuple(BUILDERS) + MULTI_DEVICE_CASES
#: kinds whose `prefix` is a V2 bundle prefix
BUNDLE_KINDS = ("raw_savev2", "tf2_object", "tf2_sharded", "tf1_name_based", "savedmodel")


def build_corpus(
    root: pathlib.Path, *, reuse: bool = False, cases: Optional[Iterable[str]] = None
) -> Dict[str, Case]:
    """Writes every corpus checkpoint under ``root`` and returns them by name.

    reuse: keep cases already complete in ``root`` (those with a ``case.json``).
    cases: build only these case names (default: all of ``ALL_CASES``).
    """
    root = pathlib.Path(root)
    root.mkdir(parents=True, exist_ok=True)
    wanted = list(ALL_CASES if cases is None else cases)
    unknown = set(wanted) - set(ALL_CASES)
    if unknown:
        raise ValueError(f"unknown corpus cases: {sorted(unknown)}")

    # Start the multi-device subprocess first so it overlaps with the rest.
    proc = None
    md_wanted = [n for n in MULTI_DEVICE_CASES if n in wanted]
    if md_wanted and not (reuse and all(load_case(root, n) for n in md_wanted)):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
        proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--multi-device", str(root)]
            + (["--reuse"] if reuse else []),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    result: Dict[str, Case] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tf = None
        for name in wanted:
            if name in MULTI_DEVICE_CASES:
                continue
            if reuse:
                c = load_case(root, name)
                if c is not None:
                    result[name] = c
                    continue
            if tf is None:
                tf = _tf()
                tf.random.set_seed(SEED)
            d = _fresh_dir(root / name)
            result[name] = _write_case(root, BUILDERS[name](tf, d))

    if proc is not None:
        out, err = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(
                f"multi-device corpus subprocess failed ({proc.returncode}):\n"
                f"{out.decode(errors='replace')}\n{err.decode(errors='replace')[-5000:]}"
            )
    for name in md_wanted:
        c = load_case(root, name)
        if c is None:
            raise RuntimeError(f"multi-device case {name} was not built")
        result[name] = c
    return {n: result[n] for n in wanted}


def _main(argv) -> int:
    if len(argv) >= 2 and argv[0] == "--multi-device":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _multi_device_main(pathlib.Path(argv[1]), "--reuse" in argv[2:])
        return 0
    if not argv:
        print("usage: tf_corpus.py OUTDIR [--reuse] [CASE...]", file=sys.stderr)
        return 2
    reuse = "--reuse" in argv
    names = [a for a in argv[1:] if not a.startswith("--")] or None
    t0 = time.time()
    cases = build_corpus(pathlib.Path(argv[0]), reuse=reuse, cases=names)
    dt = time.time() - t0
    for c in cases.values():
        print(f"{c.name:28s} {c.kind:22s} shards={num_shards_on_disk(c.prefix)} {c.prefix}")
    print(f"built {len(cases)} cases in {dt:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
