"""Where a checkpoint's bytes come from: the reader asks a storage for the index and for
byte ranges of data shards, so the same reader serves local files (memory-mapped, zero
copy), archive members and remote object stores.

A storage provides:

* ``prefix`` and ``index_path``: names used in messages;
* ``index_buffer()``: the whole .index file as a buffer;
* ``shard_size(shard_id, num_shards)``: the size of a data shard, raising MissingShardError;
* ``read(shard_id, num_shards, offset, size)``: exactly those bytes as a buffer, raising
  MissingShardError for a missing shard and CorruptCheckpointError for a range past its end.

and, where the storage has them (:func:`owned_bytes` and :func:`checksum` fall back on
``read`` for one that does not):

* ``pin(num_shards)``: records what every data shard is when the index is read, so that a
  reader reads the checkpoint it opened or says that a file changed;
* ``copy(shard_id, num_shards, offset, size)``: the bytes in memory the caller owns, read
  so that a file truncated meanwhile is an error, never a SIGBUS;
* ``checksum(shard_id, num_shards, offset, size)``: the CRC32C of those bytes, computed
  the same way without holding them all.

Views over a memory-mapped file (what ``read`` gives for local files and uncompressed tar
members) are what ``numpy.memmap`` gives: touching one after another process truncated
the file kills the process with SIGBUS. tfckpt itself only touches such pages through
``copy`` and ``checksum``; ``tfckpt.open(path, mmap=False)`` gives owned memory only.
"""

from __future__ import annotations

import errno
import os
import threading
import zlib
from typing import Any, Dict, Iterator, Optional, Tuple

from ._core import core
from .errors import (
    CheckpointError,
    CorruptCheckpointError,
    MissingShardError,
    NotACheckpointError,
    UnreadableShardError,
    UnsupportedCheckpointError,
)
from .files import (
    GIT_LFS_MAGIC,
    check_git_lfs_pointer,
    data_filename,
    identity_of,
    open_regular,
    read_regular,
)

__all__ = [
    "LocalStorage",
    "BytesStorage",
    "PartialBytes",
    "TarMemberStorage",
    "ZipMemberStorage",
    "FsspecStorage",
    "mapped_archive",
    "list_tar_members",
    "owned_bytes",
    "checksum",
    "check_range",
    "changed_error",
]

#: Bytes read at a time by a checksum pass (one buffer: memory stays flat).
_CHUNK = 128 << 10
#: Threads that checksum one large range of a local file (see core.crc32c_file).
_CRC_THREADS = max(1, min(os.cpu_count() or 1, 4))
#: Data shards whose identity a reader records when it opens (more are pinned when first
#: opened: a crafted header may claim billions of shards).
_PIN_AT_OPEN = 1024
#: Index files up to this size are read with one read of the size fstat gave (larger ones,
#: or one that changed meanwhile, in pieces by read_regular).
_READ_AT_ONCE_BELOW = 64 << 10
#: The index is read whole into memory; refuse one larger than this.
MAX_INDEX_BYTES = 1 << 40


def owned_bytes(storage: Any, shard_id: int, num_shards: int, offset: int, size: int) -> Any:
    """Bytes of a data shard in memory the caller owns (see the module docstring)."""
    copy = getattr(storage, "copy", None)
    if copy is not None:
        return copy(shard_id, num_shards, offset, size)
    return bytes(storage.read(shard_id, num_shards, offset, size))


def checksum(storage: Any, shard_id: int, num_shards: int, offset: int, size: int) -> int:
    """The CRC32C of bytes of a data shard, computed without touching a mapping."""
    method = getattr(storage, "checksum", None)
    if method is not None:
        return method(shard_id, num_shards, offset, size)
    return core.crc32c(storage.read(shard_id, num_shards, offset, size))


def changed_error(path: str, then: Any, now: Any) -> CorruptCheckpointError:
    """The error of a file that is not what it was when the checkpoint was opened."""
    if now is None:
        what = "it is gone or no longer a regular file"
    elif then is None:
        what = "it did not exist then"
    elif then[:2] != now[:2]:
        what = "another file has replaced it"
    elif now[2] < then[2]:
        what = f"it was truncated from {then[2]} to {now[2]} bytes"
    else:
        what = f"it was rewritten in place ({then[2]} bytes then, {now[2]} now)"
    return CorruptCheckpointError(
        f"{path}: the file changed since the checkpoint was opened ({what}); open the "
        "checkpoint again to read it as it is now",
        path=path,
    )


