"""Writes the small example checkpoint shipped in ``examples/tiny_mlp/``.

Needs TensorFlow (only to *create* the example; tfckpt reads it without TF):

    python examples/make_example.py            # (re)writes examples/tiny_mlp/

What it writes: a tiny multi-layer perceptron 64 -> 16 (relu) -> 4 built as a
plain ``tf.Module``, trained for ONE step with the Keras Adam optimizer, saved
with ``tf.train.CheckpointManager`` (so the directory holds a ``checkpoint``
state file next to ``ckpt-1.index`` / ``ckpt-1.data-00000-of-00001``).

Keys in the checkpoint (TF 2.21 / Keras 3):

    _CHECKPOINTABLE_OBJECT_GRAPH                          string []
    model/hidden/kernel/.ATTRIBUTES/VARIABLE_VALUE        float32 [64, 16]
    model/hidden/bias/.ATTRIBUTES/VARIABLE_VALUE          float32 [16]
    model/output/kernel/.ATTRIBUTES/VARIABLE_VALUE        float32 [16, 4]
    model/output/bias/.ATTRIBUTES/VARIABLE_VALUE          float32 [4]
    optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE      int64 []   (= 1)
    optimizer/_learning_rate/.ATTRIBUTES/VARIABLE_VALUE   float32 []
    optimizer/_variables/N/.ATTRIBUTES/VARIABLE_VALUE     Adam first/second moments
    save_counter/.ATTRIBUTES/VARIABLE_VALUE               int64 []   (= 1)

All values are deterministic (fixed seeds, stateless initialisers); only the
timestamps in the ``checkpoint`` state file change from run to run.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

OUT_DIR = pathlib.Path(__file__).resolve().parent / "tiny_mlp"
SEED = 1234
N_IN, N_HIDDEN, N_OUT = 64, 16, 4


def main(out_dir: pathlib.Path = OUT_DIR) -> str:
    import keras
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")

    class Dense(tf.Module):
        def __init__(self, n_in, n_out, seed, name):
            super().__init__(name=name)
            scale = np.sqrt(2.0 / n_in).astype(np.float32)
            self.kernel = tf.Variable(
                tf.random.stateless_normal([n_in, n_out], seed=[SEED, seed]) * scale, name="kernel"
            )
            self.bias = tf.Variable(tf.zeros([n_out]), name="bias")

        def __call__(self, x):
            return x @ self.kernel + self.bias

    class TinyMLP(tf.Module):
        def __init__(self):
            super().__init__(name="tiny_mlp")
            self.hidden = Dense(N_IN, N_HIDDEN, 1, "hidden")
            self.output = Dense(N_HIDDEN, N_OUT, 2, "output")

        def __call__(self, x):
            return self.output(tf.nn.relu(self.hidden(x)))

    rs = np.random.RandomState(SEED)
    x = tf.constant(rs.rand(32, N_IN).astype(np.float32))  # a fake batch of 8x8 "images"
    y = tf.constant(rs.randint(0, N_OUT, size=32))

    model = TinyMLP()
    optimizer = keras.optimizers.Adam(learning_rate=1e-3)
    with tf.GradientTape() as tape:
        logits = model(x)
        loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        )
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))

    if out_dir.exists():
        shutil.rmtree(out_dir)
    ckpt = tf.train.Checkpoint(model=model, optimizer=optimizer)
    manager = tf.train.CheckpointManager(ckpt, str(out_dir), max_to_keep=1)
    prefix = manager.save()
    print(f"loss after init: {float(loss):.6f}")
    print(f"wrote {prefix}")
    for name, shape in tf.train.list_variables(prefix):
        print(f"  {name} {shape}")
    return prefix


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else OUT_DIR)
