"""Regenerates docs/stats-plot-example.png (the picture in README's stats section) from a real
TensorFlow run that diverges.

    python docs/make_stats_plot.py [--run DIR] [--out docs/stats-plot-example.png]

A small two-layer network is trained with plain SGD on a synthetic regression task, a
checkpoint saved every 2 training steps by a ``tf.train.CheckpointManager`` (``ckpt-N``, N its
save counter, which is the step tfckpt reads); after training step 40 (checkpoint 20) a bad
schedule raises the learning rate, the weights grow until they overflow, and the later
checkpoints hold Inf and NaN. Then ``tfckpt stats RUN --first-nonfinite`` names the first bad
checkpoint and ``tfckpt plot RUN --match '^net/' -o OUT`` draws the network's tensors. Needs
TensorFlow and matplotlib (the test extra). Fixed seeds: the same run every time.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = os.path.dirname(os.path.abspath(__file__))


def train(run_dir: str, steps: int = 60, every: int = 2) -> None:
    import numpy as np
    import tensorflow as tf

    tf.random.set_seed(15)
    rng = np.random.default_rng(15)
    x = tf.constant(rng.standard_normal((256, 16)), tf.float32)
    y = x @ tf.constant(rng.standard_normal((16, 1)), tf.float32)

    class Net(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.hidden = tf.Module()
            self.hidden.kernel = tf.Variable(tf.random.normal((16, 32), stddev=0.25))
            self.hidden.bias = tf.Variable(tf.zeros(32))
            self.out = tf.Module()
            self.out.kernel = tf.Variable(tf.random.normal((32, 1), stddev=0.25))
            self.out.bias = tf.Variable(tf.zeros(1))

        def __call__(self, inputs):
            h = tf.nn.relu(inputs @ self.hidden.kernel + self.hidden.bias)
            return h @ self.out.kernel + self.out.bias

    net = Net()
    step = tf.Variable(0, dtype=tf.int64)
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(net=net, step=step), run_dir, max_to_keep=None
    )
    for i in range(1, steps + 1):
        lr = 0.02 if i < 40 else 0.25  # the bad schedule
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(net(x) - y))
        grads = tape.gradient(loss, net.trainable_variables)
        for v, g in zip(net.trainable_variables, grads):
            v.assign_sub(lr * g)
        step.assign(i)
        if i % every == 0:
            manager.save()  # ckpt-1, ckpt-2 ...: its save counter, the step tfckpt reads


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", help="where to write the run (default: a temporary directory)")
    ap.add_argument("--out", default=os.path.join(HERE, "stats-plot-example.png"))
    args = ap.parse_args(argv)
    sys.path.insert(0, os.path.dirname(HERE))
    from tfckpt import cli

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.run or os.path.join(tmp, "run")
        train(run_dir)
        print(f"$ tfckpt stats {run_dir} --first-nonfinite")
        cli.run(["stats", run_dir, "--first-nonfinite"])
        print(f"$ tfckpt plot {run_dir} --match '^net/' -o {args.out}")
        return cli.run(["plot", run_dir, "--match", "^net/", "-o", args.out])


if __name__ == "__main__":
    sys.exit(main())