def _pread_chunks(fd: int, path: str, offset: int, size: int, buf: Any) -> Iterator[Any]:
    """Reads [offset, offset+size) of `fd` into `buf` (a memoryview), a buffer's length at a
    time, yielding the filled part; a short read means the file shrank meanwhile."""
    done = 0
    while done < size:
        want = min(size - done, len(buf))
        got = 0
        while got < want:
            n = os.preadv(fd, [buf[got:want]], offset + done + got)
            if n == 0:
                raise CorruptCheckpointError(
                    f"{path}: the file changed since the checkpoint was opened (it ends at "
                    f"{offset + done + got} bytes, before the {offset + size} the read "
                    "needs); open the checkpoint again to read it as it is now",
                    path=path,
                    offset=offset,
                )
            got += n
        yield buf[:want]
        done += want


class _PinnedFile:
    """A file read with pread, its identity checked against the one pinned at open on every
    read: what owned reads go through (no mapping, so no SIGBUS)."""

    def __init__(self, path: str, identity: Any, mapped: Any = None) -> None:
        self.path = path
        self.identity = identity
        self.mapped = mapped  # the mapping of the pinned file, if it was mapped

    def _open(self) -> Optional[int]:
        """A descriptor of the pinned file, or None when a mapping of it stands in for a
        file since removed or replaced by a rename (no one writes to that inode by name)."""
        try:
            fd, st = open_regular(self.path)
        except FileNotFoundError:
            fd, st = -1, None
        except (OSError, CheckpointError):
            raise changed_error(self.path, self.identity, None) from None
        now = identity_of(st) if st is not None else None
        if now == self.identity:
            return fd
        if fd >= 0:
            os.close(fd)
        if self.mapped is not None and (now is None or now[:2] != self.identity[:2]):
            return None
        raise changed_error(self.path, self.identity, now)

    def chunks(self, offset: int, size: int, chunk: int) -> Iterator[Any]:
        fd = self._open()
        if fd is None:
            view = memoryview(self.mapped)
            for start in range(offset, offset + size, chunk):
                yield bytes(view[start : min(offset + size, start + chunk)])
            return
        try:
            yield from _pread_chunks(
                fd, self.path, offset, size, memoryview(bytearray(min(max(size, 1), chunk)))
            )
        finally:
            os.close(fd)

    def copy(self, offset: int, size: int) -> bytearray:
        out = bytearray(size)
        if not size:
            return out
        fd = self._open()
        if fd is None:
            out[:] = memoryview(self.mapped)[offset : offset + size]
            return out
        try:
            for _ in _pread_chunks(fd, self.path, offset, size, memoryview(out)):
                pass
        finally:
            os.close(fd)
        return out

    def checksum(self, offset: int, size: int) -> int:
        fd = self._open()
        if fd is None:  # a mapping standing in for a file since removed: read it
            crc = 0
            for part in self.chunks(offset, size, _CHUNK):
                crc = core.crc32c(part, crc)
            return crc
        try:
            # Read with pread by the core, outside the GIL, large ranges on every core.
            crc, got = core.crc32c_file(fd, offset, size, _CRC_THREADS)
        finally:
            os.close(fd)
        if got < size:
            raise CorruptCheckpointError(
                f"{self.path}: the file changed since the checkpoint was opened (it ends at "
                f"{offset + got} bytes, before the {offset + size} the read needs); open the "
                "checkpoint again to read it as it is now",
                path=self.path,
                offset=offset,
            )
        return crc


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


def check_range(name: str, size_of_file: int, offset: int, size: int) -> None:
    """Raises CorruptCheckpointError unless [offset, offset+size) lies in the file."""
    if offset < 0 or size < 0 or offset + size > size_of_file:
        raise CorruptCheckpointError(
            f"{name}: bytes [{offset}, {offset + size}) lie past the end of the "
            f"{size_of_file}-byte data file (truncated shard?)",
            path=name,
            offset=offset,
        )


class IndexMissingError(NotACheckpointError):
    """No file at all at a prefix's .index (LocalStorage.index_buffer): tfckpt.open then
    looks for a checkpoint the path names another way (files.locate)."""


