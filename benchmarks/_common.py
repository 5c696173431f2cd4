"""Shared helpers of the benchmark scripts (argument parsing, data, statistics, results)."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from typing import List, Optional

# Before anything can import TensorFlow: keep its C++ logging quiet.
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import make_data  # noqa: E402


def parser(description: str, runs: int) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument(
        "--data",
        default=make_data.DEFAULT_OUT,
        help="benchmark data directory, created if missing (default: %(default)s)",
    )
    ap.add_argument(
        "--runs", type=int, default=runs, help="timed runs of each contender (default: %(default)s)"
    )
    ap.add_argument("--json", metavar="PATH", help="also write the results to PATH (run_all)")
    return ap


def prepare(args) -> str:
    return make_data.ensure(args.data, quiet=True)


def back_memory(nbytes: int = 3 << 30) -> None:
    """Writes `nbytes` of fresh anonymous memory and frees it: untimed, just before a timed
    call that fills new pages (writing a checkpoint into the page cache).

    This machine is a virtual machine whose balloon device has free page reporting on
    (virtio feature 5; /sys/bus/virtio/devices/*/features): about two seconds after the guest
    frees 2 MiB blocks, the host takes them back, and the next guest to touch them waits for
    the host to supply and zero them again. Writing 1 GiB into the page cache then takes
    ~250 ms or ~1.5 s depending on whether the pages it lands on were given back, which is
    the hypervisor's timing, not the program's. Touching memory just before the call hands
    both contenders pages the host has backed."""
    import numpy as np

    block = np.ones(nbytes, dtype=np.uint8)
    del block


def median(xs: List[float]) -> float:
    return statistics.median(xs)


def fmt_s(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def fmt_mib(kib: float) -> str:
    return f"{kib / 1024:.1f} MiB"


def result(
    name: str, unit: str, tfckpt: float, tf: float, ratio: float, target: float, **extra
) -> dict:
    """One summary row. `ratio` is "times better" for tfckpt (higher is better)."""
    return dict(
        benchmark=name,
        unit=unit,
        tfckpt=tfckpt,
        tensorflow=tf,
        ratio=ratio,
        target=target,
        met=ratio >= target,
        **extra,
    )


def emit(args, rows: List[dict]) -> None:
    for r in rows:
        verdict = "MET" if r["met"] else "MISSED"
        print(
            f"RESULT {r['benchmark']}: tfckpt {_fmt(r['tfckpt'], r['unit'])}, TensorFlow "
            f"{_fmt(r['tensorflow'], r['unit'])}, ratio {r['ratio']:.1f}x "
            f"(target >= {r['target']:g}x: {verdict})"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


def _fmt(value: float, unit: str) -> str:
    if unit == "s":
        return fmt_s(value)
    if unit == "KiB":
        return fmt_mib(value)
    return f"{value:g} {unit}"


def first_line(doc: Optional[str]) -> str:
    return (doc or "").strip().split("\n")[0]
