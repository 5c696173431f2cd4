"""tfckpt: read, write, verify and inspect TensorFlow checkpoints without TensorFlow."""

from ._native import crc32c_implementation as _crc_impl
from .errors import (
    CheckpointError,
    ChecksumMismatchError,
    CorruptCheckpointError,
    InvalidArgumentError,
    KeyNotFoundError,
    MissingShardError,
    NotACheckpointError,
    UnsupportedCheckpointError,
)
from .reader import OBJECT_GRAPH_KEY, Entry, Header, Reader, TensorSlice, Variant, open

__version__ = "0.1.0"
#: Which CRC32C implementation the native core uses on this CPU.
crc32c_implementation = _crc_impl

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
]
