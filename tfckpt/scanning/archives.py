"""Archives as trees: tar and zip members read in place from the mapped archive, and
compressed tars streamed once, each checkpoint handed on as soon as it is complete."""

from __future__ import annotations

import io
import posixpath
import stat
import time
from collections import Counter
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from ..files import COMPRESSION_MAGICS, INDEX_SUFFIX, MAX_STATE_BYTES, STATE_FILE, ZIP_MAGICS
from ..keys import SAVE_COUNTER_KEY
from ..storage import ZipMemberStorage, list_tar_members, mapped_archive
from .discover import walk_tasks
from .records import describe_exception, error_record
from .tasks import DEFAULT_MAX_ARCHIVE_MEMBERS, Checkpoint, Done, Options, Task
from .trees import ArchiveTree

__all__ = [
    "TooManyMembers",
    "archive_kind",
    "member_name",
    "collect_tar_members",
    "tar_tree",
    "zip_tree",
    "compressed_tar_tasks",
]

#: The compressions tarfile reads (``r:*``).
_TARFILE_COMPRESSIONS = tuple(COMPRESSION_MAGICS[c] for c in ("gzip", "bzip2", "xz"))
_TAR_BLOCK = 512
#: The values a listing of a checkpoint reads: its step (see describe).
_STEP_KEYS = (SAVE_COUNTER_KEY, "global_step")
#: A step value larger than this (an index that says so is lying) is not read from a stream.
_STEP_BYTES_MAX = 1 << 16


def _too_large_for_a_state_file() -> bytes:
    """What a tree reads for a member it will not read: more bytes than a state file has."""
    return bytes(MAX_STATE_BYTES + 1)


def archive_kind(path: str) -> Optional[str]:
    """ "tar" (uncompressed), "tarz" (compressed tar), "zip" or None, by content."""
    import tarfile

    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return None
    if head.startswith(ZIP_MAGICS):
        return "zip"  # a damaged one too: its listing then says what is wrong
    compressed = head.startswith(_TARFILE_COMPRESSIONS)
    try:
        with tarfile.open(path, "r:*" if compressed else "r:") as t:
            t.next()
    except (tarfile.TarError, OSError, EOFError):
        return None
    return "tarz" if compressed else "tar"


def member_name(name: str) -> str:
    """An archive member's name as a scan names it (as the native tar listing does): '\\'
    as '/', no leading "./" or '/', no trailing '/'."""
    name = name.replace("\\", "/")
    while name.startswith(("./", "/")):
        name = name[2:] if name.startswith("./") else name[1:]
    return name.rstrip("/")


class ArchiveTimeout(Exception):
    """A compressed archive took longer than a scan gives one (Options.max_archive_seconds)."""


class _TimedFile(io.RawIOBase):
    """A file whose reads fail with ArchiveTimeout after `seconds` from its opening: the
    decompressors read through it, so even one member gigabytes long is cut off in time."""

    def __init__(self, path: str, seconds: float) -> None:
        self._f = open(path, "rb")  # noqa: SIM115 - closed with the tar (close below)
        self._seconds = seconds
        self._deadline = time.monotonic() + seconds

    def _check(self) -> None:
        if time.monotonic() > self._deadline:
            raise ArchiveTimeout(
                f"not read to its end within {self._seconds:g} s (the limit: "
                "max_archive_seconds, --max-archive-seconds); what came after is not scanned"
            )

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        self._check()
        return self._f.readinto(b)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()

    def close(self) -> None:
        self._f.close()
        super().close()


