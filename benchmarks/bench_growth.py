"""How tfckpt's cost grows with the work: keys in one index, checkpoints in a run, bytes.

    python benchmarks/bench_growth.py [--data DIR] [--runs N] [--sizes-gib 1 2 4 10]
                                      [--keys 1000 10000 100000]
                                      [--checkpoints 100 1000 10000] [--tensorflow-up-to N]

Each measurement runs in a fresh child process (so that its peak RSS is its own), the
median of N runs (default 3) taken, and printed as a table: the size of the work n, the
time, the time per unit, and the child's peak RSS. Cost should grow linearly (time per unit
flat) and memory stay flat where the API streams:

* keys: one checkpoint whose index holds n small tensors. ``tfckpt.open``, then
  ``keys()`` and ``entry(k)`` (shape and dtype) for every key, in process (each contender
  warmed up first on the same files: imports and first calls are not counted); and ``tfckpt
  dump PREFIX`` as a whole process. TensorFlow's ``load_checkpoint`` + shape and dtype
  maps beside it.
* checkpoints: n small checkpoints (4 tensors each) and the plain loop over all of them,
  ``open``, ``keys()``, ``entry(k)``; TensorFlow's reader beside it up to
  ``--tensorflow-up-to`` checkpoints (default 1000; its per-checkpoint time is flat too).
* bytes: one checkpoint of n GiB (float32 tensors of 256 MiB, values made on the fly), every
  tensor read with its CRC checked (``r.read(k)`` for every key) and ``verify_all()``; the
  throughput in GB/s and the peak RSS. The values are views of the mapping: its pages that
  are resident count in RSS, but they are the page cache's, not memory the process holds.

The data is written with tfckpt's writer into ``DIR/growth`` (git-ignored), made once and
kept; the byte sizes take that much disk (``--sizes-gib`` to choose them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import _common

HERE = os.path.dirname(os.path.abspath(__file__))

_CHILD = r"""
import json, sys, time, os
kind, arg = sys.argv[1], sys.argv[2]
import numpy  # imported before the clock starts, by both contenders (Entry.dtype needs it)
first = json.load(open(arg))[0] if kind.startswith("many") else arg
if kind.endswith("_tf"):  # a warm-up of each contender: imports and first-call costs
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf
    tf.train.load_checkpoint(first).get_variable_to_shape_map()
else:
    import tfckpt
    with tfckpt.open(first) as r:
        r.entry(r.keys()[0]).dtype
t0 = time.perf_counter()
if kind == "keys":
    import tfckpt
    t0 = time.perf_counter()
    r = tfckpt.open(arg)
    n = 0
    for k in r.keys():
        e = r.entry(k)
        e.shape, e.dtype
        n += 1
    r.close()
elif kind == "keys_tf" or kind == "many_tf":
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf
    paths = [arg] if kind == "keys_tf" else json.load(open(arg))
    t0 = time.perf_counter()
    n = 0
    for p in paths:
        reader = tf.train.load_checkpoint(p)
        shapes = reader.get_variable_to_shape_map()
        dtypes = reader.get_variable_to_dtype_map()
        n += len({k: (dtypes[k].name, shapes[k]) for k in shapes})
elif kind == "many":
    import tfckpt
    paths = json.load(open(arg))
    t0 = time.perf_counter()
    n = 0
    for p in paths:
        r = tfckpt.open(p)
        for k in r.keys():
            e = r.entry(k)
            e.shape, e.dtype
            n += 1
        r.close()
elif kind == "read":
    import tfckpt
    t0 = time.perf_counter()
    with tfckpt.open(arg) as r:
        n = sum(r.read(k).nbytes for k in r.keys())
elif kind == "verify":
    import tfckpt
    t0 = time.perf_counter()
    with tfckpt.open(arg) as r:
        r.verify_all()
        n = r.summary()[5]
seconds = time.perf_counter() - t0
# VmHWM: this process's own peak (ru_maxrss would include the parent's RSS at the fork).
with open("/proc/self/status") as f:
    peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
