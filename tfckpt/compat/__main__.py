"""``python -m tfckpt.compat SCRIPT.py ARGS...``: runs an unmodified script with tfckpt
standing in for TensorFlow. ``import tensorflow`` (and ``tensorflow.compat.v1``, ...) gets
:mod:`tfckpt.compat`; importing a part of TensorFlow it does not provide fails at once,
naming it."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import runpy
import sys
from types import ModuleType
from typing import Any, Optional, Sequence

import tfckpt.compat as compat

USAGE = "usage: python -m tfckpt.compat SCRIPT.py [ARGS...]\n"


class TensorFlowFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers imports of ``tensorflow`` and its submodules with tfckpt.compat's modules."""

    def find_spec(
        self, fullname: str, path: Any = None, target: Any = None
    ) -> Optional[importlib.machinery.ModuleSpec]:
        if fullname != "tensorflow" and not fullname.startswith("tensorflow."):
            return None
        if fullname not in compat.MODULES:
            raise ModuleNotFoundError(
                f"{fullname} is not provided by tfckpt.compat, which stands in for "
                "TensorFlow's checkpoint-reading API only; run this script with TensorFlow "
                "installed"
            )  # no name=: `from tensorflow import x` would hide this one
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return compat.MODULES[spec.name]

    def exec_module(self, module: ModuleType) -> None:
        """The modules are complete already."""


def run(argv: Sequence[str]) -> int:
    """Runs ``argv[0]`` as ``__main__`` with ``argv`` as its sys.argv."""
    if not argv or argv[0] in ("-h", "--help"):
        sys.stderr.write(USAGE)
        return 0 if argv else 2
    script = argv[0]
    sys.meta_path.insert(0, TensorFlowFinder())
    sys.argv = list(argv)
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    runpy.run_path(script, run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
