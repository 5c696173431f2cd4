"""Runs every benchmark (each in a fresh process) and prints one summary table.

    python benchmarks/run_all.py [--data DIR] [--runs N]

Creates the benchmark data first if it is missing (benchmarks/make_data.py). Without
--runs each benchmark uses its own default number of runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib import metadata

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import make_data  # noqa: E402

BENCHMARKS = [
    "bench_list_process.py",
    "bench_read_all.py",
    "bench_stats.py",
    "bench_list_many.py",
    "bench_write.py",
]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _version(dist: str) -> str:
    for name in (dist, dist + "-cpu"):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "?"


def _fmt(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value * 1e3:.1f} ms" if value < 1 else f"{value:.2f} s"
    if unit == "KiB":
        return f"{value / 1024:.1f} MiB"
    return f"{value:g} {unit}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=make_data.DEFAULT_OUT)
    ap.add_argument("--runs", type=int, help="runs of every benchmark (default: their own)")
    args = ap.parse_args(argv)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    start = time.perf_counter()

    if not make_data.data_ready(args.data):
        subprocess.run(
            [sys.executable, os.path.join(HERE, "make_data.py"), "--out", args.data],
            env=env,
            check=True,
        )

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for script in BENCHMARKS:
            out = os.path.join(tmp, script + ".json")
            cmd = [sys.executable, os.path.join(HERE, script), "--data", args.data, "--json", out]
            if args.runs:
                cmd += ["--runs", str(args.runs)]
            shown = ["python", os.path.relpath(cmd[1])] + cmd[2:4] + cmd[6:]
            print("\n$ " + " ".join(shown), flush=True)
            proc = subprocess.run(cmd, env=env, stderr=subprocess.PIPE, text=True)
            if proc.returncode != 0:
                sys.stderr.write(proc.stderr)
                sys.exit(f"run_all: {script} failed ({proc.returncode})")
            with open(out) as f:
                rows += json.load(f)

    import tfckpt

    print(
        f"\nSummary ({os.cpu_count()} CPUs, {_cpu_model()}; Python {platform.python_version()}, "
        f"tfckpt {tfckpt.__version__} [CRC32C: {tfckpt.crc32c_implementation}], "
        f"TensorFlow {_version('tensorflow')}; ratio = how many times better tfckpt is)"
    )
    header = ("benchmark", "tfckpt", "TensorFlow", "ratio", "target", "met?")
    table = [header] + [
        (
            r["benchmark"],
            _fmt(r["tfckpt"], r["unit"]),
            _fmt(r["tensorflow"], r["unit"]),
            f"{r['ratio']:.1f}x",
            f">= {r['target']:g}x",
            "yes" if r["met"] else "NO",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    align = ["<", ">", ">", ">", ">", "<"]
    for n, row in enumerate(table):
        print("  ".join(f"{cell:{a}{w}}" for cell, a, w in zip(row, align, widths)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    for r in rows:
        if "tfckpt_gbps" in r:
            print(
                f"  ({r['benchmark']}: tfckpt {r['tfckpt_gbps']:.2f} GB/s, TensorFlow "
                f"{r['tensorflow_gbps']:.2f} GB/s of payload)"
            )
        if "kept_ratio" in r:
            print(
                f"  ({r['benchmark']}, all listings kept alive: tfckpt "
                f"{_fmt(r['kept_tfckpt'], 's')}, TensorFlow {_fmt(r['kept_tensorflow'], 's')}, "
                f"{r['kept_ratio']:.1f}x)"
            )
        for note in r.get("notes", ()):
            print(f"  ({r['benchmark']}: {note})")
    met = sum(r["met"] for r in rows)
    print(f"{met} of {len(rows)} targets met; total time {time.perf_counter() - start:.0f} s")
    return 0 if met == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
