"""tfckpt: read, write, verify and inspect TensorFlow checkpoints without TensorFlow."""

import os as _os
import sys as _sys


def _select_core():
    """The core every module gets from ``from . import _native``: the C++ extension, or its
    pure-Python twin ``_pycore`` when ``TFCKPT_IMPLEMENTATION=python`` or when the extension
    cannot be imported. Runs before anything imports ``tfckpt._native``."""
    wanted = _os.environ.get("TFCKPT_IMPLEMENTATION", "").strip().lower()
    if wanted not in ("", "native", "python"):
        raise ImportError(
            f"TFCKPT_IMPLEMENTATION must be 'native' or 'python', not {wanted!r}")
    if wanted != "python":
        try:
            from . import _native as core

            return core, "native"
        except ImportError:
            if wanted == "native":
                raise
    from . import _pycore as core

    _sys.modules[__name__ + "._native"] = core
    return core, "python"


#: "native" (the C++ extension tfckpt._native) or "python" (its pure-Python twin, slower).
_native, implementation = _select_core()
del _select_core

from .errors import (  # noqa: E402 - the core is chosen first
    CheckpointError,
    ChecksumMismatchError,
    CorruptCheckpointError,
    InvalidArgumentError,
    KeyNotFoundError,
    MissingShardError,
    NotACheckpointError,
    UnsupportedCheckpointError,
)
from .reader import OBJECT_GRAPH_KEY, Entry, Header, Reader, TensorSlice, Variant, open  # noqa: E402

__version__ = "0.1.0"
#: Which CRC32C implementation is in use: "sse4.2", "armv8-crc" or "portable" (native core),
#: "python" (the pure-Python twin).
crc32c_implementation = _native.crc32c_implementation

# Writing, editing, scanning and the tools are imported on first use, so reading starts quickly.
_LAZY = {
    "Writer": "writer",
    "write": "writer",
    "object_key": "writer",
    "update_checkpoint_state": "writer",
    "scan": "scanning",
    "scan_to_dask": "scanning",
    "edit": "editing",
    "EditPlan": "editing",
    "diff": "tools",
    "DiffResult": "tools",
    "ValueChange": "tools",
    "average": "tools",
    "migrate": "tools",
    "MigrationReport": "tools",
    "optimizer_keys": "tools",
    "to_npz": "tools",
    "from_npz": "tools",
    "to_safetensors": "tools",
    "from_safetensors": "tools",
    "ConversionReport": "tools",
}


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tfckpt' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "open",
    "Reader",
    "Entry",
    "Header",
    "TensorSlice",
    "Variant",
    "Writer",
    "write",
    "edit",
    "scan",
    "scan_to_dask",
    "EditPlan",
    "diff",
    "DiffResult",
    "ValueChange",
    "average",
    "migrate",
    "MigrationReport",
    "optimizer_keys",
    "to_npz",
    "from_npz",
    "to_safetensors",
    "from_safetensors",
    "ConversionReport",
    "object_key",
    "update_checkpoint_state",
    "OBJECT_GRAPH_KEY",
    "CheckpointError",
    "ChecksumMismatchError",
    "CorruptCheckpointError",
    "InvalidArgumentError",
    "KeyNotFoundError",
    "MissingShardError",
    "NotACheckpointError",
    "UnsupportedCheckpointError",
    "crc32c_implementation",
    "implementation",
]
