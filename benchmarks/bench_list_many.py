"""Listing keys, dtypes and shapes of 400 small checkpoints in one process: tfckpt vs TF.

    python benchmarks/bench_list_many.py [--data DIR] [--runs N]

One process; both libraries are imported before any timing. One round lists all 400
checkpoints and builds, for each, a dict key -> (dtype name, shape):

* tfckpt: ``tfckpt.open(prefix)`` then ``listing()`` (one native call for every key's
  metadata), dtype codes turned into names with ``tfckpt.dtypes.by_code`` (what
  ``Entry.dtype_name`` does);
* TensorFlow: ``tf.train.load_checkpoint(prefix)`` then ``get_variable_to_shape_map()``
  and ``get_variable_to_dtype_map()`` (names from ``tf.DType.name``).

The headline figure processes each listing and drops it (a scan over many checkpoints).
A second figure keeps all 400 listings alive until the end of the round: the growing heap
makes Python's cyclic garbage collector run more often, which adds about the same absolute
time to both contenders and so lowers the ratio; it is shown for information.

One untimed warm-up round of each (which also checks that both agree on every key, dtype
and shape), then N rounds alternating the order. Reported: median seconds per round (and
per checkpoint), and the ratio of the medians.
"""

from __future__ import annotations

import gc
import os
import sys
import time

import _common
import make_data

TARGET = 2.0


def main(argv=None) -> int:
    args = _common.parser(_common.first_line(__doc__), runs=11).parse_args(argv)
    data = _common.prepare(args)
    prefixes = make_data.small_prefixes(data)

    import tensorflow as tf

    import tfckpt
    from tfckpt.dtypes import by_code

    def run_tfckpt(keep=False):
        out = []
        for p in prefixes:
            with tfckpt.open(p) as r:
                listing = {row[0]: (by_code(row[1]).name, row[2]) for row in r.listing()}
            out.append(listing if keep else len(listing))
        return out

    def run_tf(keep=False):
        out = []
        for p in prefixes:
            reader = tf.train.load_checkpoint(p)
            shapes = reader.get_variable_to_shape_map()
            dtypes = reader.get_variable_to_dtype_map()
            listing = {k: (dtypes[k].name, shapes[k]) for k in shapes}
            out.append(listing if keep else len(listing))
        return out

    contenders = {"tfckpt": run_tfckpt, "tensorflow": run_tf}
    # Warm-up, and a check that both see the same keys, dtypes and shapes.
    a, b = run_tfckpt(keep=True), run_tf(keep=True)
    for p, x, y in zip(prefixes, a, b):
        if {k: (d, list(s)) for k, (d, s) in x.items()} != {
            k: (d, list(s)) for k, (d, s) in y.items()
        }:
            sys.exit(f"bench_list_many: tfckpt and TensorFlow disagree on {p}")
    nkeys = sum(len(x) for x in a)
    del a, b
    print(
        f"bench_list_many: listing {len(prefixes)} checkpoints ({nkeys} keys in all) "
        f"under {os.path.join(data, 'small')}; both agree on every key, dtype "
        f"and shape"
    )
    medians = {}
    for keep in (False, True):
        print(
            "  listings kept alive until the end of the round (information only):"
            if keep
            else "  each listing processed and dropped (headline):"
        )
        times = {k: [] for k in contenders}
        for i in range(args.runs):
            order = list(contenders) if i % 2 == 0 else list(reversed(contenders))
            for name in order:
                gc.collect()
                t0 = time.perf_counter()
                contenders[name](keep)
                times[name].append(time.perf_counter() - t0)
        for name in contenders:
            med = _common.median(times[name])
            print(
                f"    {name:<10} median {_common.fmt_s(med)} per round "
                f"(min {_common.fmt_s(min(times[name]))}, "
                f"max {_common.fmt_s(max(times[name]))}); "
                f"{med / len(prefixes) * 1e6:.0f} us per checkpoint"
            )
        t_a, t_b = _common.median(times["tfckpt"]), _common.median(times["tensorflow"])
        print(f"    speed-up {t_b / t_a:.1f}x (TensorFlow time / tfckpt time)")
        medians[keep] = (t_a, t_b)
    (t_a, t_b), (k_a, k_b) = medians[False], medians[True]
    rows = [
        _common.result(
            f"list {len(prefixes)} small ckpts in-process",
            "s",
            t_a,
            t_b,
            t_b / t_a,
            TARGET,
            runs=args.runs,
            checkpoints=len(prefixes),
            kept_tfckpt=k_a,
            kept_tensorflow=k_b,
            kept_ratio=k_b / k_a,
        )
    ]
    _common.emit(args, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