class TooManyMembers(Exception):
    """An archive has more members than a scan takes (Options.max_archive_members)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"more than {limit} members (the limit: max_archive_members, "
            "--max-archive-members); the archive is not scanned"
        )


def collect_tar_members(
    tar: Any,
    files: Dict[str, Any],
    errors: Dict[str, str],
    on_file: Optional[Callable[[str, Any], None]] = None,
    limit: int = DEFAULT_MAX_ARCHIVE_MEMBERS,
) -> None:
    """Fills `files` with the regular files as tarfile lists them (hard links resolved to
    their target) and `errors` with the unusable entries; what was listed stays there if
    the listing fails. `on_file(name, member)` is called as each regular file passes.
    Raises TooManyMembers past `limit` entries (tarfile keeps each one it lists)."""
    count = 0
    for m in tar:
        count += 1
        if count > limit:
            raise TooManyMembers(limit)
        name = member_name(m.name)
        if not name or name == ".":
            continue
        if m.isdir():
            continue
        if m.islnk():
            target = files.get(member_name(m.linkname))
            if target is not None:
                files[name] = target
            else:
                errors[name] = f"hard link to {m.linkname}, which is not in the archive"
        elif m.issparse():
            errors[name] = "sparse member (GNU sparse format), not read"
        elif m.isfile():
            files[name] = m
            if on_file is not None:
                on_file(name, m)
        elif m.issym():
            errors[name] = f"symbolic link (to {m.linkname}) inside the archive, not followed"
        else:
            errors[name] = "not a regular file"


def _stopped_early(tar: Any) -> bool:
    """Whether tarfile ended its listing before the end of the archive: it stops at a bad
    header without a word, so the block where it stopped must be the end-of-archive one."""
    tar.fileobj.seek(tar.offset)
    return bool(tar.fileobj.read(_TAR_BLOCK).strip(b"\0"))


def _archive_errors() -> tuple:
    """What reading a damaged archive can raise, from tarfile or its decompressors."""
    import tarfile
    import zlib

    errors = [tarfile.TarError, OSError, EOFError, ValueError, zlib.error]
    try:
        import lzma

        errors.append(lzma.LZMAError)
    except ImportError:  # pragma: no cover - Python built without lzma
        pass
    return tuple(errors)


def tar_tree(path: str, max_members: int = DEFAULT_MAX_ARCHIVE_MEMBERS) -> ArchiveTree:
    """An uncompressed tar: members are read in place from the memory-mapped archive."""
    mapped = mapped_archive(path)
    # The headers are listed natively: a tar may hold thousands of small checkpoints.
    # What that listing leaves to a full tar reader, tarfile reads.
    parsed = list_tar_members(mapped)
    if parsed is None:
        files, errors, problem = _tarfile_members(path, len(mapped), max_members)
    else:
        files, errors, problem = parsed
        if len(files) + len(errors) > max_members:
            raise TooManyMembers(max_members)

    def read(rel: str, member: Tuple[int, int]) -> bytes:
        off, size = member
        return bytes(memoryview(mapped)[off : off + min(size, MAX_STATE_BYTES + 1)])

    return ArchiveTree(path, "tar", files, errors, lambda m: m[1], read, problem)


def _tarfile_members(
    path: str, archive_size: int, max_members: int
) -> Tuple[Dict[str, Tuple[int, int]], Dict[str, str], Optional[str]]:
    """The members of an uncompressed tar as tarfile lists them, and what is wrong with the
    archive if it is damaged: tarfile stops listing at a bad header without a word, or
    fails on some (a negative size)."""
    import tarfile

    infos: Dict[str, Any] = {}
    errors: Dict[str, str] = {}
    problem = None
    try:
        with tarfile.open(path, "r:") as tar:
            collect_tar_members(tar, infos, errors, limit=max_members)
            if _stopped_early(tar):
                problem = (
                    f"damaged tar archive: a bad member header at byte {tar.offset} "
                    f"of {archive_size}; the members after it are not listed"
                )
    except _archive_errors() as e:
        return (
            {},
            {},
            (f"damaged tar archive, its members cannot be listed: {describe_exception(e)}"),
        )
    files = {name: (m.offset_data, m.size) for name, m in infos.items()}
    return files, errors, problem


def zip_tree(path: str, max_members: int = DEFAULT_MAX_ARCHIVE_MEMBERS) -> ArchiveTree:
    """A zip: stored members are read in place, compressed ones decompressed when read."""
    import zipfile

    with open(path, "rb") as f:  # the count the directory declares, before it is read
        declared = _zip_declared_count(f)
    if declared is not None and declared > max_members:
        raise TooManyMembers(max_members)
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
    if len(infos) > max_members:
        raise TooManyMembers(max_members)
    overlap = _overlapping_entries(infos)
    if overlap is not None:
        # The construction of the densest zip bombs: one compressed stream read by many
        # entries. Nothing of such an archive is read.
        return ArchiveTree(path, "zip", {}, {}, lambda i: i.file_size, _no_reader, overlap)
    files: Dict[str, Any] = {}
    errors: Dict[str, str] = {}
    for info in infos:
        name = member_name(info.filename)
        if not name or info.is_dir():
            continue
        mode = info.external_attr >> 16
        if mode and stat.S_ISLNK(mode):
            errors[name] = "symbolic link inside the archive, not followed"
            continue
        files[name] = info

    def read(rel: str, info: Any) -> bytes:
        if info.file_size > MAX_STATE_BYTES:
            return _too_large_for_a_state_file()
        return bytes(ZipMemberStorage(path, rel, {INDEX_SUFFIX: info}).index_buffer())

    return ArchiveTree(path, "zip", files, errors, lambda i: i.file_size, read)


def _zip_declared_count(f: Any) -> Optional[int]:
    """The entry count a zip's end-of-central-directory record declares (None if it has
    none in its last 64 KiB, or declares it in a zip64 record: zipfile then says more)."""
    f.seek(0, 2)
    size = f.tell()
    f.seek(max(size - (1 << 16) - 22, 0))
    tail = f.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        return None
    count = int.from_bytes(tail[at + 10 : at + 12], "little")
    return None if count == 0xFFFF else count


def _overlapping_entries(infos: List[Any]) -> Optional[str]:
    """Why the entries of a zip are refused, or None: two entries whose stored bytes
    overlap (each entry's span is at least its local header's fixed part, its name and its
    compressed bytes)."""
    spans = sorted(
        (
            i.header_offset,
            i.header_offset
            + 30
            + len(i.orig_filename.encode("utf-8", "replace"))
            + i.compress_size,
            i.orig_filename,
        )
        for i in infos
    )
    for (_, end, name), (start, _, other) in zip(spans, spans[1:]):
        if start < end:
            return (
                f"overlapping zip entries ({other!r} starts inside {name!r}, as in a zip "
                "bomb); the archive is refused, nothing in it is read"
            )
    return None


def _no_reader(rel: str, member: Any) -> bytes:
    raise AssertionError("an archive refused whole has no members to read")


def compressed_tar_tasks(path: str, opts: Options) -> Iterator[Task]:
    """A compressed tar in two sequential passes: the first lists the members (and reads the
    small state files as they pass), the second reads the members of each checkpoint as the
    stream reaches them and hands the checkpoint on, whole and in memory, as soon as its
    last member has been read. Never seeks backwards."""
    import tarfile

    raw = _TimedFile(path, opts.max_archive_seconds)
    try:
        tar = tarfile.open(fileobj=raw, mode="r:*")
    except _archive_errors() as e:
        raw.close()
        yield Done(
            [
                error_record(
                    "path",
                    path,
                    "",
                    "damaged compressed tar archive, its members "
                    f"cannot be listed: {describe_exception(e)}",
                )
            ]
        )
        return
    try:
        with raw, tar:
            yield from _compressed_tar_passes(path, tar, opts)
    except ArchiveTimeout as e:
        yield Done([error_record("path", path, "", str(e))])


def _compressed_tar_passes(path: str, tar: Any, opts: Options) -> Iterator[Task]:
    """The two passes over an opened compressed tar."""
    # A listing needs each index whole, but of the data shards only their sizes (in the
    # member headers) and the few bytes of the step it shows: the indexes are read in the
    # first pass, so the second can keep just those bytes.
    listing = not (opts.verify or opts.stats)
    indexes: Optional[Dict[int, bytes]] = {} if listing else None
    try:
        tree = _compressed_tar_tree(
            path, tar, indexes, opts.max_member_bytes, opts.max_archive_members
        )
    except TooManyMembers as e:
        yield Done([error_record("path", path, "", str(e))])
        return
    tasks = list(walk_tasks(tree))
    yield from _in_stream_order(tar, tasks, opts, indexes)


def _compressed_tar_tree(
    path: str,
    tar: Any,
    indexes: Optional[Dict[int, bytes]] = None,
    max_bytes: int = 0,
    max_members: int = DEFAULT_MAX_ARCHIVE_MEMBERS,
) -> ArchiveTree:
    """The first pass: the members of a compressed tar as a tree, its state files read, and
    with `indexes` its checkpoint indexes too (by data offset; up to `max_bytes` each)."""
    files: Dict[str, Any] = {}
    errors: Dict[str, str] = {}
    small: Dict[str, bytes] = {}
    problem = None

    def keep_state_file(name: str, m: Any) -> None:
        # State files are read as they pass: the second pass reads checkpoints only.
        if posixpath.basename(name) == STATE_FILE and m.size <= MAX_STATE_BYTES:
            small[name] = tar.extractfile(m).read()
        elif indexes is not None and name.endswith(INDEX_SUFFIX) and m.size <= max_bytes:
            indexes[m.offset_data] = tar.extractfile(m).read()

    try:
        collect_tar_members(tar, files, errors, keep_state_file, limit=max_members)
        if _stopped_early(tar):
            problem = (
                f"damaged compressed tar archive: a bad member header at byte "
                f"{tar.offset} of the uncompressed stream; the members after it "
                "are not listed"
            )
    except _archive_errors() as e:
        problem = (
            f"damaged compressed tar archive: {describe_exception(e)}; the "
            f"members after byte {tar.offset} of the uncompressed stream are not "
            "listed"
        )
        # What was listed can still be read, up to where the stream breaks.
        files = {n: m for n, m in files.items() if m.offset_data + m.size <= tar.offset}

    def read(rel: str, member: Any) -> bytes:
        return small[rel] if rel in small else _too_large_for_a_state_file()

    return ArchiveTree(path, "tarz", files, errors, lambda m: m.size, read, problem)


def _ready_at(t: Task) -> int:
    """When a task is complete in the stream: the offset of its last member (-1: at once)."""
    if isinstance(t, Checkpoint):
        return max(m.offset_data for m in t.spec[3].values())
    return -1


def _needed_ranges(location: str, index: bytes) -> Dict[str, List[Tuple[int, int]]]:
    """{data shard suffix: [(offset, size)]} of the values a listing reads (the step), by
    the index of the checkpoint at `location`; {} when the index does not open (the
    record then says why)."""
    from ..errors import CheckpointError
    from ..files import data_filename
    from ..reader import Reader
    from ..storage import BytesStorage

    out: Dict[str, List[Tuple[int, int]]] = {}
    try:
        with Reader(storage=BytesStorage(location, {INDEX_SUFFIX: index})) as r:
            n = r.header.num_shards
            for key in _STEP_KEYS:
                if key in r:
                    e = r.entry(key)
                    suffix = data_filename("", e.shard_id, n)
                    out.setdefault(suffix, []).append((e.offset, e.size))
    except CheckpointError:
        return {}
    return out


def _read_ranges(tar: Any, m: Any, ranges: List[Tuple[int, int]]) -> Any:
    """Member `m` as a PartialBytes holding only `ranges`, read from the stream in bounded
    pieces and never past the last range's end."""
    from ..storage import PartialBytes

    held: Dict[int, bytes] = {}
    wanted = sorted(
        (off, size)
        for off, size in ranges
        if 0 <= off and off + size <= m.size and size <= _STEP_BYTES_MAX
    )
    if wanted:
        f = tar.extractfile(m)
        pos = 0
        for off, size in wanted:
            while pos < off:  # skipped in pieces: a shard may be gigabytes
                step = f.read(min(off - pos, 1 << 20))
                if not step:
                    break
                pos += len(step)
            data = f.read(size) if pos == off else b""
            pos += len(data)
            if len(data) == size:
                held[off] = data
    return PartialBytes(m.size, held)


