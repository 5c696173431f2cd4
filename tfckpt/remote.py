"""Checkpoints in buckets and on web servers: fsspec URLs (``s3://``, ``gs://``,
``http(s)://``, ``memory://`` ...) for reading and writing.

Reading: :func:`open_storage` finds the checkpoint a URL names (a prefix, its ``.index``, or a
directory with a ``checkpoint`` state file) and returns a storage that fetches the index once
and then only the byte ranges a question needs, retrying what a server fails transiently and
naming the URL in the error when it keeps failing.

Every request is bounded (:class:`RemoteLimits`): a server that trickles bytes, answers 500
for ever or offers an index of a terabyte gets an :class:`~tfckpt.UnreadableError` naming
the URL and the bound, in bounded time and memory:

* each request (a HEAD, a listing, a byte range of at most 16 MiB) must finish within
  ``timeout`` seconds, and is tried at most ``attempts`` times, with waits of 0.2 s, 0.4 s
  ... between, on a server fault (5xx, 408, 429, a dropped connection, a timeout);
* one fetch with all its attempts and pieces (the index, one read), or, in a scan, one
  checkpoint, must finish within ``deadline`` seconds;
* an index is fetched only after its size is known and at most ``max_index_bytes``, into
  one buffer, piece by piece (never whole and then copied);
* a scan's walk of a tree stops at ``max_depth`` levels and ``max_entries`` entries, and
  never lists a directory URL twice (see :mod:`tfckpt.scanning`).

Writing: :func:`upload` copies a checkpoint written locally to a URL, data files first and the
index last, each as one complete object: the index is the commit point, so readers never see a
partial checkpoint.
"""

from __future__ import annotations

import posixpath
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple, TypeVar
from urllib.parse import urlsplit

from .errors import (
    CheckpointError,
    CorruptCheckpointError,
    MissingShardError,
    NotACheckpointError,
    UnreadableError,
    UnreadableShardError,
)
from .files import (
    INDEX_SUFFIX,
    MAX_STATE_BYTES,
    STATE_FILE,
    TABLE_MAGIC,
    check_git_lfs_pointer,
    data_filename,
    is_url,
    parse_checkpoint_state,
)
from .storage import check_range

__all__ = [
    "is_url",
    "open_storage",
    "RemoteStorage",
    "RemoteLimits",
    "upload",
    "exists",
    "path_exists",
    "fetch",
    "fetch_files",
    "fetch_footer",
    "read_small",
    "v1_files",
    "V1_SET_URL",
    "file_size",
    "list_directory",
    "ATTEMPTS",
]

#: Attempts per request before a server fault is reported (waits 0.2 s, 0.4 s ... between).
ATTEMPTS = 4
#: Bytes asked for in one request: a large read is made of such pieces, each bounded by the
#: per-request timeout, so that a slow but steady transfer of a big tensor is not cut off.
PIECE_BYTES = 16 << 20
_T = TypeVar("_T")


