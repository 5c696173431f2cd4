"""Scanning the 400 small checkpoints: tfckpt.scan / `tfckpt scan` vs TensorFlow.

    python benchmarks/bench_scan.py [--data DIR] [--runs N]

Four comparisons, each timed in the same run (medians of N runs, contenders alternating,
one untimed warm-up each):

* **in one process**: ``list(tfckpt.scan(DIR, keys=True))`` (a record with key, dtype and
  shape for every key of every checkpoint under DIR, the walk included) vs TensorFlow
  finding the same ``.index`` files (``glob``) and, per checkpoint,
  ``tf.train.load_checkpoint`` + ``get_variable_to_shape_map`` +
  ``get_variable_to_dtype_map``. Target: >= 2x.
* **as whole commands**: ``tfckpt scan DIR --format jsonl`` vs a Python process that
  imports TensorFlow and prints ``tf.train.list_variables`` of every checkpoint under DIR;
  wall time from start to reaped, output to /dev/null, bytecode cached for both (as in
  bench_list_process.py). Target: >= 10x.
* **threads**: ``tfckpt.scan(DIR, verify=True, jobs=2)`` vs ``jobs=1`` (CRC32C of every
  byte, which runs without the GIL), and the plain listing likewise (information).
  Target: -j 2 faster.
* **archive**: scanning an uncompressed tar of the same 400 checkpoints (members read in
  place from the mapped tar) vs scanning the unpacked directory. Target: >= 0.8x the speed.

The tar (``DATA/scan/small.tar``, ~400 MB) is made on first use.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tarfile
import time

import _common
import make_data
from bench_list_process import run_child, tfckpt_script

TF_SCRIPT = r"""
import glob, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
for index in sorted(glob.glob(os.path.join(glob.escape(sys.argv[1]), "**", "*.index"),
                              recursive=True)):
    prefix = index[:-len(".index")]
    for name, shape in tf.train.list_variables(prefix):
        print(prefix, name, shape)