class LocalStorage:
    """Files on the local filesystem. The index is read into memory when the reader opens;
    data shards are memory-mapped (values are zero-copy views) or, with ``mmap=False``,
    read with pread into memory the caller owns. Each data shard is pinned (device, inode,
    size, mtime) when the index is read: a shard replaced, truncated or rewritten since is
    an error that says the file changed, never another checkpoint's bytes."""

    def __init__(self, prefix: str, *, mmap: bool = True) -> None:
        self.prefix = prefix
        self.index_path = prefix + ".index"
        self.mmap = mmap
        self._shards = _ShardCache()
        self._pins: Dict[int, Any] = {}

    def index_buffer(self):
        # Read, not mapped: the table's pages are touched throughout the reader's life, and
        # a mapped index truncated meanwhile would kill the process with SIGBUS.
        # The common case in one native call (open, fstat, read, close); anything else
        # (a large index, an error, a file changing size meanwhile) takes the general path,
        # which says what is wrong.
        small = core.read_small_file(self.index_path, _READ_AT_ONCE_BELOW)
        if small is not None:
            return small
        try:
            data, _ = read_regular(self.index_path, MAX_INDEX_BYTES, "checkpoint index")
        except FileNotFoundError:
            raise IndexMissingError(
                f"No checkpoint index at {self.index_path}", path=self.index_path
            ) from None
        except OSError as e:
            raise NotACheckpointError(
                f"Cannot open {self.index_path}: {e.strerror}", path=self.index_path
            ) from None
        return data

    def pin(self, num_shards: int) -> None:
        """Records each data shard's identity now, as the index was just read."""
        for shard_id in range(min(num_shards, _PIN_AT_OPEN)):
            # None when missing or not a regular file: opening it later says what is wrong.
            self._pins[shard_id] = core.file_identity(self.shard_path(shard_id, num_shards))

    def shard_path(self, shard_id: int, num_shards: int) -> str:
        return data_filename(self.prefix, shard_id, num_shards)

    def _open_shard(self, shard_id: int, num_shards: int) -> _PinnedFile:
        path = self.shard_path(shard_id, num_shards)
        try:
            fd, st = open_regular(path)
        except FileNotFoundError:
            raise MissingShardError(
                f"Data shard {shard_id} of {num_shards} is missing: {path} does not exist",
                path=path,
                shard=shard_id,
            ) from None
        except NotACheckpointError as e:
            if os.path.isdir(path):  # there, but no file: an I/O error (EISDIR), not damage
                reason = os.strerror(errno.EISDIR)
                raise UnreadableShardError(
                    f"Cannot open data shard {path}: {reason}",
                    path=path,
                    shard=shard_id,
                    reason=reason,
                ) from None
            raise MissingShardError(
                f"Data shard {shard_id} of {num_shards} cannot be read: {e}",
                path=path,
                shard=shard_id,
            ) from None
        except OSError as e:  # there, but not readable: an I/O error, not damage
            raise UnreadableShardError(
                f"Cannot open data shard {path}: {e.strerror}",
                path=path,
                shard=shard_id,
                reason=e.strerror,
            ) from None
        try:
            check_git_lfs_pointer(path, os.pread(fd, len(GIT_LFS_MAGIC), 0), shard_id)
            now = identity_of(st)
            pinned = self._pins.setdefault(shard_id, now)
            if pinned != now:
                raise changed_error(path, pinned, now)
            if not self.mmap:
                return _PinnedFile(path, now)
            try:
                mapped = core.MappedFile(path, track_size=True)
            except OSError as e:
                raise UnreadableShardError(
                    f"Cannot open data shard {path}: {e.strerror}",
                    path=path,
                    shard=shard_id,
                    reason=e.strerror,
                ) from None
            if tuple(mapped.identity) != now:  # replaced between the two opens
                raise changed_error(path, now, tuple(mapped.identity))
            return _PinnedFile(path, now, mapped)
        finally:
            os.close(fd)

    def _shard(self, shard_id: int, num_shards: int, offset: int, size: int) -> _PinnedFile:
        f = self._shards.get(shard_id, num_shards, self._open_shard)
        check_range(f.path, f.identity[2], offset, size)
        return f

    def shard_size(self, shard_id: int, num_shards: int) -> int:
        return self._shards.get(shard_id, num_shards, self._open_shard).identity[2]

    def read(self, shard_id: int, num_shards: int, offset: int, size: int):
        f = self._shard(shard_id, num_shards, offset, size)
        if f.mapped is None:
            return f.copy(offset, size)
        # The file now, not at mapping time: touching pages of a file truncated since would
        # kill the process with SIGBUS, and a file rewritten in place holds other bytes.
        try:
            st: Optional[os.stat_result] = os.stat(f.path)
        except OSError:
            st = None  # removed: the mapping holds the file we opened
        if (
            st is not None
            and (st.st_dev, st.st_ino) == f.identity[:2]
            and identity_of(st) != f.identity
        ):
            raise changed_error(f.path, f.identity, identity_of(st))
        return memoryview(f.mapped)[offset : offset + size]

    def copy(self, shard_id: int, num_shards: int, offset: int, size: int) -> bytearray:
        return self._shard(shard_id, num_shards, offset, size).copy(offset, size)

    def checksum(self, shard_id: int, num_shards: int, offset: int, size: int) -> int:
        return self._shard(shard_id, num_shards, offset, size).checksum(offset, size)

    def chunks(
        self, shard_id: int, num_shards: int, offset: int, size: int, chunk: int
    ) -> Iterator[Any]:
        """Bytes [offset, offset+size) of a shard in pieces of `chunk` bytes, read with pread
        into one buffer of the caller's own (each piece is valid until the next is asked
        for): one open and no new memory per piece."""
        return self._shard(shard_id, num_shards, offset, size).chunks(offset, size, chunk)

    def close(self) -> None:
        self._shards.clear()