@dataclass(frozen=True)
class RemoteLimits:
    """The bounds of every remote read (see the module docstring); pass as ``limits=`` to
    :func:`tfckpt.open`, :class:`tfckpt.Reader` and :func:`tfckpt.scan`, or as the command's
    ``--timeout``, ``--deadline``, ``--max-index-size`` (scan: ``--max-depth``,
    ``--max-entries``)::

        tfckpt.open("https://host/run/ckpt-3", limits=RemoteLimits(timeout=10))
    """

    #: Seconds one request may take, whole answer included (each attempt).
    timeout: float = 60.0
    #: Seconds one fetch may take with all its attempts and pieces; in a scan, one checkpoint.
    deadline: float = 900.0
    #: Tries of a request that meets a server fault.
    attempts: int = ATTEMPTS
    #: Largest index (or format V1 file, which holds its values) fetched into memory.
    max_index_bytes: int = 1 << 30
    #: Directory levels a scan walks below a URL it was given.
    max_depth: int = 64
    #: Directory entries a scan lists under one URL it was given.
    max_entries: int = 1_000_000

    def __post_init__(self) -> None:
        for name in ("timeout", "deadline"):
            if not getattr(self, name) > 0:
                raise ValueError(f"RemoteLimits.{name} must be positive seconds")
        for name in ("attempts", "max_index_bytes", "max_depth", "max_entries"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < (0 if name == "max_depth" else 1):
                raise ValueError(f"RemoteLimits.{name} must be a positive integer")


DEFAULT_LIMITS = RemoteLimits()


# -- one request, bounded -------------------------------------------------------------------


def _status(e: BaseException) -> Optional[int]:
    """The HTTP status of a failed request: aiohttp's (``status``), urllib's (``code``),
    botocore's (``response["ResponseMetadata"]["HTTPStatusCode"]``)."""
    status = getattr(e, "status", None) or getattr(e, "code", None)
    response = getattr(e, "response", None)
    if not isinstance(status, int) and isinstance(response, dict):
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status if isinstance(status, int) else None


def _transient(e: BaseException) -> bool:
    """A fault worth retrying: a server error (5xx), a dropped connection, a timeout; not a
    missing file or a refusal (4xx). fsspec's HTTP filesystem reports a failed HEAD/GET as
    FileNotFoundError caused by the server's answer, so the cause decides there."""
    if isinstance(e, FileNotFoundError) and e.__cause__ is not None:
        return _transient(e.__cause__)
    if isinstance(e, (FileNotFoundError, PermissionError, IsADirectoryError, ValueError)):
        return False  # (ValueError: a malformed URL, aiohttp's InvalidURL)
    status = _status(e)
    if status is not None:
        return status >= 500 or status in (408, 429)
    return isinstance(e, (OSError, TimeoutError, ConnectionError)) or type(e).__module__.split(".")[
        0
    ] in ("aiohttp", "botocore", "aiobotocore", "requests")


def _missing(e: BaseException) -> bool:
    """Whether `e` says the file is not there (404, NoSuchKey), as opposed to a fault."""
    if isinstance(e, FileNotFoundError):
        cause = e.__cause__
        return cause is None or _status(cause) in (None, 404, 410)
    return _status(e) in (404, 410)


def _refused(e: BaseException) -> UnreadableError:
    """A request the server refused for good (403, 401 ...): an UnreadableError naming the
    file, never a bare FileNotFoundError."""
    where = str(e.args[0]) if e.args else ""
    cause = e.__cause__ or e
    status = _status(cause)
    what = f"HTTP {status}" if status is not None else f"{type(cause).__name__}: {cause}"
    return UnreadableError(f"{where}: the server refused the request ({what})", path=where)


def _fault_text(e: BaseException, timeout: float, limits: RemoteLimits) -> str:
    """What went wrong with one attempt, in words."""
    if isinstance(e, FileNotFoundError) and e.__cause__ is not None:
        e = e.__cause__
    if isinstance(e, TimeoutError):
        if timeout < limits.timeout:
            return f"no complete answer within the {timeout:.3g} s left before the deadline"
        return f"no complete answer within the {timeout:g} s one request may take (--timeout)"
    status = _status(e)
    if status is not None:
        reason = getattr(e, "message", "") or ""
        return f"HTTP {status}" + (f" {reason}" if reason else "")
    return f"{type(e).__name__}: {e}"


def _call(fs: Any, method: str, timeout: float, *args: Any, **kwargs: Any) -> Any:
    """``fs.<method>(*args, **kwargs)``, cut off after `timeout` seconds where the
    filesystem is asynchronous (http, s3, gcs ...: the request is cancelled, its connection
    closed). Synchronous filesystems (memory, local) do not wait on a network."""
    coroutine = getattr(fs, "_" + method, None)
    loop = getattr(fs, "loop", None) if getattr(fs, "async_impl", False) else None
    if coroutine is None or loop is None:
        return getattr(fs, method)(*args, **kwargs)
    from fsspec.asyn import sync

    try:
        return sync(loop, coroutine, *args, timeout=timeout, **kwargs)
    except Exception as e:
        # The coroutines skip the translation the synchronous methods make of a store's
        # "no such key" (s3fs): make it the FileNotFoundError it is.
        if not isinstance(e, FileNotFoundError) and _status(e) in (404, 410):
            raise FileNotFoundError(args[0] if args else "") from e
        raise


class _Budget:
    """The time one fetch (or, in a scan, one checkpoint) may still take."""

    def __init__(self, limits: RemoteLimits, until: Optional[float] = None) -> None:
        self.limits = limits
        self.start = time.monotonic()
        self.until = until if until is not None else self.start + limits.deadline

    def left(self) -> float:
        return self.until - time.monotonic()


def with_retries(
    what: str,
    url: str,
    fn: Callable[[float], _T],
    limits: RemoteLimits = DEFAULT_LIMITS,
    budget: Optional[_Budget] = None,
    error: Callable[..., CheckpointError] = UnreadableError,
) -> _T:
    """``fn(timeout)``, retried on transient faults within the limits; an `error` (an
    UnreadableError) naming `url` and the bound when they persist or time runs out."""
    budget = budget or _Budget(limits)
    last = ""
    for attempt in range(limits.attempts):
        left = budget.left()
        if left <= 0:
            break
        timeout = min(limits.timeout, left)
        try:
            return fn(timeout)
        except Exception as e:  # noqa: BLE001 - classified below
            if not _transient(e):
                raise
            last = _fault_text(e, timeout, limits)
        if attempt == limits.attempts - 1:
            raise error(
                f"{url}: the server failed to {what} {limits.attempts} times; last: {last}",
                path=url,
                reason=last,
            ) from None
        time.sleep(max(0.0, min(0.2 * 2**attempt, budget.left())))
    spent = time.monotonic() - budget.start
    raise error(
        f"{url}: gave up trying to {what} after {spent:.1f} s, the {limits.deadline:g} s "
        "deadline (--deadline)" + (f"; last: {last}" if last else ""),
        path=url,
        reason="deadline",
    )


def _filesystem(url: str, storage_options: Optional[dict]) -> Any:
    import fsspec

    return fsspec.core.url_to_fs(url, **(storage_options or {}))


def file_size(
    fs: Any, path: str, url: str, limits: RemoteLimits, budget: Optional[_Budget] = None
) -> Optional[int]:
    """The size of a file (None when the server does not say); FileNotFoundError when it
    is not there."""
    info = with_retries(
        "give a file's size", url, lambda t: _call(fs, "info", t, path), limits, budget
    )
    size = info.get("size") if isinstance(info, dict) else None
    return int(size) if size is not None else None


def _piece(fs: Any, path: str, url: str, start: int, end: int, budget: _Budget) -> bytes:
    return with_retries(
        f"send bytes [{start}, {end})",
        url,
        lambda t: _call(fs, "cat_file", t, path, start=start, end=end),
        budget.limits,
        budget,
    )


def fetch(
    fs: Any,
    path: str,
    url: str,
    size: Optional[int],
    limit: int,
    what: str,
    limits: RemoteLimits = DEFAULT_LIMITS,
    budget: Optional[_Budget] = None,
) -> bytearray:
    """A whole file of known `size` (or of unknown size, when None) into one buffer, piece
    by piece; refused before any byte moves when it is larger than `limit` (``what`` says
    which limit: ``"the index"``)."""
    budget = budget or _Budget(limits)
    if size is not None and size > limit:
        raise UnreadableError(
            f"{url}: {what} is {size} bytes, more than the {limit} bytes tfckpt fetches into "
            "memory (--max-index-size); refused without fetching it",
            path=url,
            reason="too large",
        )
    if size is None:  # one request for at most one byte more than the limit allows
        data = _piece(fs, path, url, 0, limit + 1, budget)
        if len(data) > limit:
            raise UnreadableError(
                f"{url}: {what} is more than the {limit} bytes tfckpt fetches into memory "
                "(--max-index-size); refused",
                path=url,
                reason="too large",
            )
        return bytearray(data)
    out = bytearray(size)
    for start in range(0, size, PIECE_BYTES):
        end = min(size, start + PIECE_BYTES)
        data = _piece(fs, path, url, start, end, budget)
        if len(data) != end - start:
            raise CorruptCheckpointError(
                f"{url}: asked the server for bytes [{start}, {end}) of a {size}-byte file "
                f"and got {len(data)} bytes (the file changed, or the server ignores ranges)",
                path=url,
                offset=start,
            )
        out[start:end] = data
    return out


#: A table file (an index, a format V1 file) ends with a 48-byte footer.
_TABLE_FOOTER_BYTES = 48


def fetch_footer(
    fs: Any, path: str, url: str, size: Optional[int], n: int, limits: RemoteLimits = DEFAULT_LIMITS
) -> bytes:
    """The last `n` bytes of a file that is large enough to be a table file (b"" for a
    smaller one): one range request, a HEAD first when `size` is not known."""
    budget = _Budget(limits)
    if size is None:
        size = file_size(fs, path, url, limits, budget)
    if size is None or size < _TABLE_FOOTER_BYTES:
        return b""
    return bytes(_piece(fs, path, url, size - n, size, budget))


def list_directory(
    fs: Any, path: str, url: str, limits: RemoteLimits = DEFAULT_LIMITS
) -> List[Dict[str, Any]]:
    """``fs.ls(path, detail=True)``, bounded like every request."""
    return with_retries(
        "list a directory", url, lambda t: _call(fs, "ls", t, path, detail=True), limits
    )


def path_exists(fs: Any, path: str, url: str, limits: RemoteLimits = DEFAULT_LIMITS) -> bool:
    """Whether file `path` exists in `fs` (`url` names it in messages), bounded by `limits`:
    asked with the request that gives its size (a HEAD over HTTP), which moves no bytes."""
    try:
        file_size(fs, path, url, limits)
    except FileNotFoundError as e:
        if not _missing(e):
            raise _refused(e) from None
        return False
    return True


def exists(
    url: str, storage_options: Optional[dict] = None, limits: RemoteLimits = DEFAULT_LIMITS
) -> bool:
    """Whether the file `url` exists."""
    fs, path = _filesystem(url, storage_options)
    return path_exists(fs, path, url, limits)


# -- a checkpoint at a URL ----------------------------------------------------------------


class RemoteStorage:
    """A checkpoint on an fsspec filesystem (see :mod:`tfckpt.storage` for what a storage
    provides), every request bounded by `limits`. The index is fetched once; data only by
    the byte ranges a question needs, so listing a checkpoint costs about its index.

    `path` is the prefix in `fs`; `url` the prefix as messages name it. `sizes` may give
    known file sizes by suffix (``".data-00000-of-00001"``), from a directory listing, to
    save one request per shard. With `shared_deadline` (a scan), every request of this
    storage shares one deadline from its creation; otherwise each fetch has its own.
    """

    def __init__(
        self,
        path: str,
        fs: Any,
        *,
        url: Optional[str] = None,
        limits: RemoteLimits = DEFAULT_LIMITS,
        sizes: Optional[Dict[str, int]] = None,
        shared_deadline: bool = False,
    ) -> None:
        self.fs = fs
        self.limits = limits
        self._path = path
        self.prefix = url or (path if "://" in path else fs.unstrip_protocol(path))
        self.index_path = self.prefix + INDEX_SUFFIX
        self._sizes: Dict[str, int] = {k: v for k, v in (sizes or {}).items() if v is not None}
        self._budget = _Budget(limits) if shared_deadline else None

    def _time(self) -> _Budget:
        return self._budget or _Budget(self.limits)

    def index_buffer(self) -> Any:
        budget = self._time()
        url, path = self.index_path, self._path + INDEX_SUFFIX
        try:
            size = self._sizes.get(INDEX_SUFFIX)
            if size is None:
                size = file_size(self.fs, path, url, self.limits, budget)
            return fetch(
                self.fs, path, url, size, self.limits.max_index_bytes, "the index",
                self.limits, budget,
            )  # fmt: skip
        except FileNotFoundError as e:
            if not _missing(e):
                raise _refused(e) from None
            raise NotACheckpointError(f"No checkpoint index at {url}", path=url) from None

    def shard_path(self, shard_id: int, num_shards: int) -> str:
        return data_filename(self.prefix, shard_id, num_shards)

    def _missing_shard(self, shard_id: int, num_shards: int) -> MissingShardError:
        url = self.shard_path(shard_id, num_shards)
        return MissingShardError(
            f"Data shard {shard_id} of {num_shards} is missing: {url} does not exist "
            "(the server answered 'not found')",
            path=url,
            shard=shard_id,
        )

    def _shard_error(self, shard_id: int, num_shards: int) -> Callable[..., CheckpointError]:
        def make(message: str, **kw: Any) -> CheckpointError:
            return UnreadableShardError(message, shard=shard_id, **kw)

        return make

    def shard_size(self, shard_id: int, num_shards: int) -> int:
        suffix = data_filename("", shard_id, num_shards)
        size = self._sizes.get(suffix)
        if size is None:
            url = self.shard_path(shard_id, num_shards)
            try:
                size = with_retries(
                    "give a data file's size",
                    url,
                    lambda t: _call(self.fs, "size", t, self._path + suffix),
                    self.limits,
                    self._time(),
                    self._shard_error(shard_id, num_shards),
                )
            except FileNotFoundError as e:
                if not _missing(e):
                    raise _refused(e) from None
                raise self._missing_shard(shard_id, num_shards) from None
            if size is None:
                raise UnreadableShardError(
                    f"{url}: the server does not say how large the data file is",
                    path=url,
                    shard=shard_id,
                )
            self._sizes[suffix] = size
        return size

    def read(self, shard_id: int, num_shards: int, offset: int, size: int) -> Any:
        url = self.shard_path(shard_id, num_shards)
        check_range(url, self.shard_size(shard_id, num_shards), offset, size)
        if size == 0:
            return b""
        budget = self._time()
        path = self._path + data_filename("", shard_id, num_shards)
        error = self._shard_error(shard_id, num_shards)
        out: Optional[bytearray] = None if size <= PIECE_BYTES else bytearray(size)
        for start in range(offset, offset + size, PIECE_BYTES):
            end = min(offset + size, start + PIECE_BYTES)
            try:
                data = with_retries(
                    f"send bytes [{start}, {end})",
                    url,
                    lambda t: _call(self.fs, "cat_file", t, path, start=start, end=end),  # noqa: B023
                    self.limits,
                    budget,
                    error,
                )
            except FileNotFoundError as e:
                if not _missing(e):
                    raise _refused(e) from None
                raise self._missing_shard(shard_id, num_shards) from None
            if len(data) != end - start:
                raise CorruptCheckpointError(
                    f"{url}: asked the store for bytes [{start}, {end}) and got {len(data)} bytes",
                    path=url,
                    offset=start,
                )
            if out is None:
                return data
            out[start - offset : end - offset] = data
        return out

    def close(self) -> None:
        pass


def _beside(recorded: str) -> str:
    """The last component of a path a state file records ('/' or '\\' separated)."""
    return re.split(r"[/\\]", recorded.rstrip("/\\"))[-1]


def _join(directory: str, relative: str) -> str:
    """`relative` inside `directory` (a path in a filesystem, or a URL), dot segments
    resolved in the path only."""
    scheme, sep, rest = directory.partition("://")
    if not sep:
        return posixpath.normpath(f"{directory}/{relative}")
    host, _, path = rest.partition("/")
    return f"{scheme}://{host}/" + posixpath.normpath(f"/{path}/{relative}").lstrip("/")


def _resolve_state(fs: Any, directory: str, url: str, recorded: str, limits: RemoteLimits) -> str:
    """The prefix (a path in `fs`) a state file in `directory` (at URL `url`) means by
    `recorded`: relative to the directory, as TensorFlow resolves it; an absolute path or a
    URL of the same store as recorded, else its last component beside the state file. A
    URL to another host or store is never followed."""
    where = f"{url.rstrip('/')}/{STATE_FILE}"
    candidates: List[str] = []
    last = _beside(recorded)
    if "://" in recorded:
        own, theirs = urlsplit(url), urlsplit(recorded)
        if (own.scheme, own.netloc) == (theirs.scheme, theirs.netloc):
            candidates.append(fs._strip_protocol(recorded))  # noqa: SLF001 - fsspec's API
    elif not recorded.startswith("/") and "\\" not in recorded:
        candidates.append(_join(directory, recorded))
    if last and last not in (".", ".."):
        beside = f"{directory}/{last}"
        if beside not in candidates:
            candidates.append(beside)
    for prefix in candidates:
        if path_exists(fs, prefix + INDEX_SUFFIX, where, limits):
            return prefix
    raise NotACheckpointError(
        f"{where} names checkpoint {recorded!r}, but there is no index for it beside the "
        "state file",
        path=where,
    )


def open_storage(
    url: str, storage_options: Optional[dict] = None, limits: Optional[RemoteLimits] = None
) -> RemoteStorage:
    """The storage of the checkpoint `url` names: a prefix, its ``.index``, or a directory
    (trailing ``/`` optional) whose ``checkpoint`` state file names the latest one."""
    limits = limits or DEFAULT_LIMITS
    fs, path = _filesystem(url, storage_options)
    path = path.rstrip("/") if path.endswith("/") else path
    prefix_url = url[: -len(INDEX_SUFFIX)] if path.endswith(INDEX_SUFFIX) else url
    if path.endswith(INDEX_SUFFIX):
        path = path[: -len(INDEX_SUFFIX)]
    # The index's size (a HEAD, not a GET): whether it is there, and whether it may be fetched.
    index_size = _index_size(fs, path, prefix_url, limits)
    if index_size is False and prefix_url == url:
        where = f"{url.rstrip('/')}/{STATE_FILE}"
        state = read_small(fs, f"{path}/{STATE_FILE}", where, MAX_STATE_BYTES, limits)
        if state is None:
            raise NotACheckpointError(
                f"No checkpoint at {url}: neither {url}{INDEX_SUFFIX} nor a '{STATE_FILE}' "
                f"state file in {url.rstrip('/')}/ exists",
                path=url,
            )
        if len(state) > MAX_STATE_BYTES:
            raise NotACheckpointError(
                f"{where}: not a checkpoint state file: more than {MAX_STATE_BYTES} bytes",
                path=where,
            )
        recorded = parse_checkpoint_state(state, where).model_checkpoint_path
        if not recorded:
            raise NotACheckpointError(f"{where} names no checkpoint", path=where)
        path = _resolve_state(fs, path, url, recorded, limits)
        prefix_url = fs.unstrip_protocol(path) if "://" not in path else path
        index_size = _index_size(fs, path, prefix_url, limits)
    sizes = {INDEX_SUFFIX: index_size} if isinstance(index_size, int) else None
    return RemoteStorage(path, fs, url=prefix_url.rstrip("/"), limits=limits, sizes=sizes)


def _index_size(fs: Any, path: str, url: str, limits: RemoteLimits) -> "int | None | bool":
    """The size of the index of prefix `path`: None when the server does not say, False
    when it is not there."""
    try:
        return file_size(fs, path + INDEX_SUFFIX, url + INDEX_SUFFIX, limits)
    except FileNotFoundError as e:
        if not _missing(e):
            raise _refused(e) from None
        return False


def read_small(
    fs: Any, path: str, url: str, limit: int, limits: RemoteLimits = DEFAULT_LIMITS
) -> Optional[bytes]:
    """At most `limit` + 1 bytes from the start of a small file (a state file: one byte
    more tells a file over the limit); None when it is not there."""
    try:
        return bytes(
            with_retries(
                "send a file",
                url,
                lambda t: _call(fs, "cat_file", t, path, start=0, end=limit + 1),
                limits,
            )
        )
    except (FileNotFoundError, IsADirectoryError) as e:
        if isinstance(e, FileNotFoundError) and not _missing(e):
            raise
        return None


def fetch_files(
    fs: Any,
    files: List[Tuple[str, str, Optional[int]]],
    limits: RemoteLimits = DEFAULT_LIMITS,
) -> List[Tuple[str, bytearray]]:
    """Whole files (path in `fs`, URL, size or None), together at most ``max_index_bytes``
    and within one deadline: the table files of a format V1 checkpoint, which hold their
    values. A missing one is a MissingShardError naming it."""
    budget = _Budget(limits)
    sized = []
    for i, (path, url, size) in enumerate(files):
        try:
            if size is None:
                size = file_size(fs, path, url, limits, budget)
        except FileNotFoundError as e:
            if not _missing(e):
                raise _refused(e) from None
            raise MissingShardError(
                f"{url}: the checkpoint file is missing (the server answered 'not found')",
                path=url,
                shard=i,
            ) from None
        sized.append((path, url, size))
    known = sum(size or 0 for _, _, size in sized)
    if len(files) > 1 and known > limits.max_index_bytes:
        raise UnreadableError(
            f"{files[0][1]}: the {len(files)} files of the format V1 checkpoint hold {known} "
            f"bytes, more than the {limits.max_index_bytes} bytes tfckpt fetches into memory "
            "(--max-index-size); refused without fetching them",
            path=files[0][1],
            reason="too large",
        )
    out: List[Tuple[str, bytearray]] = []
    left = limits.max_index_bytes
    for i, (path, url, size) in enumerate(sized):
        what = "the checkpoint file" + (" (with those before it)" if i else "")
        data = fetch(fs, path, url, size, left, what, limits, budget)
        left -= len(data)
        check_git_lfs_pointer(url, data, shard=i)
        out.append((url, data))
    return out


#: A URL naming a format V1 set by the saver's pattern (``.../model.ckpt-?????-of-00003``).
V1_SET_URL = re.compile(r"^(?P<base>.*)-\?{5}-of-(?P<num>\d{5,})$")


def v1_files(
    url: str, storage_options: Optional[dict] = None, limits: Optional[RemoteLimits] = None
) -> Optional[List[Tuple[str, bytearray]]]:
    """The files of the format V1 checkpoint at `url`, fetched (see :func:`fetch_files`):
    a table file, or the set a saver's pattern names (``.../model.ckpt-?????-of-00003``,
    each name made from the pattern: '?' is never sent, nor anything globbed). None when
    `url` is neither."""
    limits = limits or DEFAULT_LIMITS
    m = V1_SET_URL.match(url)
    if m:
        num = m.group("num")
        urls = [f"{m.group('base')}-{i:05d}-of-{num}" for i in range(int(num))]
        fs, _ = _filesystem(urls[0], storage_options)
        files: List[Tuple[str, str, Optional[int]]] = [
            (fs._strip_protocol(u), u, None)  # noqa: SLF001 - fsspec's API
            for u in urls
        ]
        return fetch_files(fs, files, limits)
    fs, path = _filesystem(url, storage_options)
    try:
        size = file_size(fs, path, url, limits)
    except FileNotFoundError as e:
        if not _missing(e):
            raise _refused(e) from None
        return None
    if fetch_footer(fs, path, url, size, len(TABLE_MAGIC), limits) != TABLE_MAGIC:
        return None
    return fetch_files(fs, [(path, url, size)], limits)


def upload(
    local_prefix: str,
    num_shards: int,
    url: str,
    storage_options: Optional[dict] = None,
    limits: RemoteLimits = DEFAULT_LIMITS,
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
        _put(fs, local_prefix + suffix, path + suffix, url + suffix, limits)
    return url


def _put(fs: Any, local: str, remote_path: str, url: str, limits: RemoteLimits) -> None:
    """Stores one complete file (one object: never visible half-written). An upload is
    not cut off by the per-request timeout (its size is the caller's own), only retried."""
    with_retries(
        "store a file",
        url,
        lambda t: fs.put_file(local, remote_path),
        RemoteLimits(attempts=limits.attempts, deadline=max(limits.deadline, 1e9)),
        error=lambda message, path, reason: CheckpointError(message, path=path),
    )
