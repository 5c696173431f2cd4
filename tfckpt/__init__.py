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

# Writing and editing are imported on first use, so reading stays quick to start.
_LAZY = {
    "Writer": "writer",
    "write": "writer",
    "object_key": "writer",
    "update_checkpoint_state": "writer",
    "edit": "edit",
    "EditPlan": "edit",
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
    "EditPlan",
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