class PartialBytes:
    """A file of which only some ranges are held (a checkpoint in a compressed archive that
    is listed, not verified: its data shards' sizes, and the bytes of the few values a
    listing reads): ``len()`` is the file's size; reading outside the ranges held is an
    error that says so."""

    def __init__(self, size: int, ranges: Dict[int, bytes]) -> None:
        self.size = size
        self.ranges = ranges

    def __len__(self) -> int:
        return self.size

    def view(self, path: str, offset: int, size: int) -> memoryview:
        for start, data in self.ranges.items():
            if start <= offset and offset + size <= start + len(data):
                return memoryview(data)[offset - start : offset - start + size]
        raise CheckpointError(
            f"{path}: bytes {offset}..{offset + size} were not read from the compressed "
            "archive (a listing reads only what it shows; --verify reads every byte)",
            path=path,
        )


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
            raise NotACheckpointError(
                f"No checkpoint index at {self.index_path}", path=self.index_path
            ) from None

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
                path=path,
                shard=shard_id,
            ) from None

    def shard_size(self, shard_id: int, num_shards: int) -> int:
        return len(self._data(shard_id, num_shards))

    def read(self, shard_id: int, num_shards: int, offset: int, size: int):
        data = self._data(shard_id, num_shards)
        path = self.shard_path(shard_id, num_shards)
        check_range(path, len(data), offset, size)
        if isinstance(data, PartialBytes):
            return data.view(path, offset, size)
        return memoryview(data)[offset : offset + size]

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


def list_tar_members(
    archive: Any,
) -> Optional[Tuple[Dict[str, Tuple[int, int]], Dict[str, str], Optional[str]]]:
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
                f"Data shard {shard_id} of {num_shards} is missing: {path} is not in the archive",
                path=path,
                shard=shard_id,
            )
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

    def __init__(
        self, archive: str, prefix: str, members: Dict[str, Tuple[int, int]], mapped=None
    ) -> None:
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
                f"the {m.size}-byte archive {self.archive} (truncated archive?)",
                path=name,
            )
        return memoryview(m)[offset : offset + size]

    def _owned(self, name: str, offset: int, size: int) -> Any:
        """`size` bytes at `offset` of the archive read with pread (a file truncated since it
        was mapped is an error, not a SIGBUS)."""
        self._view(name, offset, size)  # the range check
        identity = getattr(self._map(), "identity", None)
        if identity is None:  # a buffer given by the caller, not a mapping
            return bytes(self._view(name, offset, size))
        return _PinnedFile(self.archive, tuple(identity), self._map()).copy(offset, size)

    def index_buffer(self):
        member = self._members.get(".index")
        if member is None:
            raise NotACheckpointError(
                f"No checkpoint index at {self.index_path}", path=self.index_path
            )
        # A view, as the data (the table is parsed where it lies; see the module docstring)
        return self._view(self.index_path, *member)

    def shard_size(self, shard_id: int, num_shards: int) -> int:
        return self._member(shard_id, num_shards)[1][1]

    def _range(self, shard_id: int, num_shards: int, offset: int, size: int):
        _, (start, length) = self._member(shard_id, num_shards)
        path = self.shard_path(shard_id, num_shards)
        check_range(path, length, offset, size)
        return path, start, length

    def read(self, shard_id: int, num_shards: int, offset: int, size: int):
        path, start, length = self._range(shard_id, num_shards, offset, size)
        return self._view(path, start, length)[offset : offset + size]

    def copy(self, shard_id: int, num_shards: int, offset: int, size: int) -> Any:
        path, start, _ = self._range(shard_id, num_shards, offset, size)
        return self._owned(path, start + offset, size)

    def checksum(self, shard_id: int, num_shards: int, offset: int, size: int) -> int:
        path, start, _ = self._range(shard_id, num_shards, offset, size)
        identity = getattr(self._map(), "identity", None)
        if identity is None:
            return core.crc32c(self._view(path, start + offset, size))
        self._view(path, start + offset, size)  # the range check
        return _PinnedFile(self.archive, tuple(identity), self._map()).checksum(
            start + offset, size
        )