"""

IN_PROCESS_TARGET = 2.0
PROCESS_TARGET = 10.0
JOBS_TARGET = 1.0
TAR_TARGET = 0.8


def make_tar(data: str) -> str:
    """DATA/scan/small.tar: the small checkpoints, uncompressed, made once."""
    src = os.path.join(data, "small")
    path = os.path.join(data, "scan", "small.tar")
    stamp = path + ".done"
    if os.path.exists(stamp):
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    t0 = time.perf_counter()
    with tarfile.open(path + ".tmp", "w") as t:
        t.add(src, arcname="small")
    os.replace(path + ".tmp", path)
    open(stamp, "w").close()
    print(
        f"bench_scan: wrote {path} ({os.path.getsize(path) / 2**20:.0f} MiB) in "
        f"{time.perf_counter() - t0:.1f} s"
    )
    return path


def timed(contenders, runs):
    times = {k: [] for k in contenders}
    for i in range(runs):
        order = list(contenders) if i % 2 == 0 else list(reversed(contenders))
        for name in order:
            t0 = time.perf_counter()
            contenders[name]()
            times[name].append(time.perf_counter() - t0)
    return {k: _common.median(v) for k, v in times.items()}, times


def line(label, name_a, t_a, name_b, t_b, ratio, target):
    verdict = "MET" if ratio >= target else "MISSED"
    return (
        f"RESULT {label}: {name_a} {_common.fmt_s(t_a)}, {name_b} {_common.fmt_s(t_b)}, "
        f"ratio {ratio:.2f}x (target >= {target:g}x: {verdict})"
    )


def scan_command(env):
    """The installed ``tfckpt scan`` command."""
    return [tfckpt_script(), "scan"]


def main(argv=None) -> int:
    args = _common.parser(_common.first_line(__doc__), runs=5).parse_args(argv)
    data = _common.prepare(args)
    small = os.path.join(data, "small")
    tar = make_tar(data)

    import glob

    import tensorflow as tf

    import tfckpt

    n_ckpts = len(make_data.small_prefixes(data))
    rows, lines = [], []

    # -- in one process: keys, dtypes and shapes of every checkpoint ----------------------
    def run_tfckpt():
        return [(r.location, r.key, r.dtype, r.shape) for r in tfckpt.scan(small, keys=True)]

    def run_tf():
        out = []
        for index in sorted(
            glob.glob(os.path.join(glob.escape(small), "**", "*.index"), recursive=True)
        ):
            prefix = index[: -len(".index")]
            reader = tf.train.load_checkpoint(prefix)
            shapes = reader.get_variable_to_shape_map()
            dtypes = reader.get_variable_to_dtype_map()
            out.extend((prefix, k, dtypes[k].name, shapes[k]) for k in sorted(shapes))
        return out

    a, b = run_tfckpt(), run_tf()
    if sorted((p, k, d, list(s)) for p, k, d, s in a) != sorted(
        (p, k, d, list(s)) for p, k, d, s in b
    ):
        sys.exit("bench_scan: tfckpt.scan and TensorFlow disagree on the keys, dtypes or shapes")
    print(
        f"bench_scan: {n_ckpts} checkpoints under {small}, {len(a)} keys; tfckpt.scan and "
        f"TensorFlow agree on every key, dtype and shape"
    )
    med, _ = timed({"tfckpt": run_tfckpt, "tensorflow": run_tf}, args.runs)
    ratio = med["tensorflow"] / med["tfckpt"]
    rows.append(
        _common.result(
            f"scan {n_ckpts} ckpts in-process (keys, dtypes, shapes)",
            "s",
            med["tfckpt"],
            med["tensorflow"],
            ratio,
            IN_PROCESS_TARGET,
        )
    )

    # -- as whole commands ------------------------------------------------------------------
    env = dict(
        os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPYCACHEPREFIX=os.path.join(data, "pycache")
    )
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    cmd = scan_command(env) + [small, "--format", "jsonl"]
    procs = {"tfckpt": cmd, "tensorflow": [sys.executable, "-c", TF_SCRIPT, small]}
    print(
        f"  command: {' '.join(cmd[:-3])} DIR --format jsonl  vs  python -c "
        f"'import tensorflow; tf.train.list_variables(each)'"
    )
    _, _, out = run_child(procs["tfckpt"], env, capture=True)
    if sum(1 for ln in out.splitlines() if '"record": "checkpoint"' in ln) != n_ckpts:
        sys.exit("bench_scan: the scan command did not report every checkpoint")
    run_child(procs["tensorflow"], env)
    times = {k: [] for k in procs}
    for i in range(args.runs):
        for name in list(procs) if i % 2 == 0 else list(reversed(procs)):
            times[name].append(run_child(procs[name], env)[0])
    t_a, t_b = _common.median(times["tfckpt"]), _common.median(times["tensorflow"])
    rows.append(
        _common.result(
            f"scan {n_ckpts} ckpts as a command", "s", t_a, t_b, t_b / t_a, PROCESS_TARGET
        )
    )

    # -- -j 2 against -j 1 ------------------------------------------------------------------
    for verify, label, target in (
        (True, "scan --verify", JOBS_TARGET),
        (False, "scan (listing; information)", None),
    ):

        def j(n, verify=verify):
            return lambda: sum(1 for _ in tfckpt.scan(small, jobs=n, verify=verify))

        med, _ = timed({"-j 1": j(1), "-j 2": j(2)}, args.runs)
        ratio = med["-j 1"] / med["-j 2"]
        if target is None:
            print(
                f"  {label}: -j 1 {_common.fmt_s(med['-j 1'])}, -j 2 "
                f"{_common.fmt_s(med['-j 2'])}, ratio {ratio:.2f}x"
            )
            continue
        lines.append(
            line(
                f"{label} of {n_ckpts} ckpts, -j 2 vs -j 1",
                "-j 2",
                med["-j 2"],
                "-j 1",
                med["-j 1"],
                ratio,
                target,
            )
        )
        rows.append(
            _common.result(
                f"{label} -j 2 vs -j 1",
                "s",
                med["-j 2"],
                med["-j 1"],
                ratio,
                target,
                baseline="-j 1",
            )
        )

    # -- inside an uncompressed tar against unpacked --------------------------------------
    def scan_tar():
        return [r.to_dict() for r in tfckpt.scan(tar)]

    def scan_dir():
        return [r.to_dict() for r in tfckpt.scan(small)]

    strip = [(d["name"].split("/", 1)[-1], d["keys"], d["parameters"]) for d in scan_tar()]
    if sorted(strip) != sorted((d["name"], d["keys"], d["parameters"]) for d in scan_dir()):
        sys.exit("bench_scan: the tar and the directory give different records")
    med, _ = timed({"tar": scan_tar, "directory": scan_dir}, args.runs)
    ratio = med["directory"] / med["tar"]
    lines.append(
        line(
            f"scan {n_ckpts} ckpts in an uncompressed tar vs unpacked",
            "tar",
            med["tar"],
            "directory",
            med["directory"],
            ratio,
            TAR_TARGET,
        )
    )
    rows.append(
        _common.result(
            "scan inside a tar vs unpacked",
            "s",
            med["tar"],
            med["directory"],
            ratio,
            TAR_TARGET,
            baseline="directory",
        )
    )

    # RESULT lines: against TensorFlow as _common prints them, then tfckpt against itself.
    _common.emit(argparse.Namespace(json=None), [r for r in rows if "baseline" not in r])
    for ln in lines:
        print(ln)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
