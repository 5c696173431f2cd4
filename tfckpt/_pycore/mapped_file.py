"""Read-only mappings that know their file's identity and size (csrc/mapped_file.{h,cc}),
and the small-file read path: what the reader opens index and data files with."""

from __future__ import annotations

import errno
import mmap
import os
import stat
import sys

from .bindings import _path_text

#: Before Python 3.13 an mmap object keeps a duplicate of its file's descriptor open for as
#: long as it lives; the native core keeps none, so that a process can hold thousands of
#: readers. Files smaller than this are therefore read into memory there instead of mapped.
_READ_BELOW = 64 << 20
_MAP_KEEPS_NO_DESCRIPTOR = sys.version_info >= (3, 13)


class MappedFile(mmap.mmap):
    """A file mapped read-only; supports the buffer protocol and outlives its views.

    An empty file cannot be mapped, and before Python 3.13 a mapping holds a file descriptor:
    for an empty file, and there for a file under 64 MiB, MappedFile gives a
    :class:`_FileBytes` instead, the file's bytes read into memory with the same attributes.
    """

    def __new__(cls, path, track_size: bool = False):
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
            if not stat.S_ISREG(st.st_mode):  # a FIFO, socket or device never ends
                raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), path)
            if st.st_size == 0 or (st.st_size < _READ_BELOW and not _MAP_KEEPS_NO_DESCRIPTOR):
                return _FileBytes(_read_all(fd, st.st_size), path, track_size, st)
            if _MAP_KEEPS_NO_DESCRIPTOR:
                self = super().__new__(cls, fd, st.st_size, access=mmap.ACCESS_READ, trackfd=False)
            else:
                self = super().__new__(cls, fd, st.st_size, access=mmap.ACCESS_READ)
        finally:
            os.close(fd)
        self._init(path, track_size, st)
        return self

    def __init__(self, path, track_size: bool = False) -> None:
        pass  # all done in __new__ (mmap.mmap takes no __init__ arguments)

    def _init(self, path, track_size, st) -> None:
        self._path = _path_text(path)
        self._size = st.st_size
        self._track = bool(track_size)
        self._id = (st.st_dev, st.st_ino)
        self._identity = _identity(st)

    @property
    def size(self) -> int:
        return self._size

    @property
    def path(self) -> str:
        return self._path

    @property
    def identity(self):
        """(device, inode, size, mtime in ns) of the file when it was opened."""
        return self._identity

    def current_size(self) -> int:
        """The file's size now (with track_size), so a shrunken file is noticed."""
        return _current_size(self)

    def will_need(self, offset: int, length: int) -> None:
        """Hints the kernel to read a range ahead."""
        if offset < 0 or length < 0:
            raise TypeError("offset and length must be non-negative")
        if offset >= self._size or not hasattr(self, "madvise"):
            return
        page = mmap.PAGESIZE
        start = offset // page * page
        stop = min(self._size, offset + min(length, self._size - offset))
        try:
            self.madvise(mmap.MADV_WILLNEED, start, stop - start)
        except (OSError, ValueError, AttributeError):
            pass  # only a hint


def _read_all(fd: int, size: int) -> bytes:
    chunks = []
    while size > 0:
        chunk = os.read(fd, min(size, 1 << 24))
        if not chunk:
            break  # the file shrank since it was measured
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


class _FileBytes(bytes):
    """What MappedFile gives for a file it reads instead of mapping: its bytes, with the
    attributes of a mapping."""

    def __new__(cls, data: bytes, path, track_size, st):
        self = super().__new__(cls, data)
        MappedFile._init(self, path, track_size, st)  # type: ignore[arg-type]
        self._size = len(data)
        return self

    size = MappedFile.size
    path = MappedFile.path
    current_size = MappedFile.current_size
    identity = MappedFile.identity

    def will_need(self, offset: int, length: int) -> None:
        if offset < 0 or length < 0:
            raise TypeError("offset and length must be non-negative")


def _current_size(f) -> int:
    if not f._track:
        return f._size
    try:
        st = os.stat(f._path)
    except OSError:
        return 0
    if (st.st_dev, st.st_ino) != f._id:
        return f._size  # a different file now at the path: our mapping of the old one holds
    return min(f._size, st.st_size)


def read_small_file(path, limit: int):
    """The bytes of regular file `path` if it holds at most `limit` bytes and reads whole
    (its size unchanged while read); None otherwise, errors included: the caller's
    general path then says what is wrong."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except (OSError, ValueError, TypeError):
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            return None
        data = _read_all(fd, st.st_size + 1)  # one byte more, to see a file that grew
        return data if len(data) == st.st_size else None
    except OSError:
        return None
    finally:
        os.close(fd)


def file_identity(path):
    """(device, inode, size, mtime in ns) of the regular file at `path`, as
    MappedFile.identity; None when it cannot be stat'ed or is not a regular file."""
    try:
        st = os.stat(path)
    except (OSError, ValueError, TypeError):
        return None
    return _identity(st) if stat.S_ISREG(st.st_mode) else None


def _identity(st: os.stat_result):
    """What MappedFile.identity and file_identity give: device, inode, size, mtime (ns)."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
