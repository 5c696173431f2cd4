"""Installing anywhere: the command says which core is in use, and every command works on the
pure-Python core (which writes too). The installs themselves, from a wheel and from the sdist
with no compiler, are checked by .ci/install-check (fresh environments; too slow for here)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

import tfckpt

ROOT = pathlib.Path(tfckpt.__file__).resolve().parent.parent
SMOKE = ROOT / ".ci" / "smoke.py"


def _env(**extra: str) -> dict:
    return dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        **extra,
    )


@pytest.mark.parametrize(
    "core,words", [("native", "native C++ core"), ("python", "pure-Python core")]
)
def test_version_names_the_core(core, words):
    if core == "native" and tfckpt.implementation != "native":
        pytest.skip("the native extension is not built")
    proc = subprocess.run(
        [sys.executable, "-m", "tfckpt", "--version"],
        capture_output=True,
        text=True,
        env=_env(TFCKPT_IMPLEMENTATION=core),
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"tfckpt {tfckpt.__version__} (") and words in proc.stdout


@pytest.mark.skipif(
    not (pathlib.Path(sys.executable).parent / "tfckpt").exists(),
    reason="the tfckpt command is not installed beside this python",
)
def test_every_smoke_command_works_on_the_pure_python_core():
    proc = subprocess.run(
        [sys.executable, str(SMOKE), "python"],
        capture_output=True,
        text=True,
        env=_env(TFCKPT_IMPLEMENTATION="python"),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "smoke test passed on the python core" in proc.stdout


def test_the_extension_is_optional_in_setup():
    text = (ROOT / "setup.py").read_text()
    assert 'optional=not os.environ.get("TFCKPT_REQUIRE_NATIVE")' in text
