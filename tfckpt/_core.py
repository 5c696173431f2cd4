"""Which core reads and writes bytes: the C++ extension or its pure-Python twin.

Every module that sits directly on the core imports it from here (``from ._core import core``);
nothing else does. ``TFCKPT_IMPLEMENTATION=native`` insists on the extension,
``TFCKPT_IMPLEMENTATION=python`` asks for the twin; left unset, the extension is used and a
``RuntimeWarning`` says so when it cannot be imported and the (slower) twin takes over.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from types import ModuleType
from typing import TYPE_CHECKING, Tuple

__all__ = ["core", "implementation"]


def _select() -> Tuple[ModuleType, str]:
    wanted = os.environ.get("TFCKPT_IMPLEMENTATION", "").strip().lower()
    if wanted not in ("", "native", "python"):
        raise ImportError(f"TFCKPT_IMPLEMENTATION must be 'native' or 'python', not {wanted!r}")
    if wanted != "python":
        try:
            # By name: the extension is a compiled module that import analysis cannot see.
            return importlib.import_module(__package__ + "._native"), "native"
        except ImportError as e:
            if wanted == "native":
                raise
            warnings.warn(
                f"tfckpt: the native extension cannot be imported ({e}); using the pure-Python "
                "core, which is slower. Set TFCKPT_IMPLEMENTATION=python to choose it quietly.",
                RuntimeWarning,
                stacklevel=3,
            )
    from . import _pycore

    # Code that imports tfckpt._native by name (tests, tools) gets the core in use.
    sys.modules[__package__ + "._native"] = _pycore
    setattr(sys.modules[__package__], "_native", _pycore)  # noqa: B010 - made at run time
    return _pycore, "python"


if TYPE_CHECKING:  # both cores have the names and types of tfckpt/_native.pyi
    from . import _native as core

    implementation: str
else:
    #: The core module: tfckpt._native (C++) or tfckpt._pycore (pure Python), same names.
    core, implementation = _select()
