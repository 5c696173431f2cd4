"""Checkpoints in buckets and on web servers: fsspec URLs (``s3://``, ``gs://``,
``http(s)://``, ``memory://`` ...) for reading and writing.

Reading: :func:`open_storage` finds the checkpoint a URL names (a prefix, its ``.index``, or a
directory with a ``checkpoint`` state file) and returns a storage that fetches the index once
and then only the byte ranges a question needs, retrying what a server fails transiently and
naming the URL in the error when it keeps failing.

Writing: :func:`upload` copies a checkpoint written locally to a URL, data files first and the
index last, each as one complete object: the index is the commit point, so readers never see a
partial checkpoint.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any, Callable, Optional, TypeVar

from .errors import CheckpointError, NotACheckpointError
from .files import INDEX_SUFFIX, STATE_FILE, data_filename, parse_checkpoint_state
from .storage import FsspecStorage

__all__ = ["is_url", "open_storage", "RemoteStorage", "upload", "exists", "ATTEMPTS"]

_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_FILE_URL = "file://"
#: Attempts per request before a server fault is reported (waits 0.2 s, 0.4 s ... between).
ATTEMPTS = 4
_T = TypeVar("_T")


def is_url(path: "str | os.PathLike[str]") -> bool:
    """Whether `path` is read through fsspec (a URL other than ``file://``)."""
    text = os.fspath(path)
    return (
        isinstance(text, str)
        and "://" in text  # most paths are not URLs: no regular expression for them
        and bool(_URL_RE.match(text))
        and not text.startswith(_FILE_URL)
    )


def _transient(e: BaseException) -> bool:
    """A fault worth retrying: a server error (5xx), a dropped connection, a timeout; not a
    missing file or a refusal (4xx). fsspec's HTTP filesystem reports a failed HEAD/GET as
    FileNotFoundError caused by the server's answer, so the cause decides there."""
    if isinstance(e, FileNotFoundError) and e.__cause__ is not None:
        return _transient(e.__cause__)
    if isinstance(e, (FileNotFoundError, PermissionError, IsADirectoryError)):
        return False
    status = getattr(e, "status", None) or getattr(e, "code", None)
    if isinstance(status, int):
        return status >= 500 or status in (408, 429)
    return isinstance(e, (OSError, TimeoutError, ConnectionError)) or type(e).__module__.split(".")[
        0
    ] in ("aiohttp", "botocore", "aiobotocore", "requests")


def with_retries(what: str, url: str, fn: Callable[[], _T]) -> _T:
    """`fn()`, retried on transient faults; a CheckpointError naming `url` when they persist."""
    for attempt in range(ATTEMPTS):
        try:
            return fn()
        except Exception as e:  # noqa: BLE001 - classified below
            if not _transient(e):
                raise
            if attempt == ATTEMPTS - 1:
                raise CheckpointError(
                    f"{url}: the server failed to {what} {ATTEMPTS} times; last: "
                    f"{type(e).__name__}: {e}",
                    path=url,
                ) from None
            time.sleep(0.2 * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover


class RemoteStorage(FsspecStorage):
    """FsspecStorage whose every request is retried on transient server faults."""

    def index_buffer(self) -> Any:
        return with_retries("send the index", self.index_path, super().index_buffer)

    def shard_size(self, shard_id: int, num_shards: int) -> int:
        suffix = data_filename("", shard_id, num_shards)
        if suffix not in self._sizes:
            try:
                size = with_retries(
                    "give a data file's size",
                    self.shard_path(shard_id, num_shards),
                    lambda: self.fs.size(self._path + suffix),
                )
            except FileNotFoundError:
                size = None  # the storage says which shard is missing
            if size is not None:
                self._sizes[suffix] = size
        return super().shard_size(shard_id, num_shards)

    def read(self, shard_id: int, num_shards: int, offset: int, size: int) -> Any:
        return with_retries(
            f"send bytes [{offset}, {offset + size})",
            self.shard_path(shard_id, num_shards),
            lambda: super(RemoteStorage, self).read(shard_id, num_shards, offset, size),
        )


def _filesystem(url: str, storage_options: Optional[dict]) -> Any:
    import fsspec

    return fsspec.core.url_to_fs(url, **(storage_options or {}))


def _cat(fs: Any, path: str, url: str) -> Optional[bytes]:
    try:
        return with_retries("send a file", url, lambda: fs.cat_file(path))
    except (FileNotFoundError, IsADirectoryError):
        return None


def open_storage(url: str, storage_options: Optional[dict] = None) -> RemoteStorage:
    """The storage of the checkpoint `url` names: a prefix, its ``.index``, or a directory
    (trailing ``/`` optional) whose ``checkpoint`` state file names the latest one."""
    fs, path = _filesystem(url, storage_options)
    path = path.rstrip("/") if path.endswith("/") else path
    if path.endswith(INDEX_SUFFIX):
        path = path[: -len(INDEX_SUFFIX)]
    elif not _exists(fs, path + INDEX_SUFFIX, url):
        state = _cat(fs, f"{path}/{STATE_FILE}", url)
        if state is None:
            raise NotACheckpointError(
                f"No checkpoint at {url}: neither {url}{INDEX_SUFFIX} nor a '{STATE_FILE}' "
                f"state file in {url.rstrip('/')}/ exists",
                path=url,
            )
        where = f"{url.rstrip('/')}/{STATE_FILE}"
        recorded = parse_checkpoint_state(state, where).model_checkpoint_path
        if not recorded:
            raise NotACheckpointError(f"{where} names no checkpoint", path=where)
        path = recorded if "://" in recorded or recorded.startswith("/") else f"{path}/{recorded}"
    return RemoteStorage(path, fs)


def _exists(fs: Any, path: str, url: str) -> bool:
    return bool(with_retries("say whether a file exists", url, lambda: fs.exists(path)))


def exists(url: str, storage_options: Optional[dict] = None) -> bool:
    """Whether the file `url` exists."""
    fs, path = _filesystem(url, storage_options)
    return _exists(fs, path, url)


def upload(
    local_prefix: str, num_shards: int, url: str, storage_options: Optional[dict] = None
) -> str:
    """Copies the checkpoint at `local_prefix` to the prefix `url`: every data file, each as
    one complete object, then the index, which makes it visible. Returns `url`."""
    fs, path = _filesystem(url, storage_options)
    parent = path.rsplit("/", 1)[0] if "/" in path else ""
    if parent:
        try:
            fs.makedirs(parent, exist_ok=True)
        except Exception:  # noqa: BLE001 - object stores have no directories
            pass
    names = [data_filename("", i, num_shards) for i in range(num_shards)] + [INDEX_SUFFIX]
    for suffix in names:
        _put(fs, local_prefix + suffix, path + suffix, url + suffix)
    return url


def _put(fs: Any, local: str, remote_path: str, url: str) -> None:
    """Stores one complete file (one object: never visible half-written)."""
    with_retries("store a file", url, lambda: fs.put_file(local, remote_path))
