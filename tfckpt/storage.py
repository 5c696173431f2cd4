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
import zlib
from typing import Any, Dict, Optional, Tuple

from ._core import core
from .errors import (
    CorruptCheckpointError,
    MissingShardError,
    NotACheckpointError,
    UnreadableShardError,
    UnsupportedCheckpointError,
)
from .files import check_git_lfs_pointer, data_filename

__all__ = ["LocalStorage", "BytesStorage", "TarMemberStorage", "ZipMemberStorage", "FsspecStorage",
           "mapped_archive", "list_tar_members"]


class _ShardCache:
    """Opens each shard once, thread-safely. (It holds no reference to its storage: a cycle
    would keep mappings and descriptors open until the garbage collector runs.)"""

    def __init__(self) -> None:
        self._open: Dict[int, Any] = {}
        self._lock = threading.Lock()

    def get(self, shard_id: int, num_shards: int, opener):
        f = self._open.get(shard_id)
        if f is None:
            with self._lock:
                f = self._open.get(shard_id)
                if f is None:
                    f = opener(shard_id, num_shards)
                    self._open[shard_id] = f
        return f

    def clear(self) -> None:
        self._open = {}


def _check_range(name: str, size_of_file: int, offset: int, size: int) -> None:
    if offset < 0 or size < 0 or offset + size > size_of_file:
        raise CorruptCheckpointError(
            f"{name}: bytes [{offset}, {offset + size}) lie past the end of the "
            f"{size_of_file}-byte data file (truncated shard?)", path=name, offset=offset)


