"""tfckpt: read, write, verify and inspect TensorFlow checkpoints without TensorFlow."""

from ._core import core as _selected_core
from ._core import implementation
from .entries import Entry, Header, StoredEntry, Variant
from .errors import (
    CheckpointError,
    ChecksumMismatchError,
    CorruptCheckpointError,
    GitLfsPointerError,
    InvalidArgumentError,
    KeyNotFoundError,
    MissingShardError,
    NotACheckpointError,
    UnreadableError,
    UnreadableShardError,
    UnsupportedCheckpointError,
)
from .keys import OBJECT_GRAPH_KEY, object_key
from .reader import Reader, open
from .slices import TensorSlice

__version__ = "0.1.0"
#: Which CRC32C implementation is in use: "sse4.2", "armv8-crc" or "portable" (native core),
#: "python" (the pure-Python twin).
crc32c_implementation = _selected_core.crc32c_implementation
del _selected_core

# Writing, editing, scanning and the tools are imported on first use, so reading starts quickly.
_LAZY = {
    "Writer": "writer",
    "write": "writer",
    "update_checkpoint_state": "writer",
    "RemoteLimits": "remote",
    "scan": "scanning",
    "scan_to_dask": "scanning",
    "edit": "editing",
    "EditPlan": "editing",
    "diff": "tools",
    "DiffResult": "tools",
    "ValueChange": "tools",
    "explain_restore": "tools",
    "RestoreReport": "tools",
    "average": "tools",
    "migrate": "tools",
    "MigrationReport": "tools",
    "optimizer_keys": "tools",
    "to_npz": "tools",
    "from_npz": "tools",
    "to_safetensors": "tools",
    "from_safetensors": "tools",
    "ConversionReport": "tools",
    "stats": "tools",
    "TensorStats": "tools",
    "first_nonfinite": "tools",
    "to_keras": "tools.keras",
    "from_keras": "tools.keras",
    "KerasConversion": "tools.keras",
}


def __dir__():
    """The module's names, the lazily imported ones included (``dir(tfckpt)``, completion)."""
    return sorted(set(globals()) | set(_LAZY))


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
    "StoredEntry",
    "Header",
    "TensorSlice",
    "Variant",
    "Writer",
    "write",
    "edit",
    "scan",
    "scan_to_dask",
    "RemoteLimits",
    "EditPlan",
    "diff",
    "DiffResult",
    "ValueChange",
    "explain_restore",
    "RestoreReport",
    "average",
    "migrate",
    "MigrationReport",
    "optimizer_keys",
    "to_npz",
    "from_npz",
    "to_safetensors",
    "from_safetensors",
    "ConversionReport",
    "stats",
    "TensorStats",
    "first_nonfinite",
    "to_keras",
    "from_keras",
    "KerasConversion",
    "object_key",
    "update_checkpoint_state",
    "OBJECT_GRAPH_KEY",
    "CheckpointError",
    "ChecksumMismatchError",
    "CorruptCheckpointError",
    "GitLfsPointerError",
    "InvalidArgumentError",
    "KeyNotFoundError",
    "MissingShardError",
    "NotACheckpointError",
    "UnreadableError",
    "UnreadableShardError",
    "UnsupportedCheckpointError",
    "crc32c_implementation",
    "implementation",
]
