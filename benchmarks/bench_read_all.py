"""Reading every tensor of the 1 GiB checkpoint, checksums verified: tfckpt vs TensorFlow.

    python benchmarks/bench_read_all.py [--data DIR] [--runs N] [--states read tensorflow tfckpt]

One process; both libraries are imported before any timing. One round of each contender:

* tfckpt: ``tfckpt.open(prefix)``, then ``read(key, verify=True)`` for every key of
  ``keys()`` (the CRC32C pass touches every byte of each payload; numeric values come back
  as zero-copy arrays over the mapped file, so nothing more needs touching);
* TensorFlow: ``tf.train.load_checkpoint(prefix)``, then ``get_tensor(key)`` for every key
  of ``get_variable_to_shape_map()`` (TensorFlow checks each CRC32C and returns a
  materialized numpy array).

Opening the checkpoint and enumerating the keys are inside the timing for both. Each value
is dropped as soon as it is read.

The page cache is warm in every measurement, but HOW the file came into it matters to a
reader that maps the file: on recent kernels the page cache holds large folios whose
size depends on how the file was first read, and the page faults of a mapping (one per
folio or per fault-around window) cost several times more after a fault-driven first read
than after a sequential read(). A pread()-based reader such as TensorFlow hardly notices.
So the benchmark prepares the cache in three defined ways and measures in each:

* ``read``: the checkpoint's files are evicted from the page cache (POSIX_FADV_DONTNEED on
  these files only) and read sequentially with read() -- as ``cat`` or ``cp`` leave them;
* ``tensorflow``: evicted, then first read by one TensorFlow round;
* ``tfckpt``: evicted, then first read by one tfckpt round (faults through the mapping).

In each state: one untimed warm-up round of each contender, then N rounds alternating the
order (tfckpt first on even rounds, TensorFlow first on odd ones). Reported per state:
median seconds per round, the ratio of the medians and the payload throughput (bytes of all
tensors / median time). The headline figure is the state with the LOWEST ratio.
"""

from __future__ import annotations

import gc
import os
import sys
import time

STATES = ("read", "tensorflow", "tfckpt")

import _common  # noqa: E402 - beside this script, found through sys.path
import make_data  # noqa: E402

TARGET = 4.0  # issue 12: >= 4x, aim 5x


def main(argv=None) -> int:
    ap = _common.parser(_common.first_line(__doc__), runs=5)
    ap.add_argument(
        "--states",
        nargs="+",
        choices=STATES,
        default=list(STATES),
        help="how the page cache is filled before measuring (default: all)",
    )
    args = ap.parse_args(argv)
    data = _common.prepare(args)
    prefix = make_data.big_prefix(data)

    import tensorflow as tf

    import tfckpt

    with tfckpt.open(prefix) as r:
        total = sum(row[3] for row in r.listing())
        nkeys = len(r)

    def run_tfckpt():
        with tfckpt.open(prefix) as r:
            for k in r.keys():
                r.read(k, verify=True)

    def run_tf():
        reader = tf.train.load_checkpoint(prefix)
        for k in reader.get_variable_to_shape_map():
            reader.get_tensor(k)

    contenders = {"tfckpt": run_tfckpt, "tensorflow": run_tf}
    files = [prefix + ".index", prefix + ".data-00000-of-00001"]

    def evict():
        for path in files:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)

    def read_sequentially():
        for path in files:
            with open(path, "rb", buffering=0) as f:
                while f.read(16 << 20):
                    pass

    prepare_cache = {"read": read_sequentially, "tensorflow": run_tf, "tfckpt": run_tfckpt}

    print(
        f"bench_read_all: reading all {nkeys} tensors of {prefix} "
        f"({total / 2**30:.3f} GiB of payload) with checksums verified; "
        f"CRC32C in tfckpt: {tfckpt.crc32c_implementation}"
    )
    per_state = {}
    for state in args.states:
        evict()
        prepare_cache[state]()
        for fn in contenders.values():  # warm-up: lazy imports, TF's first-call costs
            fn()
        times = {k: [] for k in contenders}
        for i in range(args.runs):
            order = list(contenders) if i % 2 == 0 else list(reversed(contenders))
            for name in order:
                gc.collect()
                t0 = time.perf_counter()
                contenders[name]()
                times[name].append(time.perf_counter() - t0)
        print(f"  page cache filled by {state}:")
        for name in contenders:
            med = _common.median(times[name])
            print(
                f"    {name:<10} median {_common.fmt_s(med)} per round "
                f"(min {_common.fmt_s(min(times[name]))}, "
                f"max {_common.fmt_s(max(times[name]))}); {total / med / 1e9:.2f} GB/s"
            )
        t_a, t_b = _common.median(times["tfckpt"]), _common.median(times["tensorflow"])
        print(f"    speed-up {t_b / t_a:.1f}x (TensorFlow time / tfckpt time)")
        per_state[state] = (t_a, t_b)
    worst = min(per_state, key=lambda st: per_state[st][1] / per_state[st][0])
    t_a, t_b = per_state[worst]
    print(f"  headline: the lowest ratio, page cache filled by {worst}")
    rows = [
        _common.result(
            "read all of 1 GiB ckpt, CRC verified",
            "s",
            t_a,
            t_b,
            t_b / t_a,
            TARGET,
            runs=args.runs,
            bytes=total,
            state=worst,
            tfckpt_gbps=total / t_a / 1e9,
            tensorflow_gbps=total / t_b / 1e9,
            states={
                st: {"tfckpt": a, "tensorflow": b, "ratio": b / a}
                for st, (a, b) in per_state.items()
            },
        )
    ]
    _common.emit(args, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