class LocalStorage:
    """Files on the local filesystem, memory-mapped: values are zero-copy views."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.index_path = prefix + ".index"
        self._shards = _ShardCache()

    def index_buffer(self):
        try:
            return core.MappedFile(self.index_path)
        except FileNotFoundError:
            raise NotACheckpointError(f"No checkpoint index at {self.index_path}",
                                      path=self.index_path) from None
        except OSError as e:
            raise NotACheckpointError(f"Cannot open {self.index_path}: {e.strerror}",
                                      path=self.index_path) from None

    def shard_path(self, shard_id: int, num_shards: int) -> str:
        return data_filename(self.prefix, shard_id, num_shards)

    def _open_shard(self, shard_id: int, num_shards: int):
        path = self.shard_path(shard_id, num_shards)
        try:
            f = core.MappedFile(path, track_size=True)
            check_git_lfs_pointer(path, f, shard_id)
            return f
        except FileNotFoundError:
            raise MissingShardError(
                f"Data shard {shard_id} of {num_shards} is missing: {path} does not exist",
                path=path, shard=shard_id) from None
        except OSError as e:  # there, but not readable: an I/O error, not damage
            raise UnreadableShardError(f"Cannot open data shard {path}: {e.strerror}",
                                       path=path, shard=shard_id, reason=e.strerror) from None

    def shard_size(self, shard_id: int, num_shards: int) -> int:
        return self._shards.get(shard_id, num_shards, self._open_shard).size

    def read(self, shard_id: int, num_shards: int, offset: int, size: int):
        f = self._shards.get(shard_id, num_shards, self._open_shard)
        # The size now, not at mapping time: touching pages of a file truncated since would
        # kill the process with SIGBUS.
        _check_range(self.shard_path(shard_id, num_shards), f.current_size(), offset, size)
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
            raise NotACheckpointError(f"No checkpoint index at {self.index_path}",
                                      path=self.index_path) from None

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


# -- archives and remote stores ---------------------------------------------------------
# The classes below let the reader (and `tfckpt scan`) read checkpoints inside archives
# and on object stores, fetching only the bytes a question needs.

#: Deflated archive members are decompressed into memory: refuse members whose declared
#: size exceeds this many times their compressed size (a "zip bomb") when they are large.
MAX_COMPRESSION_RATIO = 1000
_RATIO_FREE_BYTES = 1 << 20  # small members may compress as well as they like

_ARCHIVE_MAPS: Dict[Tuple, Any] = {}
_ARCHIVE_MAPS_LOCK = threading.Lock()
_ARCHIVE_MAPS_KEEP = 8


def mapped_archive(path: str):
    """The archive at `path` memory-mapped once per process (a few are kept open), so many
    member storages of one archive share one mapping."""
    import os

    st = os.stat(path)
    key = (path, st.st_ino, st.st_size, st.st_mtime_ns)  # a replaced archive is mapped anew
    with _ARCHIVE_MAPS_LOCK:
        m = _ARCHIVE_MAPS.get(key)
        if m is None:
            m = core.MappedFile(path)
            if len(_ARCHIVE_MAPS) >= _ARCHIVE_MAPS_KEEP:
                _ARCHIVE_MAPS.pop(next(iter(_ARCHIVE_MAPS)))
            _ARCHIVE_MAPS[key] = m
        return m


def list_tar_members(archive: Any) -> Optional[Tuple[Dict[str, Tuple[int, int]],
                                                     Dict[str, str], Optional[str]]]:
    """The members of an uncompressed tar (a buffer: ``mapped_archive(path)``), listed from
    its headers by the core without reading any data: ``({member: (data offset, size)},
    {member: why it is not a regular file}, what is wrong with the archive or None)``, the
    ``members`` :class:`TarMemberStorage` takes. None when the headers need a full tar
    reader (tarfile): a bad checksum, a number that is not plain octal, a malformed pax
    record, a long name or pax header past the end."""
    return core.tar_members(archive)


class _MemberStorage:
    """Common part of archive member storages: files named by their suffix after the
    prefix (``".index"``, ``".data-00000-of-00001"``)."""

    prefix: str
    index_path: str
    _members: Dict[str, Any]

    def shard_path(self, shard_id: int, num_shards: int) -> str:
        return data_filename(self.prefix, shard_id, num_shards)

    def _member(self, shard_id: int, num_shards: int):
        suffix = data_filename("", shard_id, num_shards)
        member = self._members.get(suffix)
        if member is None:
            path = self.shard_path(shard_id, num_shards)
            raise MissingShardError(
                f"Data shard {shard_id} of {num_shards} is missing: {path} is not in the "
                "archive", path=path, shard=shard_id)
        return suffix, member

    def close(self) -> None:
        pass


class TarMemberStorage(_MemberStorage):
    """A checkpoint inside an uncompressed tar, read in place: the tar is memory-mapped and
    every range is a zero-copy slice of it, so reading costs what reading the unpacked
    files costs.

    `members` maps each file's suffix after the prefix (``".index"``,
    ``".data-00000-of-00001"``) to ``(offset_data, size)`` as tarfile's TarInfo gives them;
    `prefix` is the name used in messages (``run.tar!/ckpt-3``).
    """

    def __init__(self, archive: str, prefix: str, members: Dict[str, Tuple[int, int]],
                 mapped=None) -> None:
        self.archive = archive
        self.prefix = prefix
        self.index_path = prefix + ".index"
        self._members = dict(members)
        self._mapped = mapped

    def _map(self):
        if self._mapped is None:
            try:
                self._mapped = mapped_archive(self.archive)
            except OSError as e:
                raise NotACheckpointError(
                    f"Cannot open archive {self.archive}: {e.strerror}", path=self.archive
                ) from None
        return self._mapped

    def _view(self, name: str, offset: int, size: int):
        m = self._map()
        if offset + size > m.size:
            raise CorruptCheckpointError(
                f"{name}: the member's bytes [{offset}, {offset + size}) lie past the end of "
                f"the {m.size}-byte archive {self.archive} (truncated archive?)", path=name)
        return memoryview(m)[offset: offset + size]

    def index_buffer(self):
        member = self._members.get(".index")
        if member is None:
            raise NotACheckpointError(f"No checkpoint index at {self.index_path}",
                                      path=self.index_path)
        return self._view(self.index_path, *member)

    def shard_size(self, shard_id: int, num_shards: int) -> int:
        return self._member(shard_id, num_shards)[1][1]

    def read(self, shard_id: int, num_shards: int, offset: int, size: int):
        _, (start, length) = self._member(shard_id, num_shards)
        path = self.shard_path(shard_id, num_shards)
        _check_range(path, length, offset, size)
        return self._view(path, start, length)[offset: offset + size]


class ZipMemberStorage(_MemberStorage):
    """A checkpoint inside a zip archive. Stored (uncompressed) members are read in place
    from the memory-mapped archive; compressed ones are decompressed into memory once,
    never past their declared size, and refused when the declared size is absurd for the
    compressed size.

    `members` maps each suffix after the prefix to a :class:`zipfile.ZipInfo`.
    """

    def __init__(self, archive: str, prefix: str, members: Dict[str, Any],
                 max_member_bytes: int = 1 << 32) -> None:
        self.archive = archive
        self.prefix = prefix
        self.index_path = prefix + ".index"
        self._members = dict(members)
        self._max = max_member_bytes
        self._cache: Dict[str, Any] = {}
        self._lock = threading.Lock()

    def _contents(self, name: str, info):
        data = self._cache.get(info.filename)
        if data is None:
            with self._lock:
                data = self._cache.get(info.filename)
                if data is None:
                    data = self._load(name, info)
                    self._cache[info.filename] = data
        return data

    def _load(self, name: str, info):
        import zipfile

        if info.flag_bits & 0x1:
            raise UnsupportedCheckpointError(f"{name}: the zip member is encrypted", path=name)
        if info.compress_type == zipfile.ZIP_STORED:
            m = mapped_archive(self.archive)
            start = _zip_data_offset(m, info, name)
            if start + info.file_size > m.size:
                raise CorruptCheckpointError(
                    f"{name}: the member's bytes lie past the end of the {m.size}-byte "
                    f"archive {self.archive} (truncated archive?)", path=name)
            return memoryview(m)[start: start + info.file_size]
        if info.file_size > self._max:
            raise UnsupportedCheckpointError(
                f"{name}: the compressed member is {info.file_size} bytes, more than the "
                f"{self._max} bytes tfckpt decompresses into memory", path=name)
        if (info.file_size > _RATIO_FREE_BYTES
                and info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1)):
            raise CorruptCheckpointError(
                f"{name}: the member claims {info.file_size} bytes from {info.compress_size} "
                "compressed bytes, an absurd ratio (a zip bomb?); refused", path=name)
        if info.compress_type == zipfile.ZIP_DEFLATED:
            m = mapped_archive(self.archive)
            start = _zip_data_offset(m, info, name)
            raw = memoryview(m)[start: start + info.compress_size]
            d = zlib.decompressobj(-15)
            try:
                # Never produce more than the declared size (+1 to notice a lie).
                data = d.decompress(raw, info.file_size + 1)
            except zlib.error as e:
                raise CorruptCheckpointError(f"{name}: cannot decompress: {e}", path=name) from None
        else:  # bzip2, lzma: zipfile bounds its output by the declared size
            with zipfile.ZipFile(self.archive) as z, z.open(info) as f:
                try:
                    data = f.read(info.file_size + 1)
                except (zipfile.BadZipFile, EOFError, OSError) as e:
                    raise CorruptCheckpointError(f"{name}: cannot decompress: {e}", path=name) from None
        if len(data) != info.file_size:
            raise CorruptCheckpointError(
                f"{name}: decompressed to {len(data)} bytes, but the archive declares "
                f"{info.file_size}", path=name)
        if zlib.crc32(data) != info.CRC:
            raise CorruptCheckpointError(f"{name}: the zip member's CRC-32 does not match", path=name)
        return data

    def index_buffer(self):
        info = self._members.get(".index")
        if info is None:
            raise NotACheckpointError(f"No checkpoint index at {self.index_path}",
                                      path=self.index_path)
        return self._contents(self.index_path, info)

    def shard_size(self, shard_id: int, num_shards: int) -> int:
        return self._member(shard_id, num_shards)[1].file_size

    def read(self, shard_id: int, num_shards: int, offset: int, size: int):
        _, info = self._member(shard_id, num_shards)
        path = self.shard_path(shard_id, num_shards)
        _check_range(path, info.file_size, offset, size)
        return memoryview(self._contents(path, info))[offset: offset + size]

    def close(self) -> None:
        self._cache = {}


def _zip_data_offset(m, info, name: str) -> int:
    """Where a member's data starts: after its local header, whose name and extra field
    lengths may differ from the central directory's."""
    import struct

    h = info.header_offset
    if h + 30 > m.size:
        raise CorruptCheckpointError(f"{name}: the local header lies past the archive's end", path=name)
    head = bytes(memoryview(m)[h: h + 30])
    if head[:4] != b"PK\x03\x04":
        raise CorruptCheckpointError(f"{name}: bad zip local header signature", path=name)
    name_len, extra_len = struct.unpack("<HH", head[26:30])
    return h + 30 + name_len + extra_len


