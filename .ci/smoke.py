"""Smoke test of an installed tfckpt: write, dump, verify and edit a checkpoint through the
installed command and API, and check which core is in use.

    python .ci/smoke.py native|python

Run by .ci/install-check (from a wheel, and from the sdist with no compiler) and by
cibuildwheel after each wheel is built; it needs nothing but tfckpt and its dependencies.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import warnings


def tfckpt_cli(*args: str) -> str:
    """Runs the installed ``tfckpt`` command (its console script, beside this python)."""
    exe = os.path.join(
        os.path.dirname(sys.executable), "tfckpt.exe" if os.name == "nt" else "tfckpt"
    )
    proc = subprocess.run([exe, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"tfckpt {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc.stdout


def main(expected_core: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the pure-Python core's notice
        import numpy as np

        import tfckpt
    version = tfckpt_cli("--version")
    print(version.strip())
    if tfckpt.implementation != expected_core:
        sys.exit(f"expected the {expected_core} core, got {tfckpt.implementation}")
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "ckpt-1")
        tfckpt.write(
            src,
            {
                "dense/kernel": np.arange(6, dtype=np.float32).reshape(2, 3),
                "dense/bias": np.zeros(3, np.float32),
                "step": np.int64(7),
                "names": np.array([b"a", b"bc"], dtype=object),
            },
        )
        out = tfckpt_cli("dump", src)
        assert "dense/kernel" in out and "float32" in out, out
        tfckpt_cli("verify", src)
        np.save(os.path.join(d, "bias.npy"), np.ones(3, np.float32))
        dst = os.path.join(d, "edited", "ckpt-1")
        tfckpt_cli(
            "edit",
            src,
            "-o",
            dst,
            "--set",
            f"dense/bias={os.path.join(d, 'bias.npy')}",
            "--rename",
            "step=global_step",
        )
        tfckpt_cli("verify", dst)
        with tfckpt.open(dst) as r:
            assert sorted(r.keys()) == ["dense/bias", "dense/kernel", "global_step", "names"]
            assert r["dense/bias"].tolist() == [1.0, 1.0, 1.0]
            assert r["dense/kernel"].tolist() == [[0, 1, 2], [3, 4, 5]]
    print(f"smoke test passed on the {tfckpt.implementation} core")


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in ("native", "python"):
        sys.exit("usage: python .ci/smoke.py native|python")
    main(sys.argv[1])
