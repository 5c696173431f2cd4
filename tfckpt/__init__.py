"""tfckpt: read, verify and inspect TensorFlow checkpoints without TensorFlow."""

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
from .edit import EditPlan, edit
from .writer import Writer, object_key, update_checkpoint_state, write

__version__ = "0.1.0"
#: Which CRC32C implementation the native core uses on this CPU.
crc32c_implementation = _crc_impl

__all__ = [
    "open",
    "Reader",
    "Entry",
    "Header",
    "TensorSlice",
    "Variant",
    "Writer",
    "edit",
    "EditPlan",
    "write",
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
