"""Where a checkpoint's bytes come from: the reader asks a storage for the index and for
byte ranges of data shards, so the same reader serves local files (memory-mapped, zero
copy), archive members and remote object stores.

A storage provides:

* ``prefix`` and ``index_path``: names used in messages;
* ``index_buffer()``: the whole .index file as a buffer;
* ``shard_size(shard_id, num_shards)``: the size of a data shard, raising MissingShardError;
* ``read(shard_id, num_shards, offset, size)``: exactly those bytes as a buffer, raising
  MissingShardError for a missing shard and CorruptCheckpointError for a range past its end.
"""

from __future__ import annotations

import threading
from typing import Any, Dict

from . import _native
from .errors import CorruptCheckpointError, MissingShardError, NotACheckpointError
from .paths import data_filename

__all__ = ["LocalStorage", "BytesStorage"]


class _ShardCache:
    """Opens each shard once, thread-safely."""

    def __init__(self, opener) -> None:
        self._opener = opener
        self._open: Dict[int, Any] = {}
        self._lock = threading.Lock()

    def get(self, shard_id: int, num_shards: int):
        f = self._open.get(shard_id)
        if f is None:
            with self._lock:
                f = self._open.get(shard_id)
                if f is None:
                    f = self._opener(shard_id, num_shards)
                    self._open[shard_id] = f
        return f

    def clear(self) -> None:
        self._open = {}


def _check_range(name: str, size_of_file: int, offset: int, size: int) -> None:
    if offset < 0 or size < 0 or offset + size > size_of_file:
        raise CorruptCheckpointError(
            f"{name}: bytes [{offset}, {offset + size}) lie past the end of the "
            f"{size_of_file}-byte data file (truncated shard?)")


class LocalStorage:
    """Files on the local filesystem, memory-mapped: values are zero-copy views."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.index_path = prefix + ".index"
        self._shards = _ShardCache(self._open_shard)

    def index_buffer(self):
        try:
            return _native.MappedFile(self.index_path)
        except FileNotFoundError:
            raise NotACheckpointError(f"No checkpoint index at {self.index_path}") from None
        except OSError as e:
            raise NotACheckpointError(f"Cannot open {self.index_path}: {e.strerror}") from None

    def shard_path(self, shard_id: int, num_shards: int) -> str:
        return data_filename(self.prefix, shard_id, num_shards)

    def _open_shard(self, shard_id: int, num_shards: int):
        path = self.shard_path(shard_id, num_shards)
        try:
            return _native.MappedFile(path)
        except FileNotFoundError:
            raise MissingShardError(
                f"Data shard {shard_id} of {num_shards} is missing: {path} does not exist",
                path=path, shard=shard_id) from None
        except OSError as e:
            raise MissingShardError(f"Cannot open data shard {path}: {e.strerror}",
                                    path=path, shard=shard_id) from None

    def shard_size(self, shard_id: int, num_shards: int) -> int:
        return self._shards.get(shard_id, num_shards).size

    def read(self, shard_id: int, num_shards: int, offset: int, size: int):
        f = self._shards.get(shard_id, num_shards)
        _check_range(self.shard_path(shard_id, num_shards), f.size, offset, size)
        return memoryview(f)[offset: offset + size]

    def close(self) -> None:
        self._shards.clear()


class BytesStorage:
    """A checkpoint held in memory: ``{".index": bytes, ".data-00000-of-00001": bytes}``
    suffixes to contents (handy for tests and for archives read into memory)."""

    def __init__(self, prefix: str, files: Dict[str, bytes]) -> None:
        self.prefix = prefix
        self.index_path = prefix + ".index"
        self._files = files

    def index_buffer(self):
        try:
            return self._files[".index"]
        except KeyError:
            raise NotACheckpointError(f"No checkpoint index at {self.index_path}") from None

    def shard_path(self, shard_id: int, num_shards: int) -> str:
        return data_filename(self.prefix, shard_id, num_shards)

    def _data(self, shard_id: int, num_shards: int) -> bytes:
        suffix = data_filename("", shard_id, num_shards)
        try:
            return self._files[suffix]
        except KeyError:
            path = self.shard_path(shard_id, num_shards)
            raise MissingShardError(
                f"Data shard {shard_id} of {num_shards} is missing: {path} does not exist",
                path=path, shard=shard_id) from None

    def shard_size(self, shard_id: int, num_shards: int) -> int:
        return len(self._data(shard_id, num_shards))

    def read(self, shard_id: int, num_shards: int, offset: int, size: int):
        data = self._data(shard_id, num_shards)
        _check_range(self.shard_path(shard_id, num_shards), len(data), offset, size)
        return memoryview(data)[offset: offset + size]

    def close(self) -> None:
        pass