class FsspecStorage:
    """A checkpoint on any fsspec filesystem (``s3://``, ``gs://``, ``http(s)://``,
    ``memory://``...). The index is fetched whole; data is fetched by byte range
    (``fs.cat_file(path, start, end)``) only when a value is read, so listing a checkpoint
    costs about the size of its index.

    `url` is the prefix (``s3://bucket/run/ckpt-3``); or pass `fs` and a `url` that is the
    path in it. `sizes` may give known file sizes by suffix (``".data-00000-of-00001"``),
    from a directory listing, to save one request per shard.
    """

    def __init__(self, url: str, fs=None, *, storage_options: Optional[dict] = None,
                 sizes: Optional[Dict[str, int]] = None) -> None:
        if fs is None:
            import fsspec

            fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
        else:
            path = url
        self.fs = fs
        self._path = path
        self.prefix = path if "://" in path else fs.unstrip_protocol(path)
        self.index_path = self.prefix + ".index"
        self._sizes: Dict[str, int] = {k: v for k, v in (sizes or {}).items() if v is not None}

    def index_buffer(self):
        try:
            return self.fs.cat_file(self._path + ".index")
        except FileNotFoundError:
            raise NotACheckpointError(f"No checkpoint index at {self.index_path}",
                                      path=self.index_path) from None

    def shard_path(self, shard_id: int, num_shards: int) -> str:
        return data_filename(self.prefix, shard_id, num_shards)

    def shard_size(self, shard_id: int, num_shards: int) -> int:
        suffix = data_filename("", shard_id, num_shards)
        size = self._sizes.get(suffix)
        if size is None:
            try:
                size = self.fs.size(self._path + suffix)
            except FileNotFoundError:
                size = None
            if size is None:
                path = self.shard_path(shard_id, num_shards)
                raise MissingShardError(
                    f"Data shard {shard_id} of {num_shards} is missing: {path} does not exist",
                    path=path, shard=shard_id)
            self._sizes[suffix] = size
        return size

    def read(self, shard_id: int, num_shards: int, offset: int, size: int):
        path = self.shard_path(shard_id, num_shards)
        _check_range(path, self.shard_size(shard_id, num_shards), offset, size)
        if size == 0:
            return b""
        data = self.fs.cat_file(self._path + data_filename("", shard_id, num_shards),
                                start=offset, end=offset + size)
        if len(data) != size:
            raise CorruptCheckpointError(
                f"{path}: asked the store for bytes [{offset}, {offset + size}) and got "
                f"{len(data)} bytes", path=path, offset=offset)
        return data

    def close(self) -> None:
        pass