print(json.dumps({"seconds": seconds, "n": n, "peak_kib": peak}))
"""


def _child(kind: str, arg: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, kind, arg],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _process(argv: list) -> dict:
    """Wall time and peak RSS (VmHWM, read by a tiny wrapper just before the command exits)
    of a whole process: the tfckpt command."""
    wrapper = (
        "import runpy, sys, atexit\n"
        "def hwm():\n"
        "    with open('/proc/self/status') as f:\n"
        "        v = next(l.split()[1] for l in f if l.startswith('VmHWM:'))\n"
        "    sys.stderr.write('VMHWM ' + v + '\\n')\n"
        "atexit.register(hwm)\n"
        "sys.argv = sys.argv[1:]\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n"
    )
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", wrapper, *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=True,
    )
    seconds = time.perf_counter() - t0
    peak = int(next(ln.split()[1] for ln in out.stderr.splitlines() if ln.startswith("VMHWM")))
    return {"seconds": seconds, "peak_kib": peak}


def _median_of(runs: int, fn) -> dict:
    results = [fn() for _ in range(runs)]
    results.sort(key=lambda r: r["seconds"])
    return results[len(results) // 2]


def _table(title: str, unit: str, rows: list) -> None:
    print(f"  {title}")
    print(f"    {'n':>10}  {'time':>10}  {'per ' + unit:>14}  {'peak RSS':>10}")
    for n, r in rows:
        per = r["seconds"] / n
        per_text = f"{per * 1e6:.2f} us" if per < 1e-3 else f"{per * 1e3:.2f} ms"
        print(
            f"    {n:>10}  {_common.fmt_s(r['seconds']):>10}  {per_text:>14}  "
            f"{r['peak_kib'] / 1024:>7.1f} MiB"
        )


def _make_keys(root: str, n: int) -> str:
    import numpy as np

    import tfckpt

    prefix = os.path.join(root, f"keys-{n}", "ckpt")
    if not os.path.exists(prefix + ".index"):
        values = {
            f"layer_{i // 100:05d}/w_{i % 100:02d}": np.full(4, i, np.float32) for i in range(n)
        }
        tfckpt.write(prefix, values, overwrite=True)
    return prefix


def _make_many(root: str, n: int) -> str:
    import numpy as np

    import tfckpt

    listing = os.path.join(root, f"many-{n}.json")
    prefixes = [os.path.join(root, "many", f"ckpt-{i:05d}", "ckpt") for i in range(n)]
    for i, p in enumerate(prefixes):
        if not os.path.exists(p + ".index"):
            tfckpt.write(
                p,
                {
                    "dense/kernel": np.full((8, 4), i, np.float32),
                    "dense/bias": np.zeros(4, np.float32),
                    "global_step": np.int64(i),
                    "embedding": np.ones((16, 8), np.float16),
                },
            )
    with open(listing, "w") as f:
        json.dump(prefixes, f)
    return listing


def _make_bytes(root: str, gib: int) -> str:
    import numpy as np

    import tfckpt

    prefix = os.path.join(root, f"bytes-{gib}g", "ckpt")
    if not os.path.exists(prefix + ".index"):
        part = 256 << 20
        with tfckpt.Writer(prefix, overwrite=True) as w:
            for i in range((gib << 30) // part):
                w.add(f"t{i:03d}", np.full(part // 4, float(i), np.float32))
    return prefix


def main(argv=None) -> int:
    ap = _common.parser(_common.first_line(__doc__), runs=3)
    ap.add_argument("--sizes-gib", type=int, nargs="*", default=[1, 2, 4, 10])
    ap.add_argument("--keys", type=int, nargs="*", default=[1000, 10000, 100000])
    ap.add_argument("--checkpoints", type=int, nargs="*", default=[100, 1000, 10000])
    ap.add_argument("--tensorflow-up-to", type=int, default=1000)
    args = ap.parse_args(argv)
    root = os.path.join(args.data, "growth")
    os.makedirs(root, exist_ok=True)
    tfckpt_cmd = os.path.join(os.path.dirname(sys.executable), "tfckpt")
    rows = []

    print("bench_growth: cost against the size of the work (medians of child processes)")
    keys_rows, dump_rows, tf_rows = [], [], []
    for n in args.keys:
        prefix = _make_keys(root, n)
        keys_rows.append((n, _median_of(args.runs, lambda p=prefix: _child("keys", p))))
        dump_rows.append(
            (n, _median_of(args.runs, lambda p=prefix: _process([tfckpt_cmd, "dump", p])))
        )
        tf_rows.append((n, _median_of(args.runs, lambda p=prefix: _child("keys_tf", p))))
    _table("keys in one index: tfckpt open, keys(), entry(k) for each", "key", keys_rows)
    _table("same, `tfckpt dump PREFIX` as a whole process", "key", dump_rows)
    _table("same, TensorFlow load_checkpoint + shape and dtype maps", "key", tf_rows)

    many_rows, many_tf = [], []
    for n in args.checkpoints:
        listing = _make_many(root, n)
        many_rows.append((n, _median_of(args.runs, lambda f=listing: _child("many", f))))
        if n <= args.tensorflow_up_to:
            many_tf.append((n, _median_of(args.runs, lambda f=listing: _child("many_tf", f))))
    _table("checkpoints: the plain loop over n small checkpoints", "ckpt", many_rows)
    _table("same, TensorFlow", "ckpt", many_tf)

    read_rows, verify_rows = [], []
    for gib in args.sizes_gib:
        prefix = _make_bytes(root, gib)
        read_rows.append((gib, _median_of(args.runs, lambda p=prefix: _child("read", p))))
        verify_rows.append((gib, _median_of(args.runs, lambda p=prefix: _child("verify", p))))
    _table("bytes: read every tensor with its CRC (r.read(k) for each)", "GiB", read_rows)
    _table("same, verify_all()", "GiB", verify_rows)
    for gib, r in read_rows:
        print(f"    read {gib} GiB: {(gib << 30) / r['seconds'] / 1e9:.2f} GB/s")

    # Linearity: the time per unit at the largest n over that at the smallest.
    for name, table in (
        ("keys", keys_rows),
        ("checkpoints", many_rows),
        ("bytes (read)", read_rows),
    ):
        if len(table) >= 2:
            (n0, a), (n1, b) = table[0], table[-1]
            ratio = (b["seconds"] / n1) / (a["seconds"] / n0)
            print(f"  {name}: time per unit at n={n1} is {ratio:.2f}x that at n={n0}")
            rows.append({"benchmark": f"growth {name}", "per_unit_ratio": ratio})
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
