"""Listing the 1 GiB checkpoint as a whole process: `tfckpt dump` vs TensorFlow.

    python benchmarks/bench_list_process.py [--data DIR] [--runs N]

Contenders, each a fresh process started from nothing, stdout to /dev/null:

* ``tfckpt dump PREFIX`` -- the installed console script (the real script next to this
  interpreter, not a pyenv shim that would add a shell and a ``pyenv exec`` in front);
* ``python -c "import tensorflow as tf; print each of tf.train.list_variables(PREFIX)"``.

Both run with the same environment (TF_CPP_MIN_LOG_LEVEL=3), with bytecode caching on:
PYTHONDONTWRITEBYTECODE is removed and PYTHONPYCACHEPREFIX points into the data directory
(DATA/pycache), so neither process recompiles its Python modules on every start -- as with
any normal installation, where pip writes the .pyc files at install time. (Without this, an
environment that sets PYTHONDONTWRITEBYTECODE recompiles tfckpt's modules -- an editable
install has no .pyc files -- on every start, while TensorFlow's installed .pyc files are
still used; that case is measured too and printed for information.)

One warm-up run of each (which also fills the bytecode cache, makes the page cache warm and
checks that both list the same keys), then N runs alternate between the two. Reported: the
median wall time (fork to reaped) and the median
peak RSS of each child, measured with ``os.wait4`` (the child's own ``ru_maxrss``, unlike
``RUSAGE_CHILDREN``, which is a running maximum over every child ever waited for).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time

import _common
import make_data

TF_SCRIPT = r"""
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
for name, shape in tf.train.list_variables(sys.argv[1]):
    print(name, shape)
"""

SPEED_TARGET = 50.0  # issue 12: keep >= 50x
MEMORY_TARGET = 25.0  # issue 12: keep >= 25x


def tfckpt_script() -> str:
    """The console script installed for this interpreter."""
    path = os.path.join(sysconfig.get_path("scripts"), "tfckpt")
    if os.path.isfile(path) and os.access(path, os.X_OK):
        return path
    found = shutil.which("tfckpt")
    if not found:
        sys.exit(
            "bench_list_process: the tfckpt console script is not installed "
            "(pip install --no-build-isolation -e .)"
        )
    return found


def run_child(argv, env, capture: bool = False):
    """Runs argv; returns (wall seconds, peak RSS in KiB, stdout text or None)."""
    with (
        tempfile.TemporaryFile() as err,
        tempfile.TemporaryFile() if capture else open(os.devnull, "wb") as out,
    ):
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        if p.returncode != 0:
            err.seek(0)
            sys.exit(
                f"bench_list_process: {argv[0]} failed ({p.returncode}):\n"
                f"{err.read().decode(errors='replace')}"
            )
        text = None
        if capture:
            out.seek(0)
            text = out.read().decode()
        return wall, usage.ru_maxrss, text


def _keys_tfckpt(text: str):
    return {line.split()[0] for line in text.splitlines() if line and not line.startswith("#")}


def _keys_tf(text: str):
    return {line.split(" ", 1)[0] for line in text.splitlines() if line}


def main(argv=None) -> int:
    args = _common.parser(_common.first_line(__doc__), runs=5).parse_args(argv)
    data = _common.prepare(args)
    prefix = make_data.big_prefix(data)
    env = dict(
        os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPYCACHEPREFIX=os.path.join(data, "pycache")
    )
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env_as_is = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    script = tfckpt_script()
    contenders = {
        "tfckpt": [script, "dump", prefix],
        "tensorflow": [sys.executable, "-c", TF_SCRIPT, prefix],
    }
    print(
        f"bench_list_process: listing {prefix} ({os.path.getsize(prefix + '.index')} B index, "
        f"{os.path.getsize(prefix + '.data-00000-of-00001') / 2**30:.2f} GiB data)"
    )
    print(f"  tfckpt:     {' '.join(contenders['tfckpt'][:2])} PREFIX > /dev/null")
    print(f"  TensorFlow: {sys.executable} -c '...tf.train.list_variables(PREFIX)...' > /dev/null")

    # Warm-up: bytecode and page caches, and a check that both list the same keys.
    _, _, out_a = run_child(contenders["tfckpt"], env, capture=True)
    _, _, out_b = run_child(contenders["tensorflow"], env, capture=True)
    keys_a, keys_b = _keys_tfckpt(out_a), _keys_tf(out_b)
    if keys_a != keys_b:
        sys.exit(f"bench_list_process: the listings differ: {sorted(keys_a ^ keys_b)[:5]}")
    print(f"  warm-up done; both list the same {len(keys_a)} keys")

    times = {k: [] for k in contenders}
    rss = {k: [] for k in contenders}
    for i in range(args.runs):
        order = list(contenders) if i % 2 == 0 else list(reversed(contenders))
        for name in order:
            wall, peak, _ = run_child(contenders[name], env)
            times[name].append(wall)
            rss[name].append(peak)
    for name in contenders:
        print(
            f"  {name:<10} wall: median {_common.fmt_s(_common.median(times[name]))} "
            f"(min {_common.fmt_s(min(times[name]))}, max {_common.fmt_s(max(times[name]))}); "
            f"peak RSS: median {_common.fmt_mib(_common.median(rss[name]))} "
            f"(max {_common.fmt_mib(max(rss[name]))})"
        )
    t_a, t_b = _common.median(times["tfckpt"]), _common.median(times["tensorflow"])
    m_a, m_b = _common.median(rss["tfckpt"]), _common.median(rss["tensorflow"])
    # Information: tfckpt in the caller's environment, bytecode settings untouched.
    run_child(contenders["tfckpt"], env_as_is)
    as_is = [run_child(contenders["tfckpt"], env_as_is) for _ in range(args.runs)]
    t_env = _common.median([w for w, _, _ in as_is])
    flag = os.environ.get("PYTHONDONTWRITEBYTECODE")
    print(
        f"  (information: tfckpt in the caller's environment [PYTHONDONTWRITEBYTECODE="
        f"{flag if flag is not None else 'unset'}]: median {_common.fmt_s(t_env)}, peak RSS "
        f"{_common.fmt_mib(_common.median([m for _, m, _ in as_is]))}, "
        f"{t_b / t_env:.1f}x against the TensorFlow median above)"
    )
    rows = [
        _common.result(
            "list 1 GiB ckpt, process wall time",
            "s",
            t_a,
            t_b,
            t_b / t_a,
            SPEED_TARGET,
            runs=args.runs,
            tfckpt_env_as_is=t_env,
        ),
        _common.result(
            "list 1 GiB ckpt, process peak RSS",
            "KiB",
            m_a,
            m_b,
            m_b / m_a,
            MEMORY_TARGET,
            runs=args.runs,
        ),
    ]
    print(
        f"  speed-up {t_b / t_a:.1f}x (TensorFlow time / tfckpt time); "
        f"memory ratio {m_b / m_a:.1f}x (TensorFlow peak RSS / tfckpt peak RSS)"
    )
    _common.emit(args, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
