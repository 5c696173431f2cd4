"""The exceptions of tfckpt, in one place.

Every error tfckpt raises about a checkpoint is a :class:`CheckpointError`.
Messages name the file, the key and what is wrong.
"""

from __future__ import annotations

from typing import Optional

__all__ = [
    "CheckpointError",
    "NotACheckpointError",
    "CorruptCheckpointError",
    "ChecksumMismatchError",
    "MissingShardError",
    "UnsupportedCheckpointError",
    "KeyNotFoundError",
    "InvalidArgumentError",
]


class CheckpointError(Exception):
    """Base class of every error about a checkpoint."""


class NotACheckpointError(CheckpointError):
    """The path does not lead to a checkpoint (and, where it can be told, what it is)."""


class CorruptCheckpointError(CheckpointError):
    """The bytes of a checkpoint file are malformed or truncated."""


class ChecksumMismatchError(CorruptCheckpointError):
    """A stored CRC32C does not match the bytes it covers.

    ``stored`` and ``computed`` are the unmasked CRCs when they are known.
    """

    def __init__(
        self,
        message: str,
        *,
        key: Optional[str] = None,
        shard: Optional[int] = None,
        offset: Optional[int] = None,
        stored: Optional[int] = None,
        computed: Optional[int] = None,
    ) -> None:
        super().__init__(message)
        self.key = key
        self.shard = shard
        self.offset = offset
        self.stored = stored
        self.computed = computed


class MissingShardError(CheckpointError):
    """A data shard that the index refers to is not there."""

    def __init__(self, message: str, *, path: Optional[str] = None, shard: Optional[int] = None):
        super().__init__(message)
        self.path = path
        self.shard = shard


class UnsupportedCheckpointError(CheckpointError):
    """The checkpoint uses a version or feature this reader does not handle."""


class InvalidArgumentError(CheckpointError, ValueError):
    """The caller asked for something the checkpoint cannot give (a bad slice, say)."""


class KeyNotFoundError(CheckpointError, KeyError):
    """The checkpoint has no tensor under the requested key."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
