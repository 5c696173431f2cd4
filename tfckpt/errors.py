"""The exceptions of tfckpt, in one place.

Every error tfckpt raises about a checkpoint is a :class:`CheckpointError`. Each carries the
context that was known where it was raised: ``path`` (the file), ``key``, ``shard`` and
``offset``, each ``None`` where unknown. A layer that knows more adds it with
:meth:`CheckpointError.with_context`, which composes the message by one rule, so no caller
patches message strings::

    try:
        reader.read(key)
    except tfckpt.CheckpointError as e:
        print(e.path, e.key, e.shard, e.offset)
"""

from __future__ import annotations

from typing import Optional, TypeVar

__all__ = [
    "CheckpointError",
    "NotACheckpointError",
    "CorruptCheckpointError",
    "ChecksumMismatchError",
    "MissingShardError",
    "UnreadableError",
    "UnreadableShardError",
    "GitLfsPointerError",
    "UnsupportedCheckpointError",
    "KeyNotFoundError",
    "InvalidArgumentError",
]

_E = TypeVar("_E", bound="CheckpointError")


class CheckpointError(Exception):
    """Base class of every error about a checkpoint."""

    def __init__(
        self,
        message: str = "",
        *,
        path: Optional[str] = None,
        key: Optional[str] = None,
        shard: Optional[int] = None,
        offset: Optional[int] = None,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.key = key
        self.shard = shard
        self.offset = offset

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    def _extra(self) -> dict:
        """Keyword arguments beyond the context fields, for copies of this error."""
        return {}

    def with_context(
        self: _E,
        *,
        path: Optional[str] = None,
        key: Optional[str] = None,
        shard: Optional[int] = None,
        offset: Optional[int] = None,
    ) -> _E:
        """The same error with what the caller knows added, where it was not known yet.

        The message gains the file as a prefix (``path: ...``) unless it names it already,
        and a key or offset it does not mention yet in one trailing parenthesis
        (``(key k, offset 96)``). Returns `self` when nothing is new.
        """
        message = self.message
        new_path = path if self.path is None and path else None
        new_key = key if self.key is None and key is not None else None
        new_offset = offset if self.offset is None and offset is not None else None
        if (
            new_path is None
            and new_key is None
            and new_offset is None
            and (shard is None or self.shard is not None)
        ):
            return self
        if new_path is not None and new_path not in message:
            message = f"{new_path}: {message}"
        notes = []
        if new_key is not None and f"key {new_key}" not in message:
            notes.append(f"key {new_key}")
        if new_offset is not None and f"offset {new_offset}" not in message:
            notes.append(f"offset {new_offset}")
        if notes:
            message = f"{message} ({', '.join(notes)})"
        err = type(self)(
            message,
            path=self.path if self.path is not None else path,
            key=self.key if self.key is not None else key,
            shard=self.shard if self.shard is not None else shard,
            offset=self.offset if self.offset is not None else offset,
            **self._extra(),
        )
        return err


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
        message: str = "",
        *,
        path: Optional[str] = None,
        key: Optional[str] = None,
        shard: Optional[int] = None,
        offset: Optional[int] = None,
        stored: Optional[int] = None,
        computed: Optional[int] = None,
    ) -> None:
        super().__init__(message, path=path, key=key, shard=shard, offset=offset)
        self.stored = stored
        self.computed = computed

    def _extra(self) -> dict:
        return {"stored": self.stored, "computed": self.computed}


class MissingShardError(CheckpointError):
    """A data shard that the index refers to is not there."""


class UnreadableError(CheckpointError):
    """A file or directory of the checkpoint is there but cannot be read (permission denied,
    a directory where a file should be, an I/O error): a problem of access, not damage.

    ``reason`` is the operating system's word for it (``Permission denied``).
    """

    def __init__(
        self,
        message: str = "",
        *,
        path: Optional[str] = None,
        key: Optional[str] = None,
        shard: Optional[int] = None,
        offset: Optional[int] = None,
        reason: Optional[str] = None,
    ) -> None:
        super().__init__(message, path=path, key=key, shard=shard, offset=offset)
        self.reason = reason

    def _extra(self) -> dict:
        return {"reason": self.reason}


class UnreadableShardError(UnreadableError, MissingShardError):
    """A data shard is there but cannot be read; a MissingShardError too, as it was before
    the two were told apart, so code that catches that goes on working."""


class GitLfsPointerError(MissingShardError):
    """A file of the checkpoint is a git-lfs pointer: the repository it came from holds the
    real file in LFS and it was never fetched (``git lfs pull``). The file is missing as
    surely as if it were not there, hence a MissingShardError (for the index too)."""


class UnsupportedCheckpointError(CheckpointError):
    """The checkpoint uses a version or feature this reader does not handle."""


class InvalidArgumentError(CheckpointError, ValueError):
    """The caller asked for something the checkpoint cannot give (a bad slice, say)."""


class KeyNotFoundError(CheckpointError, KeyError):
    """The checkpoint has no tensor under the requested key."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message
