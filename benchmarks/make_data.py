"""Creates the benchmark checkpoints with TensorFlow (deterministically).

    python benchmarks/make_data.py [--out DIR]      # default: bench-data/ at the repo root

Writes, unless they exist already (a ``manifest.json`` marks a finished set):

* ``big/ckpt``: a ~1 GiB object-based checkpoint (``tf.train.Checkpoint`` of a
  ``tf.Module``): a 16-layer transformer-like model, ~200 variables of varied sizes --
  two large embedding tables (float32 and bfloat16), a float16 output projection,
  int64 tables and counters, biases and layer norms.
* ``small/ckpt-000/ckpt`` ... ``small/ckpt-399/ckpt``: 400 small checkpoints of the same
  Keras-like model (52 variables: dense, conv and batch-norm layers, an embedding, a step
  counter), each with different values.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO, "bench-data")
NUM_SMALL = 400
FORMAT_VERSION = 1  # bump when the generated data changes


def big_prefix(out: str) -> str:
    return os.path.join(out, "big", "ckpt")


def small_prefixes(out: str, n: int = NUM_SMALL):
    return [os.path.join(out, "small", f"ckpt-{i:03d}", "ckpt") for i in range(n)]


def _exists(prefix: str) -> bool:
    return os.path.exists(prefix + ".index") and os.path.exists(prefix + ".data-00000-of-00001")


def _manifest_ok(out: str, name: str) -> bool:
    path = os.path.join(out, name, "manifest.json")
    try:
        with open(path) as f:
            return json.load(f).get("version") == FORMAT_VERSION
    except (OSError, ValueError):
        return False


def _write_manifest(out: str, name: str, **info) -> None:
    with open(os.path.join(out, name, "manifest.json"), "w") as f:
        json.dump(dict(version=FORMAT_VERSION, **info), f, indent=1)
        f.write("\n")


def data_ready(out: str = DEFAULT_OUT) -> bool:
    return (
        _manifest_ok(out, "big")
        and _exists(big_prefix(out))
        and _manifest_ok(out, "small")
        and all(_exists(p) for p in small_prefixes(out))
    )


def _import_tf():
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf  # noqa: E402

    return tf


# -- the 1 GiB checkpoint -------------------------------------------------------------------

HIDDEN = 768
LAYERS = 16
VOCAB = 112_000
VOCAB2 = 50_000
POSITIONS = 4096
MLP = 3072


def _big_specs():
    """(path, shape, dtype name) of every variable, in creation order."""
    h = HIDDEN
    specs = [
        ("embeddings/tokens", (VOCAB, h), "float32"),  # 328 MiB
        ("embeddings/segments", (VOCAB2, h), "bfloat16"),  # 73 MiB
        ("embeddings/positions", (POSITIONS, h), "float32"),  # 12 MiB
        ("embeddings/norm/gamma", (h,), "float32"),
        ("embeddings/norm/beta", (h,), "float32"),
        ("embeddings/vocab_ids", (1_000_000,), "int64"),  # 7.6 MiB
    ]
    for i in range(LAYERS):
        p = f"encoder/layer_{i:02d}"
        specs += [
            (f"{p}/attention/qkv/kernel", (h, 3 * h), "float32"),
            (f"{p}/attention/qkv/bias", (3 * h,), "float32"),
            (f"{p}/attention/output/kernel", (h, h), "float32"),
            (f"{p}/attention/output/bias", (h,), "float32"),
            (f"{p}/attention/norm/gamma", (h,), "float32"),
            (f"{p}/attention/norm/beta", (h,), "float32"),
            (f"{p}/mlp/intermediate/kernel", (h, MLP), "float32"),
            (f"{p}/mlp/intermediate/bias", (MLP,), "float32"),
            (f"{p}/mlp/output/kernel", (MLP, h), "float32"),
            (f"{p}/mlp/output/bias", (h,), "float32"),
            (f"{p}/mlp/norm/gamma", (h,), "float32"),
            (f"{p}/mlp/norm/beta", (h,), "float32"),
        ]
    specs += [
        ("head/projection/kernel", (h, VOCAB), "float16"),  # 164 MiB
        ("head/projection/bias", (VOCAB,), "float32"),
        ("head/pooler/kernel", (h, h), "float32"),
        ("head/pooler/bias", (h,), "float32"),
        ("head/classifier/kernel", (h, 16), "bfloat16"),
        ("head/classifier/bias", (16,), "float32"),
        ("stats/token_counts", (VOCAB,), "int64"),
        ("stats/step", (), "int64"),
        ("stats/ema_decay", (), "float32"),
    ]
    return specs


def _values(rng, shape, dtype: str, np):
    if dtype == "int64":
        return rng.integers(0, 1 << 40, size=shape, dtype=np.int64)
    v = rng.standard_normal(size=shape, dtype=np.float32)
    v *= 0.02
    return v  # cast to float16 / bfloat16 by TensorFlow


def build_module(tf, specs, make_variable):
    """A tf.Module named "model" with the '/'-separated paths of `specs` (path, shape,
    dtype name), one tf.Variable per leaf from ``make_variable(path, shape, dtype)``.
    Returns (module, {path: variable})."""
    root = tf.Module(name="model")
    variables = {}
    for path, shape, dtype in specs:
        *parents, leaf = path.split("/")
        node = root
        for name in parents:
            child = getattr(node, name, None)
            if child is None:
                child = tf.Module(name=name)
                setattr(node, name, child)
            node = child
        var = make_variable(path, shape, dtype)
        setattr(node, leaf, var)
        variables[path] = var
    return root, variables


def _build_module(tf, specs, make_value):
    """build_module with each variable made from ``make_value(path, shape, dtype)``, cast
    to its dtype by TensorFlow (float16, bfloat16); int64 variables are not trainable.
    Returns (module, [variables])."""

    def make_variable(path, shape, dtype):
        value = make_value(path, shape, dtype)
        tf_dtype = getattr(tf, dtype)
        init = tf.constant(value)
        if init.dtype != tf_dtype:
            init = tf.cast(init, tf_dtype)
        del value
        return tf.Variable(init, name=path.rsplit("/", 1)[-1], trainable=dtype != "int64")

    root, variables = build_module(tf, specs, make_variable)
    return root, list(variables.values())


def make_big(out: str, tf, np) -> None:
    prefix = big_prefix(out)
    os.makedirs(os.path.dirname(prefix), exist_ok=True)
    rng = np.random.default_rng(20240501)
    specs = _big_specs()
    root, variables = _build_module(tf, specs, lambda p, s, d: _values(rng, s, d, np))
    tf.train.Checkpoint(model=root).write(prefix)
    nbytes = sum(v.numpy().nbytes for v in variables)
    _write_manifest(
        out, "big", prefix=os.path.relpath(prefix, out), variables=len(specs), bytes=nbytes
    )
    print(f"make_data: wrote {prefix} ({len(specs)} variables, {nbytes / 2**30:.2f} GiB)")


# -- the 400 small checkpoints --------------------------------------------------------------


def _small_specs():
    specs = [("embedding/embeddings", (1000, 32), "float32")]
    chans = [(3, 16), (16, 32), (32, 64), (64, 64)]
    for i, (cin, cout) in enumerate(chans):
        specs += [
            (f"conv2d_{i}/kernel", (3, 3, cin, cout), "float32"),
            (f"conv2d_{i}/bias", (cout,), "float32"),
            (f"batch_normalization_{i}/gamma", (cout,), "float32"),
            (f"batch_normalization_{i}/beta", (cout,), "float32"),
            (f"batch_normalization_{i}/moving_mean", (cout,), "float32"),
            (f"batch_normalization_{i}/moving_variance", (cout,), "float32"),
        ]
    dims = [
        (96, 256),
        (256, 256),
        (256, 128),
        (128, 128),
        (128, 64),
        (64, 64),
        (64, 32),
        (32, 32),
        (32, 16),
        (16, 16),
        (16, 16),
        (16, 10),
    ]
    for i, (a, b) in enumerate(dims):
        specs += [(f"dense_{i}/kernel", (a, b), "float32"), (f"dense_{i}/bias", (b,), "float32")]
    specs += [
        ("optimizer/iterations", (), "int64"),
        ("optimizer/learning_rate", (), "float32"),
        ("metrics/seen", (), "int64"),
    ]
    return specs


def make_small(out: str, tf, np, n: int = NUM_SMALL) -> None:
    specs = _small_specs()
    root, variables = _build_module(tf, specs, lambda p, s, d: np.zeros(s, getattr(np, d)))
    ckpt = tf.train.Checkpoint(model=root)
    t0 = time.perf_counter()
    for i, prefix in enumerate(small_prefixes(out, n)):
        rng = np.random.default_rng(1000 + i)
        for (_path, shape, dtype), var in zip(specs, variables):
            var.assign(_values(rng, shape, dtype, np))
        os.makedirs(os.path.dirname(prefix), exist_ok=True)
        ckpt.write(prefix)
    _write_manifest(out, "small", count=n, variables=len(specs))
    print(
        f"make_data: wrote {n} small checkpoints ({len(specs)} variables each) under "
        f"{os.path.join(out, 'small')} in {time.perf_counter() - t0:.1f} s"
    )


def ensure(out: str = DEFAULT_OUT, quiet: bool = False) -> str:
    """Creates whatever is missing; returns the data directory."""
    out = os.path.abspath(out)
    need_big = not (_manifest_ok(out, "big") and _exists(big_prefix(out)))
    need_small = not (_manifest_ok(out, "small") and all(_exists(p) for p in small_prefixes(out)))
    if not (need_big or need_small):
        if not quiet:
            print(f"make_data: benchmark data present in {out}")
        return out
    print(
        f"make_data: creating benchmark data in {out} (needs TensorFlow; ~1-2 minutes)", flush=True
    )
    tf = _import_tf()
    import numpy as np

    if need_big:
        make_big(out, tf, np)
    if need_small:
        make_small(out, tf, np)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT, help="data directory (default: %(default)s)")
    args = ap.parse_args(argv)
    ensure(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