def _in_stream_order(
    tar: Any, tasks: List[Task], opts: Options, indexes: Optional[Dict[int, bytes]] = None
) -> Iterator[Task]:
    """The second pass: each task as soon as the stream has passed its last member, a
    checkpoint with its members' bytes (held only until no waiting checkpoint needs them).
    With `indexes` (a listing), the indexes come from them and of a data shard only the
    bytes of the values a listing reads are held."""
    damaged = _archive_errors()
    needed: Dict[int, List[Tuple[int, int]]] = {}  # data offset of a shard -> its ranges
    if indexes is not None:
        for t in tasks:
            if isinstance(t, Checkpoint) and t.spec[3][INDEX_SUFFIX].offset_data in indexes:
                ranges = _needed_ranges(t.location, indexes[t.spec[3][INDEX_SUFFIX].offset_data])
                for suffix, m in t.spec[3].items():
                    if suffix != INDEX_SUFFIX:  # every data shard: at least its size
                        needed.setdefault(m.offset_data, []).extend(ranges.get(suffix, []))
    order = sorted(range(len(tasks)), key=lambda i: (_ready_at(tasks[i]), i))
    users: Counter = Counter()
    for t in tasks:
        if isinstance(t, Checkpoint):
            users.update(m.offset_data for m in set(t.spec[3].values()))
    loaded: Dict[int, Any] = {}
    members = sorted(
        {
            m.offset_data: m for t in tasks if isinstance(t, Checkpoint) for m in t.spec[3].values()
        }.values(),
        key=lambda m: m.offset_data,
    )
    pos = 0
    broken: Optional[str] = None  # why the stream cannot be read any further
    for i in order:
        t = tasks[i]
        if not isinstance(t, Checkpoint):
            yield t
            continue
        end = _ready_at(t)
        while pos < len(members) and members[pos].offset_data <= end:
            m = members[pos]
            pos += 1
            if indexes is not None and m.offset_data in indexes:
                loaded[m.offset_data] = indexes[m.offset_data]  # read in the first pass
            elif indexes is not None and m.offset_data in needed and broken is None:
                try:
                    loaded[m.offset_data] = _read_ranges(tar, m, needed[m.offset_data])
                except damaged as e:
                    broken = (
                        f"damaged compressed tar archive: {describe_exception(e)}, "
                        f"reading member {m.name}"
                    )
            elif m.size > opts.max_member_bytes:
                loaded[m.offset_data] = None  # too large to hold: said in the record
            elif broken is None:
                try:
                    loaded[m.offset_data] = tar.extractfile(m).read()
                except damaged as e:
                    broken = (
                        f"damaged compressed tar archive: {describe_exception(e)}, "
                        f"reading member {m.name}"
                    )
        files_of = {}
        too_large = []
        unread = False
        for suffix, m in t.spec[3].items():
            data = loaded.get(m.offset_data)
            if data is None:
                if m.size > opts.max_member_bytes and m.offset_data not in needed:
                    too_large.append(f"{suffix} ({m.size} bytes)")
                else:
                    unread = True
            files_of[suffix] = data
        for m in set(t.spec[3].values()):
            users[m.offset_data] -= 1
            if users[m.offset_data] == 0:
                loaded.pop(m.offset_data, None)
        if unread:
            yield Done(
                [
                    error_record(
                        "checkpoint",
                        t.location,
                        t.name,
                        broken or "a member could not be read from the compressed archive",
                    )
                ]
            )
        elif too_large:
            yield Done(
                [
                    error_record(
                        "checkpoint",
                        t.location,
                        t.name,
                        f"member(s) {', '.join(too_large)} too large to hold in memory from a "
                        f"compressed archive (limit {opts.max_member_bytes} bytes); unpack it or "
                        "use an uncompressed tar, which is read in place",
                    )
                ]
            )
        else:
            yield Checkpoint(t.location, t.name, t.kind, ("bytes", t.location, files_of))