class ZipMemberStorage(_MemberStorage):
    """A checkpoint inside a zip archive. Stored (uncompressed) members are read in place
    from the memory-mapped archive; compressed ones are decompressed into memory once,
    never past their declared size, and refused when the declared size is absurd for the
    compressed size.

    `members` maps each suffix after the prefix to a :class:`zipfile.ZipInfo`.
    """

    def __init__(
        self, archive: str, prefix: str, members: Dict[str, Any], max_member_bytes: int = 1 << 32
    ) -> None:
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
                    f"archive {self.archive} (truncated archive?)",
                    path=name,
                )
            return memoryview(m)[start : start + info.file_size]
        if info.file_size > self._max:
            raise UnsupportedCheckpointError(
                f"{name}: the compressed member is {info.file_size} bytes, more than the "
                f"{self._max} bytes tfckpt decompresses into memory",
                path=name,
            )
        if info.file_size > _RATIO_FREE_BYTES and info.file_size > MAX_COMPRESSION_RATIO * max(
            info.compress_size, 1
        ):
            raise CorruptCheckpointError(
                f"{name}: the member claims {info.file_size} bytes from {info.compress_size} "
                "compressed bytes, an absurd ratio (a zip bomb?); refused",
                path=name,
            )
        if info.compress_type == zipfile.ZIP_DEFLATED:
            m = mapped_archive(self.archive)
            start = _zip_data_offset(m, info, name)
            raw = memoryview(m)[start : start + info.compress_size]
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
                    raise CorruptCheckpointError(
                        f"{name}: cannot decompress: {e}", path=name
                    ) from None
        if len(data) != info.file_size:
            raise CorruptCheckpointError(
                f"{name}: decompressed to {len(data)} bytes, but the archive declares "
                f"{info.file_size}",
                path=name,
            )
        if zlib.crc32(data) != info.CRC:
            raise CorruptCheckpointError(
                f"{name}: the zip member's CRC-32 does not match", path=name
            )
        return data

    def index_buffer(self):
        info = self._members.get(".index")
        if info is None:
            raise NotACheckpointError(
                f"No checkpoint index at {self.index_path}", path=self.index_path
            )
        return self._contents(self.index_path, info)

    def shard_size(self, shard_id: int, num_shards: int) -> int:
        return self._member(shard_id, num_shards)[1].file_size

    def read(self, shard_id: int, num_shards: int, offset: int, size: int):
        _, info = self._member(shard_id, num_shards)
        path = self.shard_path(shard_id, num_shards)
        check_range(path, info.file_size, offset, size)
        return memoryview(self._contents(path, info))[offset : offset + size]

    def close(self) -> None:
        self._cache = {}


def _zip_data_offset(m, info, name: str) -> int:
    """Where a member's data starts: after its local header, whose name and extra field
    lengths may differ from the central directory's."""
    import struct

    h = info.header_offset
    if h + 30 > m.size:
        raise CorruptCheckpointError(
            f"{name}: the local header lies past the archive's end", path=name
        )
    head = bytes(memoryview(m)[h : h + 30])
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

    def __init__(
        self,
        url: str,
        fs=None,
        *,
        storage_options: Optional[dict] = None,
        sizes: Optional[Dict[str, int]] = None,
    ) -> None:
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
            raise IndexMissingError(
                f"No checkpoint index at {self.index_path}", path=self.index_path
            ) from None

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
                    path=path,
                    shard=shard_id,
                )
            self._sizes[suffix] = size
        return size

    def read(self, shard_id: int, num_shards: int, offset: int, size: int):
        path = self.shard_path(shard_id, num_shards)
        check_range(path, self.shard_size(shard_id, num_shards), offset, size)
        if size == 0:
            return b""
        data = self.fs.cat_file(
            self._path + data_filename("", shard_id, num_shards), start=offset, end=offset + size
        )
        if len(data) != size:
            raise CorruptCheckpointError(
                f"{path}: asked the store for bytes [{offset}, {offset + size}) and got "
                f"{len(data)} bytes",
                path=path,
                offset=offset,
            )
        return data

    def close(self) -> None:
        pass
