"""Bulk scanning: every checkpoint under directory trees, inside archives and on object
stores, as a stream of records.

    for rec in tfckpt.scan(["runs/", "old-runs.tar.gz", "s3://bucket/exp/"], jobs=4):
        print(rec.location, rec.kind, rec.keys, rec.step, rec.status)

What is found, and the record it gives (the ``record`` field):

* ``checkpoint``: a V2 checkpoint, found by its ``.index`` (SavedModel variables too),
  with its kind, key and parameter counts, bytes, dtypes, shards and step; also every
  half-written save (temporary files, data shards without their index, a sharded save's
  ``*_temp/`` directory), with status ``error``;
* ``state``: a ``checkpoint`` state file: which checkpoint it says is latest (``latest``),
  with status ``error`` when it names checkpoints that are not there;
* ``path``: something met on the way that cannot be read (a symbolic link loop, a broken
  link or a FIFO where a checkpoint file should be, a directory that cannot be listed);
* ``key``: with ``keys=True``, one record per key instead of one per checkpoint (the
  other kinds then appear only with status ``error``).

Nothing found is fatal: damage is reported in the record (``status`` is ``"error"`` and
``error`` the message). Records stream out as they are made, so memory stays bounded
however many checkpoints there are, and their order is deterministic whatever ``jobs``
is: a sorted directory walk (a directory's own checkpoints, then its subdirectories);
for a compressed tar, the order in which the archive completes each checkpoint.

Locations: a path as given (``runs/a/ckpt-3``), a URL (``s3://bucket/exp/ckpt-3``), or a
member of an archive as ``ARCHIVE!/MEMBER`` (``old-runs.tar.gz!/a/ckpt-3``). ``name`` is
the location relative to the path that was scanned, so the same files give the same
names unpacked, archived and remote.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import posixpath
import re
import stat
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Dict, Iterable, Iterator, List, NamedTuple, Optional, \
    Pattern, Sequence, Tuple, Union

from ._core import core as _native
from .dtypes import by_code
from .errors import CheckpointError, NotACheckpointError
from .reader import OBJECT_GRAPH_KEY, Reader
from .storage import LocalStorage

__all__ = ["scan", "scan_to_dask", "dataframe_meta", "Record", "KeyRecord", "CHECKPOINT_FIELDS", "KEY_FIELDS",
           "record_writer", "FORMATS"]

#: Columns of a record in the per-checkpoint view (also those of state and path records).
CHECKPOINT_FIELDS = ("record", "location", "name", "kind", "status", "error", "keys",
                     "parameters", "bytes", "dtypes", "shards", "step", "step_source",
                     "latest", "checkpoints")
#: Columns of a record in the per-key view (``keys=True``).
KEY_FIELDS = ("record", "location", "name", "key", "dtype", "shape", "parameters", "bytes",
              "partitioned", "status", "error")

SAVE_COUNTER_KEY = "save_counter/.ATTRIBUTES/VARIABLE_VALUE"
GLOBAL_STEP_KEY = "global_step"
STATE_FILE = "checkpoint"
_MAX_STATE_BYTES = 1 << 20
_MAX_PROBLEMS_SHOWN = 3
#: Members of a compressed tar are held in memory until their checkpoint is complete.
DEFAULT_MAX_MEMBER_BYTES = 2 << 30

_INDEX_RE = re.compile(r"^(?P<p>.+)\.index$", re.S)
_SHARD_RE = re.compile(r"^(?P<p>.+)(?P<s>\.data-\d{5,}-of-\d{5,})$", re.S)
_TEMP_RE = re.compile(r"^(?P<p>.+)\.(?:index|data-\d{5,}-of-\d{5,})\.tempstate\d+$", re.S)
_STATE_TEMP_RE = re.compile(r"^checkpoint\.tmp[0-9a-f]+$")
_STEP_SUFFIX_RE = re.compile(r"-(\d+)$")
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


# -- records ----------------------------------------------------------------------------

@dataclass
class Record:
    """One finding of a scan. Fields that do not apply are None; :meth:`to_dict` gives the
    columns of a view (:data:`CHECKPOINT_FIELDS` or :data:`KEY_FIELDS`)."""

    record: str                 # "checkpoint", "state", "path" or "key"
    location: str
    name: str
    status: str = "ok"          # "ok" or "error"
    error: Optional[str] = None
    kind: Optional[str] = None  # "object-based", "name-based" or "savedmodel"
    keys: Optional[int] = None
    parameters: Optional[int] = None
    bytes: Optional[int] = None
    dtypes: Optional[Dict[str, int]] = None
    shards: Optional[int] = None
    step: Optional[int] = None
    step_source: Optional[str] = None  # "save_counter", "global_step" or "suffix"
    latest: Optional[str] = None       # state files: the location of the latest checkpoint
    checkpoints: Optional[int] = None  # state files: how many checkpoints it names
    key: Optional[str] = None
    dtype: Optional[str] = None
    shape: Optional[Tuple[int, ...]] = None
    partitioned: Optional[bool] = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self, columns: Optional[Sequence[str]] = None) -> Dict[str, Any]:
        """The record as a plain dict of `columns` (by default those of its own view)."""
        if columns is None:
            columns = KEY_FIELDS if self.record == "key" else CHECKPOINT_FIELDS
        d = {c: getattr(self, c, None) for c in columns}
        if d.get("dtypes") is not None:
            d["dtypes"] = dict(d["dtypes"])
        if d.get("shape") is not None:
            d["shape"] = list(d["shape"])
        return d


class KeyRecord(NamedTuple):
    """One key of a checkpoint (``keys=True``): a light record, made by the thousand."""

    record: str
    location: str
    name: str
    key: str
    dtype: str
    shape: Tuple[int, ...]
    parameters: int
    bytes: int
    partitioned: bool
    status: str
    error: Optional[str]

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self, columns: Optional[Sequence[str]] = None) -> Dict[str, Any]:
        d = {c: getattr(self, c, None) for c in (columns or KEY_FIELDS)}
        if d.get("shape") is not None:
            d["shape"] = list(d["shape"])
        return d


@dataclass
class _Options:
    keys: bool = False
    match: Optional[Pattern] = None
    verify: bool = False
    storage_options: Dict[str, Any] = field(default_factory=dict)
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES

    def matches(self, *texts: Optional[str]) -> bool:
        return self.match is None or any(t is not None and self.match.search(t)
                                         for t in texts)


# -- tasks: what discovery hands to the workers -------------------------------------------

@dataclass
class _Done:
    """Records made while walking (state files, half-written saves, unreadable paths)."""

    records: List[Record]


@dataclass
class _Checkpoint:
    """A checkpoint to open: `spec` says how to build its storage (picklable)."""

    location: str
    name: str
    kind: Optional[str]
    spec: tuple


@dataclass
class _WholeArchive:
    """A compressed tar, scanned start to end by one worker (its members are not
    addressable without decompressing what precedes them)."""

    path: str


Task = Union[_Done, _Checkpoint, _WholeArchive]


def _error(record: str, location: str, name: str, message: str) -> Record:
    return Record(record, location, name, status="error", error=message)


def _describe_exception(e: BaseException) -> str:
    if isinstance(e, CheckpointError):
        return str(e) or type(e).__name__
    if isinstance(e, OSError) and e.strerror:
        return f"{e.strerror}: {e.filename}" if e.filename else e.strerror
    return f"{type(e).__name__}: {e}"


# -- trees: directories, archives and stores walked the same way ---------------------------

@dataclass
class _Item:
    """One entry of a directory as a tree reports it."""

    name: str
    type: str                # "file", "dir" or "error"
    size: Optional[int] = None
    error: Optional[str] = None
    ref: Any = None          # the tree's handle: an archive member, (dev, ino), ...


_BY_NAME = __import__("operator").attrgetter("name")


class _LocalTree:
    """A directory on the local filesystem, walked like ``find -L``: symbolic links are
    followed, a link leading back to a directory being walked is reported as a loop."""

    def __init__(self, root: str) -> None:
        self.root = root

    def location(self, rel: str) -> str:
        return os.path.join(self.root, rel) if rel else self.root

    def walk(self) -> Iterator[Tuple[str, Optional[List[_Item]], Optional[str]]]:
        """(relative directory, its sorted items or None, error) in pre-order."""
        # Each directory carries its real path: a symbolic link whose target is the real
        # path of a directory being walked (an ancestor) is a loop.
        stack: List[Tuple[str, str]] = [("", os.path.realpath(self.root))]
        while stack:
            rel, real = stack.pop()
            try:
                with os.scandir(self.location(rel)) as it:
                    entries = sorted(it, key=_BY_NAME)
            except OSError as e:
                yield rel, None, f"cannot list the directory: {e.strerror}"
                continue
            items = [self._item(e, real) for e in entries]
            yield rel, items, None
            for item in reversed(items):
                if item.type == "dir":
                    stack.append((posixpath.join(rel, item.name) if rel else item.name,
                                  item.ref))

    def _item(self, entry, real: str) -> _Item:
        # d_type answers for plain entries without a system call; links are followed.
        if not entry.is_symlink():
            if entry.is_dir(follow_symlinks=False):
                return _Item(entry.name, "dir", ref=real + "/" + entry.name)
            if entry.is_file(follow_symlinks=False):
                return _Item(entry.name, "file")
        try:
            st = entry.stat()
        except OSError as e:
            if e.errno == errno.ELOOP:
                return _Item(entry.name, "error", error="symbolic link loop")
            if entry.is_symlink():
                try:
                    target = os.readlink(entry.path)
                except OSError:
                    target = "?"
                return _Item(entry.name, "error",
                             error=f"broken symbolic link (to {target}): {e.strerror}")
            return _Item(entry.name, "error", error=f"cannot stat: {e.strerror}")
        if stat.S_ISDIR(st.st_mode):
            target = os.path.realpath(entry.path)
            if real == target or real.startswith(target.rstrip("/") + "/"):
                return _Item(entry.name, "error",
                             error=f"symbolic link loop: leads back to {target}")
            return _Item(entry.name, "dir", ref=target)
        if stat.S_ISREG(st.st_mode):
            return _Item(entry.name, "file", size=st.st_size)
        what = ("a FIFO" if stat.S_ISFIFO(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode)
                else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
                else "not a regular file")
        return _Item(entry.name, "error", error=f"not a regular file: {what}")

    def read_bytes(self, rel: str, item: _Item) -> bytes:
        with open(self.location(rel), "rb") as f:
            return f.read(_MAX_STATE_BYTES + 1)

    def has_index(self, rel: str) -> bool:
        return os.path.isfile(self.location(rel) + ".index")

    def find_absolute(self, path: str) -> Optional[str]:
        return path if os.path.isfile(path + ".index") else None

    def checkpoint_spec(self, rel_prefix: str, index: _Item, shards: Dict[str, _Item]) -> tuple:
        return ("local", self.location(rel_prefix))


class _ArchiveTree:
    """The members of an archive as a tree of directories."""

    def __init__(self, archive: str, kind: str, files: Dict[str, Any],
                 errors: Dict[str, str], sizes: Callable[[Any], int],
                 reader: Callable[[str, Any], bytes]) -> None:
        self.problem: Optional[str] = None  # damage of the archive as a whole
        self.archive = archive
        self.kind = kind  # "tar", "tarz" or "zip"
        self.files = files
        self._reader = reader
        self.dirs: Dict[str, Dict[str, _Item]] = {"": {}}
        for path, member in files.items():
            self._add(path, _Item(posixpath.basename(path), "file", size=sizes(member),
                                  ref=member))
        for path, message in errors.items():
            self._add(path, _Item(posixpath.basename(path), "error", error=message))

    def _add(self, path: str, item: _Item) -> None:
        parent = posixpath.dirname(path)
        self._ensure_dir(parent)
        if item.type == "file" or item.name not in self.dirs[parent]:
            self.dirs[parent][item.name] = item

    def _ensure_dir(self, d: str) -> None:
        if d in self.dirs:
            return
        parent = posixpath.dirname(d)
        self._ensure_dir(parent)
        self.dirs[d] = {}
        name = posixpath.basename(d)
        self.dirs[parent].setdefault(name, _Item(name, "dir"))

    def location(self, rel: str) -> str:
        return f"{self.archive}!/{rel}" if rel else self.archive

    def walk(self):
        if self.problem:
            yield "", None, self.problem
        stack = [""]
        while stack:
            rel = stack.pop()
            items = [self.dirs[rel][n] for n in sorted(self.dirs[rel])]
            yield rel, items, None
            for item in reversed(items):
                if item.type == "dir":
                    stack.append(posixpath.join(rel, item.name) if rel else item.name)

    def read_bytes(self, rel: str, item: _Item) -> bytes:
        return self._reader(rel, item.ref)

    def has_index(self, rel: str) -> bool:
        return rel + ".index" in self.files

    def find_absolute(self, path: str) -> Optional[str]:
        return None

    def checkpoint_spec(self, rel_prefix: str, index: _Item, shards: Dict[str, _Item]) -> tuple:
        members = {".index": index.ref}
        members.update({s: item.ref for s, item in shards.items()})
        return (self.kind, self.archive, self.location(rel_prefix), members)


class _FsspecTree:
    """A directory on an fsspec filesystem (a prefix of an object store, an HTTP server's
    index pages, ...)."""

    def __init__(self, fs, root: str, url: str) -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        self.url = url.rstrip("/")

    def _path(self, rel: str) -> str:
        return f"{self.root}/{rel}" if rel else self.root

    def location(self, rel: str) -> str:
        return f"{self.url}/{rel}" if rel else self.url

    def walk(self):
        stack = [""]
        while stack:
            rel = stack.pop()
            try:
                listing = self.fs.ls(self._path(rel), detail=True)
            except (OSError, ValueError) as e:
                yield rel, None, f"cannot list: {_describe_exception(e)}"
                continue
            items: Dict[str, _Item] = {}
            for info in listing:
                name = info["name"].rstrip("/").rsplit("/", 1)[-1]
                if not name or name in (".", ".."):
                    continue
                if info.get("type") == "directory":
                    items.setdefault(name, _Item(name, "dir"))
                else:
                    items[name] = _Item(name, "file", size=info.get("size"))
            ordered = [items[n] for n in sorted(items)]
            yield rel, ordered, None
            for item in reversed(ordered):
                if item.type == "dir":
                    stack.append(posixpath.join(rel, item.name) if rel else item.name)

    def read_bytes(self, rel: str, item: _Item) -> bytes:
        return self.fs.cat_file(self._path(rel), start=0, end=_MAX_STATE_BYTES + 1)

    def has_index(self, rel: str) -> bool:
        try:
            return bool(self.fs.exists(self._path(rel) + ".index"))
        except (OSError, ValueError):
            return False

    def find_absolute(self, path: str) -> Optional[str]:
        return None

    def checkpoint_spec(self, rel_prefix: str, index: _Item, shards: Dict[str, _Item]) -> tuple:
        sizes = {s: item.size for s, item in shards.items() if item.size is not None}
        return ("fsspec", self.fs, self._path(rel_prefix), self.location(rel_prefix), sizes)


# -- from a directory's items to tasks ----------------------------------------------------

def _looks_relevant(name: str) -> bool:
    """Whether an unreadable entry of this name deserves a record (it would be part of a
    checkpoint or a state file)."""
    return bool(name == STATE_FILE or _INDEX_RE.match(name) or _SHARD_RE.match(name)
                or _TEMP_RE.match(name) or _STATE_TEMP_RE.match(name))


def _join(rel: str, name: str) -> str:
    return posixpath.join(rel, name) if rel else name


def _dir_tasks(tree, rel: str, items: List[_Item], opts: _Options) -> List[Task]:
    """The tasks for one directory's own files, in name order."""
    base = posixpath.basename(rel)
    if base.endswith("_temp") and any(i.name.startswith("part-") for i in items):
        return [_Done([_error(
            "checkpoint", tree.location(rel), rel,
            f"half-written checkpoint: {base} is the temporary directory of an interrupted "
            f"sharded save of {base[:-len('_temp')]} (its parts were never merged)")])]

    out: List[Tuple[str, Task]] = []

    def unreadable(item: _Item) -> None:
        loc = _join(rel, item.name)
        out.append((item.name, _Done([_error("path", tree.location(loc), loc, item.error)])))

    groups: Dict[str, Dict[str, Any]] = {}
    states: List[_Item] = []
    for item in items:
        if item.type == "dir":
            continue
        if item.type == "error":
            # Loops are worth a record wherever they are; other unreadable entries only
            # where a checkpoint file or a state file would be.
            if "loop" in (item.error or "") or _looks_relevant(item.name):
                unreadable(item)
            continue
        name = item.name
        if name.endswith(".index") and len(name) > 6:
            groups.setdefault(name[:-6], {})["index"] = item
            continue
        m = _SHARD_RE.match(name) if ".data-" in name else None
        if m:
            groups.setdefault(m.group("p"), {}).setdefault("shards", {})[m.group("s")] = item
            continue
        m = _TEMP_RE.match(name) if ".tempstate" in name else None
        if m:
            groups.setdefault(m.group("p"), {}).setdefault("temps", []).append(name)
            continue
        if name == STATE_FILE:
            states.append(item)
        elif _STATE_TEMP_RE.match(name):
            loc = _join(rel, name)
            out.append((name, _Done([_error(
                "state", tree.location(loc), loc,
                "half-written state file: a temporary file of an interrupted update of "
                "'checkpoint'")])))

    for p, g in groups.items():
        rel_prefix = _join(rel, p)
        shards = g.get("shards", {})
        if "index" in g:
            kind = "savedmodel" if rel_prefix.endswith("variables/variables") or (
                p == "variables" and base == "variables") else None
            out.append((p + ".index", _Checkpoint(
                tree.location(rel_prefix), rel_prefix, kind,
                tree.checkpoint_spec(rel_prefix, g["index"], shards))))
        elif shards:
            names = ", ".join(sorted(i.name for i in shards.values()))
            out.append((p + ".index", _Done([_error(
                "checkpoint", tree.location(rel_prefix), rel_prefix,
                f"half-written checkpoint: data shard(s) {names} without the index "
                f"{p}.index (a save writes the index last: interrupted, or the index was "
                "deleted)")])))
        if "temps" in g:
            temps = sorted(g["temps"])
            loc = _join(rel, temps[0])
            out.append((temps[0], _Done([_error(
                "checkpoint", tree.location(loc), loc,
                f"half-written checkpoint: temporary file(s) {', '.join(temps)} of an "
                f"interrupted save of {p}")])))

    present = {p for p, g in groups.items() if "index" in g}
    for item in states:
        out.append((item.name, _Done([_state_record(tree, rel, item, present)])))
    out.sort(key=lambda t: t[0])
    return [t for _, t in out]


def _parse_state(data: bytes):
    from google.protobuf import text_format

    from .proto import CheckpointState

    state = CheckpointState()
    text_format.Parse(data.decode("utf-8"), state)
    return state


def _state_record(tree, rel: str, item: _Item, present) -> Record:
    """What a ``checkpoint`` state file says: the latest checkpoint, and whether every
    checkpoint it names is there (resolved as tf.train.latest_checkpoint does; an absolute
    path from a moved directory is looked for beside the state file too)."""
    loc_rel = _join(rel, item.name)
    location = tree.location(loc_rel)
    if item.type == "error":
        return _error("path", location, loc_rel, item.error)
    try:
        data = tree.read_bytes(loc_rel, item)
        if len(data) > _MAX_STATE_BYTES:
            return _error("state", location, loc_rel,
                          f"not a checkpoint state file: more than {_MAX_STATE_BYTES} bytes")
        state = _parse_state(data)
    except Exception as e:  # noqa: BLE001 - a parse error is the state file's status
        return _error("state", location, loc_rel,
                      f"not a valid checkpoint state file: {_describe_exception(e)}")

    def resolve(p: str) -> Optional[str]:
        if not posixpath.isabs(p) and not os.path.isabs(p):
            target = posixpath.normpath(_join(rel, p))
            if (posixpath.dirname(target) == rel and posixpath.basename(target) in present) \
                    or (not target.startswith("..") and tree.has_index(target)):
                return tree.location(target)
            return None
        base = posixpath.basename(p)
        if base in present:
            return tree.location(_join(rel, base))
        return tree.find_absolute(p)

    names = list(state.all_model_checkpoint_paths)
    if state.model_checkpoint_path and state.model_checkpoint_path not in names:
        names.append(state.model_checkpoint_path)
    rec = Record("state", location, loc_rel, checkpoints=len(names))
    if not state.model_checkpoint_path:
        rec.status, rec.error = "error", "invalid checkpoint state: model_checkpoint_path is empty"
        return rec
    rec.latest = resolve(state.model_checkpoint_path)
    missing = [p for p in names if resolve(p) is None]
    if missing:
        rec.status = "error"
        rec.error = ("names checkpoint(s) that are not there: " + ", ".join(missing)
                     + ("" if rec.latest else " (including the latest)"))
    return rec


def _walk_tasks(tree, opts: _Options) -> Iterator[Task]:
    for rel, items, error in tree.walk():
        if items is None:
            yield _Done([_error("path", tree.location(rel), rel, error)])
            continue
        yield from _dir_tasks(tree, rel, items, opts)


# -- archives -----------------------------------------------------------------------------

_GZIP, _BZIP2, _XZ, _ZSTD = b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd"


def archive_kind(path: str) -> Optional[str]:
    """"tar" (uncompressed), "tarz" (compressed tar), "zip" or None, by content."""
    import tarfile
    import zipfile

    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return None
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")) and zipfile.is_zipfile(path):
        return "zip"
    if head.startswith((_GZIP, _BZIP2, _XZ)):
        try:
            with tarfile.open(path, "r:*") as t:
                t.next()
            return "tarz"
        except (tarfile.TarError, OSError, EOFError):
            return None
    try:
        with tarfile.open(path, "r:") as t:
            t.next()
        return "tar"
    except (tarfile.TarError, OSError, EOFError):
        return None


def _member_name(name: str) -> str:
    """An archive member's name as a scan names it (as tar_members does): '\\' as '/',
    no leading "./" or '/', no trailing '/'."""
    name = name.replace("\\", "/")
    while name.startswith(("./", "/")):
        name = name[2:] if name.startswith("./") else name[1:]
    return name.rstrip("/")


def _tar_members(tar, files: Dict[str, Any], errors: Dict[str, str],
                 on_file: Optional[Callable[[str, Any], None]] = None) -> None:
    """Fills `files` with the regular files as tarfile lists them (hard links resolved to
    their target) and `errors` with the unusable entries; what was listed stays there if
    the listing fails. `on_file(name, member)` is called as each regular file passes."""
    for m in tar:
        name = _member_name(m.name)
        if not name or name == ".":
            continue
        if m.isdir():
            continue
        if m.islnk():
            target = files.get(_member_name(m.linkname))
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


def _stopped_early(tar) -> bool:
    """Whether tarfile ended its listing before the end of the archive: it stops at a bad
    header without a word, so the block where it stopped must be the end-of-archive one."""
    tar.fileobj.seek(tar.offset)
    return bool(tar.fileobj.read(_TAR_BLOCK).strip(b"\0"))


def _tar_tree(path: str) -> _ArchiveTree:
    """An uncompressed tar: members are read in place from the memory-mapped archive."""
    from .storage import mapped_archive

    mapped = mapped_archive(path)
    # The headers are listed natively (csrc/tar.cc): a tar may hold thousands of small
    # checkpoints. What that listing leaves to a full tar reader, tarfile reads.
    parsed = _native.tar_members(mapped)
    problem = None
    if parsed is None:
        files, errors, problem = _tarfile_members(path, mapped)
    else:
        files, errors, problem = parsed

    def read(rel, member):
        off, size = member
        return bytes(memoryview(mapped)[off: off + min(size, _MAX_STATE_BYTES + 1)])

    tree = _ArchiveTree(path, "tar", files, errors, lambda m: m[1], read)
    tree.problem = problem
    return tree


def _tarfile_members(path: str, mapped) -> Tuple[Dict[str, Tuple[int, int]], Dict[str, str],
                                                 Optional[str]]:
    """The members of an uncompressed tar as tarfile lists them, and what is wrong with the
    archive if it is damaged: tarfile stops listing at a bad header without a word, or
    fails on some (a negative size)."""
    import tarfile

    infos: Dict[str, Any] = {}
    errors: Dict[str, str] = {}
    problem = None
    try:
        with tarfile.open(path, "r:") as tar:
            _tar_members(tar, infos, errors)
            if _stopped_early(tar):
                problem = (f"damaged tar archive: a bad member header at byte {tar.offset} "
                           f"of {len(mapped)}; the members after it are not listed")
    except _archive_errors() as e:
        return {}, {}, ("damaged tar archive, its members cannot be listed: "
                        f"{_describe_exception(e)}")
    files = {name: (m.offset_data, m.size) for name, m in infos.items()}
    return files, errors, problem


_TAR_BLOCK = 512


def _zip_tree(path: str) -> _ArchiveTree:
    import zipfile

    from .storage import ZipMemberStorage

    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
    files: Dict[str, Any] = {}
    errors: Dict[str, str] = {}
    for info in infos:
        name = _member_name(info.filename)
        if not name or info.is_dir():
            continue
        mode = info.external_attr >> 16
        if mode and stat.S_ISLNK(mode):
            errors[name] = "symbolic link inside the archive, not followed"
            continue
        files[name] = info

    def read(rel, info):
        if info.file_size > _MAX_STATE_BYTES:
            return b"\0" * (_MAX_STATE_BYTES + 1)
        return bytes(ZipMemberStorage(path, rel, {".index": info}).index_buffer())

    return _ArchiveTree(path, "zip", files, errors, lambda i: i.file_size, read)


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


def _compressed_tar_tasks(path: str, opts: _Options) -> Iterator[Task]:
    """A compressed tar in two sequential passes: the first lists the members (and reads the
    small state files as they pass), the second reads the members of each checkpoint as the
    stream reaches them and hands the checkpoint on, whole and in memory, as soon as its
    last member has been read. Never seeks backwards."""
    import tarfile

    damaged = _archive_errors()
    try:
        tar = tarfile.open(path, "r:*")
    except damaged as e:
        yield _Done([_error("path", path, "", "damaged compressed tar archive, its members "
                                              f"cannot be listed: {_describe_exception(e)}")])
        return
    with tar:
        files: Dict[str, Any] = {}
        errors: Dict[str, str] = {}
        small: Dict[str, bytes] = {}
        problem = None

        def keep_state_file(name: str, m) -> None:
            # State files are read as they pass: the second pass reads checkpoints only.
            if posixpath.basename(name) == STATE_FILE and m.size <= _MAX_STATE_BYTES:
                small[name] = tar.extractfile(m).read()

        try:
            _tar_members(tar, files, errors, keep_state_file)
            if _stopped_early(tar):
                problem = (f"damaged compressed tar archive: a bad member header at byte "
                           f"{tar.offset} of the uncompressed stream; the members after it "
                           "are not listed")
        except damaged as e:
            problem = (f"damaged compressed tar archive: {_describe_exception(e)}; the "
                       f"members after byte {tar.offset} of the uncompressed stream are not "
                       "listed")
            # What was listed can still be read, up to where the stream breaks.
            files = {n: m for n, m in files.items() if m.offset_data + m.size <= tar.offset}

        def read(rel, member):
            return small.get(rel, b"\0" * (_MAX_STATE_BYTES + 1))

        tree = _ArchiveTree(path, "tarz", files, errors, lambda m: m.size, read)
        tree.problem = problem
        tasks = list(_walk_tasks(tree, opts))
        del tree, small

        # When each task is complete: the offset of its last member in the stream.
        def ready_at(t) -> int:
            if isinstance(t, _Checkpoint):
                return max(m.offset_data for m in t.spec[3].values())
            return -1

        order = sorted(range(len(tasks)), key=lambda i: (ready_at(tasks[i]), i))
        users: Counter = Counter()
        for t in tasks:
            if isinstance(t, _Checkpoint):
                users.update(m.offset_data for m in set(t.spec[3].values()))
        loaded: Dict[int, Any] = {}
        members = sorted({m.offset_data: m for t in tasks if isinstance(t, _Checkpoint)
                          for m in t.spec[3].values()}.values(), key=lambda m: m.offset_data)
        pos = 0
        broken: Optional[str] = None  # why the stream cannot be read any further
        for i in order:
            t = tasks[i]
            if not isinstance(t, _Checkpoint):
                yield t
                continue
            end = ready_at(t)
            while pos < len(members) and members[pos].offset_data <= end:
                m = members[pos]
                pos += 1
                if m.size > opts.max_member_bytes:
                    loaded[m.offset_data] = None  # too large to hold: said in the record
                elif broken is None:
                    try:
                        loaded[m.offset_data] = tar.extractfile(m).read()
                    except damaged as e:
                        broken = (f"damaged compressed tar archive: {_describe_exception(e)}, "
                                  f"reading member {m.name}")
            files_of = {}
            too_large = []
            unread = False
            for suffix, m in t.spec[3].items():
                data = loaded.get(m.offset_data)
                if data is None:
                    if m.size > opts.max_member_bytes:
                        too_large.append(f"{suffix} ({m.size} bytes)")
                    else:
                        unread = True
                files_of[suffix] = data
            for m in set(t.spec[3].values()):
                users[m.offset_data] -= 1
                if users[m.offset_data] == 0:
                    loaded.pop(m.offset_data, None)
            if unread:
                yield _Done([_error("checkpoint", t.location, t.name, broken or
                                    "a member could not be read from the compressed archive")])
            elif too_large:
                yield _Done([_error(
                    "checkpoint", t.location, t.name,
                    f"member(s) {', '.join(too_large)} too large to hold in memory from a "
                    f"compressed archive (limit {opts.max_member_bytes} bytes); unpack it or "
                    "use an uncompressed tar, which is read in place")])
            else:
                yield _Checkpoint(t.location, t.name, t.kind, ("bytes", t.location, files_of))


# -- roots --------------------------------------------------------------------------------

def _is_url(path: str) -> bool:
    return bool(_URL_RE.match(path)) and not path.startswith("file://")


def _check_root(path: str) -> None:
    if _is_url(path):
        return
    if path.startswith("file://"):
        path = path[len("file://"):]
    if not (os.path.exists(path) or os.path.isfile(path + ".index")):
        raise NotACheckpointError(
            f"{path}: no such file or directory (nor a checkpoint prefix {path}.index)")


def _root_tasks(path: str, opts: _Options, for_dask: bool = False) -> Iterator[Task]:
    if _is_url(path):
        yield from _fsspec_tasks(path, opts)
        return
    if path.startswith("file://"):
        path = path[len("file://"):]
    if os.path.isdir(path):
        yield from _walk_tasks(_LocalTree(path), opts)
        return
    if os.path.isfile(path):
        name = os.path.basename(path)
        if name.endswith(".index"):
            yield _single_checkpoint(path[: -len(".index")])
            return
        if name == STATE_FILE:
            tree = _LocalTree(os.path.dirname(path) or ".")
            for rel, items, _ in tree.walk():
                for t in _dir_tasks(tree, rel, items or [], opts):
                    if isinstance(t, _Done) and t.records[0].record == "state":
                        yield t
                return
        kind = archive_kind(path)
        if kind == "tar":
            yield from _walk_tasks(_tar_tree(path), opts)
            return
        if kind == "zip":
            yield from _walk_tasks(_zip_tree(path), opts)
            return
        if kind == "tarz":
            if for_dask:
                yield _WholeArchive(path)
            else:
                yield from _compressed_tar_tasks(path, opts)
            return
        if os.path.isfile(path + ".index"):
            yield _single_checkpoint(path)
            return
        from .files import sniff

        yield _Done([_error("path", path, name, f"not a checkpoint, a directory or an "
                                                f"archive: {sniff(path)}")])
        return
    if os.path.isfile(path + ".index"):
        yield _single_checkpoint(path)
        return
    raise NotACheckpointError(f"{path}: no such file or directory")


def _single_checkpoint(prefix: str) -> _Checkpoint:
    kind = "savedmodel" if prefix.replace(os.sep, "/").endswith("variables/variables") else None
    return _Checkpoint(prefix, os.path.basename(prefix), kind, ("local", prefix))


def _fsspec_tasks(url: str, opts: _Options) -> Iterator[Task]:
    import fsspec

    fs, path = fsspec.core.url_to_fs(url, **opts.storage_options)
    if path.endswith(".index"):
        prefix = path[: -len(".index")]
        yield _Checkpoint(url[: -len(".index")], posixpath.basename(prefix), None,
                          ("fsspec", fs, prefix, url[: -len(".index")], {}))
        return
    if not path.endswith("/") and fs.exists(path + ".index"):
        yield _Checkpoint(url, posixpath.basename(path), None, ("fsspec", fs, path, url, {}))
        return
    try:
        fs.ls(path)
    except FileNotFoundError:
        raise NotACheckpointError(f"{url}: not found") from None
    yield from _walk_tasks(_FsspecTree(fs, path, url), opts)


def _discover(paths: Sequence[str], opts: _Options, for_dask: bool = False) -> Iterator[Task]:
    for p in paths:
        yield from _root_tasks(p, opts, for_dask)


# -- running a task -----------------------------------------------------------------------

class _LocalScanStorage(LocalStorage):
    """LocalStorage whose shard sizes come from stat: a scan that only lists never maps a
    data shard."""

    def shard_size(self, shard_id: int, num_shards: int) -> int:
        try:
            st = os.stat(self.shard_path(shard_id, num_shards))
        except OSError:
            st = None
        if st is None or not stat.S_ISREG(st.st_mode):
            return super().shard_size(shard_id, num_shards)  # says what is wrong
        return st.st_size


def _make_storage(spec: tuple, opts: _Options):
    from . import storage as st

    kind = spec[0]
    if kind == "local":
        return _LocalScanStorage(spec[1])
    if kind == "tar":
        return st.TarMemberStorage(spec[1], spec[2], spec[3])
    if kind == "zip":
        return st.ZipMemberStorage(spec[1], spec[2], spec[3], max_member_bytes=opts.max_member_bytes)
    if kind == "bytes":
        return st.BytesStorage(spec[1], spec[2])
    if kind == "fsspec":
        s = st.FsspecStorage(spec[2], spec[1], sizes=spec[4])
        s.prefix, s.index_path = spec[3], spec[3] + ".index"
        return s
    raise ValueError(f"unknown storage spec {kind!r}")  # pragma: no cover


def _run_task(task: Task, opts: _Options) -> List[Record]:
    if isinstance(task, _Done):
        # In the per-key view, findings other than keys show only when something is wrong.
        return [r for r in task.records if opts.matches(r.location) and
                not (opts.keys and r.ok)]
    if isinstance(task, _WholeArchive):
        return [r for t in _compressed_tar_tasks(task.path, opts) for r in _run_task(t, opts)]
    try:
        storage = _make_storage(task.spec, opts)
        reader = Reader(storage=storage)
    except Exception as e:  # noqa: BLE001 - never fatal: the record says what went wrong
        if not opts.matches(task.location):
            return []
        rec = _error("checkpoint", task.location, task.name, _describe_exception(e))
        rec.kind = task.kind
        return [rec]
    try:
        return _describe(reader, storage, task, opts)
    except Exception as e:  # noqa: BLE001
        rec = _error("checkpoint", task.location, task.name, _describe_exception(e))
        rec.kind = task.kind
        return [rec] if opts.matches(task.location) else []
    finally:
        reader.close()


_DTYPE_NAMES = tuple(by_code(c).name for c in range(34))


def _dtype_name(code: int) -> str:
    return _DTYPE_NAMES[code] if 0 <= code < len(_DTYPE_NAMES) else by_code(code).name


def _shard_problems(reader, storage, need: int, placed: Optional[Dict[bytes, tuple]] = None
                    ) -> Tuple[List[str], Dict[int, str], int]:
    """Checks the data shards against the index: every referenced shard there, none
    shorter than its entries need. `need` is the sum of the sizes of the index's
    unpartitioned entries. Returns (problems, bad shards, bytes of the shards found);
    fills `placed` (raw key -> entry tuple) when given."""
    idx = reader._index
    num_shards = reader.header.num_shards
    if placed is None and num_shards == 1:
        # The common case, without a look at every entry: TensorFlow packs a shard densely,
        # so its size is the sum of the entries' sizes. Anything else gets the full check.
        try:
            have = storage.shard_size(0, 1)
        except CheckpointError:
            have = None
        if have == need or (have is None and need == 0):
            return [], {}, have or 0
    ends: Dict[int, int] = {}
    problems: List[str] = []
    for raw in idx.raw_keys():
        try:
            e = idx.entry(raw)
        except Exception as err:  # noqa: BLE001 - an undecodable entry is damage
            problems.append(_describe_exception(err))
            continue
        if placed is not None:
            placed[raw] = e
        shard, offset, size = e[2], e[3], e[4]
        if e[6] or size == 0:
            continue
        if shard >= num_shards or shard < 0:
            problems.append(f"key {raw.decode('utf-8', 'backslashreplace')} is in data shard "
                            f"{shard}, but the header says there are {num_shards} shards")
            continue
        end = offset + size
        if end > ends.get(shard, 0):
            ends[shard] = end
    bad: Dict[int, str] = {}
    total = 0
    for sid in range(num_shards):
        try:
            size = storage.shard_size(sid, num_shards)
        except CheckpointError as err:
            if sid in ends:
                bad[sid] = str(err)
            continue
        total += size
        if ends.get(sid, 0) > size:
            bad[sid] = (f"data shard {storage.shard_path(sid, num_shards)} is truncated: "
                        f"{size} bytes, but its entries reach byte {ends[sid]}")
    problems.extend(bad[s] for s in sorted(bad))
    return problems, bad, total


def _read_step(reader, key: str) -> Optional[int]:
    """A scalar integer counter, read with its checksum checked."""
    idx = reader._index
    dtype, shape, shard, offset, size, crc, slices, n = idx.entry(key)
    if shape != () or slices or dtype not in (3, 9) or size != (4 if dtype == 3 else 8):
        return None
    view = reader._storage.read(shard, reader.header.num_shards, offset, size)
    if _native.crc32c(view) != _native.unmask_crc(crc):
        reader.verify_key(key)  # raises the reader's checksum error
    return int.from_bytes(bytes(view), reader.header.endianness, signed=True)


def _summary(problems: List[str]) -> str:
    shown = "; ".join(problems[:_MAX_PROBLEMS_SHOWN])
    more = len(problems) - _MAX_PROBLEMS_SHOWN
    return shown + (f" (and {more} more)" if more > 0 else "")


def _verify_entries(reader, placed: Optional[Dict[bytes, tuple]] = None) -> List[str]:
    """Checks the CRC32C of every entry that holds data. Numeric payloads are checked here
    directly (one native CRC call, which runs without the GIL, per entry); strings and
    variants, whose CRC covers more than the bytes, through the reader."""
    idx = reader._index
    storage = reader._storage
    num_shards = reader.header.num_shards
    crc32c, unmask = _native.crc32c, _native.unmask_crc
    sizes = _native.dtype_sizes
    problems: List[str] = []
    for raw in idx.raw_keys():
        try:
            e = placed[raw] if placed is not None else idx.entry(raw)
            dtype, shard, offset, size, crc, slices, n = e[0], e[2], e[3], e[4], e[5], e[6], e[7]
            if slices:
                continue  # a partitioned tensor: its slices are checked as entries
            itemsize = sizes[dtype] if 0 <= dtype < len(sizes) else -1
            if itemsize > 0 and size == n * itemsize and 0 <= shard < num_shards:
                view = storage.read(shard, num_shards, offset, size)
                if crc32c(view) != unmask(crc):
                    reader.verify_key(raw)  # raises with the reader's full message
            else:
                reader.verify_key(raw)
        except Exception as err:  # noqa: BLE001 - damage of one key is reported
            text = _describe_exception(err)
            if text not in problems:
                problems.append(text)
    return problems


def _describe(reader, storage, task: _Checkpoint, opts: _Options) -> list:
    idx = reader._index
    # The sums come from one native pass; rows per key are built only where needed.
    n_keys, parameters, n_errors, n_partitioned, codes, need = idx.totals()
    loc_matches = opts.matches(task.location)
    if opts.match is not None and not opts.keys and not loc_matches and \
            not any(opts.match.search(k) for k in idx.keys()):
        return []

    placed: Optional[Dict[bytes, tuple]] = {} if opts.verify else None
    problems, bad_shards, shard_bytes = _shard_problems(reader, storage, need, placed)
    if n_errors:
        problems.extend(f"key {r[0]}: {r[5]}" for r in idx.listing() if r[5])

    if opts.keys:
        return _key_records(reader, task, n_partitioned, bad_shards, problems, opts,
                            loc_matches)

    kind = task.kind or ("object-based" if OBJECT_GRAPH_KEY in idx else "name-based")
    step = source = None
    for key, name in ((SAVE_COUNTER_KEY, "save_counter"), (GLOBAL_STEP_KEY, "global_step")):
        if key in idx and not idx.is_hidden(key):
            if bad_shards:
                break  # the value may be in a missing shard; said in the problems
            try:
                step = _read_step(reader, key)
            except CheckpointError as e:
                problems.append(f"{key}: {e}")
            if step is not None:
                source = name
            break
    if step is None:
        m = _STEP_SUFFIX_RE.search(posixpath.basename(task.name))
        if m:
            step, source = int(m.group(1)), "suffix"

    if opts.verify:
        for p in _verify_entries(reader, placed):
            if p not in problems:
                problems.append(p)

    rec = Record("checkpoint", task.location, task.name, kind=kind, keys=n_keys,
                 parameters=parameters,
                 bytes=memoryview(reader._index_buffer).nbytes + shard_bytes,
                 dtypes=dict(sorted((_dtype_name(c), k) for c, k in codes.items())),
                 shards=reader.header.num_shards, step=step, step_source=source)
    if problems:
        rec.status, rec.error = "error", _summary(problems)
    return [rec]


def _key_records(reader, task: _Checkpoint, n_partitioned: int, bad_shards: Dict[int, str],
                 problems: List[str], opts: _Options, loc_matches: bool) -> list:
    # Built natively, without a Python-level call per key: a scan lists every key it meets.
    out = reader._index.key_records(KeyRecord, ("key", task.location, task.name),
                                    _DTYPE_NAMES, _dtype_name)
    if opts.match is not None and not loc_matches:
        out = [r for r in out if opts.match.search(r[3])]
    if (n_partitioned and any(r[8] for r in out)) or bad_shards or opts.verify:
        out = [_key_details(reader, rec, bad_shards, opts) for rec in out]
    # Damage of the checkpoint as a whole (shards, entries) also shows as its own record.
    unattributed = [p for p in problems if not p.startswith("key ")]
    if unattributed and (loc_matches or out):
        rec = _error("checkpoint", task.location, task.name, _summary(unattributed))
        rec.kind = task.kind or ("object-based" if OBJECT_GRAPH_KEY in reader._index
                                 else "name-based")
        out.append(rec)
    return out


def _key_details(reader, rec: KeyRecord, bad_shards: Dict[int, str],
                 opts: _Options) -> KeyRecord:
    """What a key record needs beyond the listing: the bytes of a partitioned tensor (its
    slices'), damage from a missing or truncated shard, a checksum check."""
    if not rec.ok:
        return rec
    idx = reader._index
    e = idx.entry(rec.key)
    changes: Dict[str, Any] = {}
    if e[6]:
        subs = [idx.entry(_native.slice_key(rec.key, sl)) for sl in e[6]]
        changes["bytes"] = sum(sub[4] for sub in subs)
        shards = [sub[2] for sub in subs if sub[4]]
    else:
        shards = [e[2]] if e[4] else []
    broken = [bad_shards[s] for s in shards if s in bad_shards]
    if broken:
        changes.update(status="error", error=broken[0])
    elif opts.verify:
        try:
            reader.verify_key(rec.key)
        except Exception as err:  # noqa: BLE001
            changes.update(status="error", error=_describe_exception(err))
    return rec._replace(**changes) if changes else rec


# -- running many -------------------------------------------------------------------------

def _run_chunk(tasks: List[Task], opts: _Options) -> List[Any]:
    return [r for t in tasks for r in _run_task(t, opts)]


def _pool(jobs: int, remote: bool):
    """Worker processes for checkpoints in files: reading small tensors is mostly Python
    work, which threads cannot share out (each checksum releases the GIL only briefly, and
    handing it back and forth costs more than it saves). Threads for object stores, where
    the time goes in waiting for the network, and where fork is not available."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

    if not remote and "fork" in multiprocessing.get_all_start_methods():
        return ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork"))
    return ThreadPoolExecutor(jobs, thread_name_prefix="tfckpt-scan")


#: With jobs > 1, a scan works on its own this long before it starts its workers: starting
#: them costs more than a short scan takes (tens of milliseconds for worker processes).
_INLINE_SECONDS = 0.02
_clock = time.perf_counter


def _ordered_map(fn: Callable, items: Iterable, jobs: int, *, remote: bool = False,
                 chunk: int = 16) -> Iterator:
    """fn over chunks of `chunk` items on `jobs` workers; results in input order, at most
    4 chunks per worker in flight, so memory stays bounded. The first items are done
    here, one by one, until _INLINE_SECONDS have passed: workers start only for the rest."""
    from itertools import islice

    items = iter(items)
    deadline = _clock() + _INLINE_SECONDS
    for it in items:
        yield fn([it])
        if jobs > 1 and _clock() >= deadline:
            break
    else:
        return
    window = 4 * jobs
    pending: deque = deque()
    with _pool(jobs, remote) as pool:
        try:
            while True:
                batch = list(islice(items, chunk))
                if not batch:
                    break
                pending.append(pool.submit(fn, batch))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for f in pending:
                f.cancel()


def _options(keys, match, verify, storage_options, max_member_bytes) -> _Options:
    if isinstance(match, str):
        match = re.compile(match)
    return _Options(keys=keys, match=match, verify=verify,
                    storage_options=dict(storage_options or {}),
                    max_member_bytes=max_member_bytes)


def _as_paths(paths) -> List[str]:
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    return [os.fspath(p) for p in paths]


def scan(paths: Union[str, "os.PathLike[str]", Sequence[Union[str, "os.PathLike[str]"]]], *,
         keys: bool = False, match: Union[str, Pattern, None] = None, verify: bool = False,
         jobs: int = 1, storage_options: Optional[Dict[str, Any]] = None,
         max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES) -> Iterator[Record]:
    """Finds every checkpoint under `paths` and yields one :class:`Record` per finding.

    `paths` are directories, checkpoint prefixes or ``.index`` files, ``checkpoint`` state
    files, archives (``.tar``, ``.tar.gz``/``.tgz``, ``.zip``, recognised by content) or
    fsspec URLs (``s3://bucket/runs/``, ``http://host/dir/``, ``memory://x``;
    `storage_options` go to fsspec). With `keys`, one record per key instead of per
    checkpoint; `match` (a regular expression) keeps checkpoints whose location or any key
    matches (with `keys`: keys that match, or all keys of a checkpoint whose location
    does); `verify` checks every checksum. `jobs` > 1 scans with that many workers
    (processes for files, threads for URLs); records come in the same order either way::

        bad = [r for r in tfckpt.scan("runs/", verify=True, jobs=4) if not r.ok]

    A path that does not exist raises :class:`NotACheckpointError` at once; everything
    wrong with what is found is reported in the records, never raised.
    """
    roots = _as_paths(paths)
    for p in roots:
        _check_root(p)
    opts = _options(keys, match, verify, storage_options, max_member_bytes)
    return _scan(roots, opts, max(1, int(jobs)))


def _scan(roots: List[str], opts: _Options, jobs: int) -> Iterator[Record]:
    from functools import partial

    tasks = _discover(roots, opts)
    remote = any(_is_url(r) for r in roots)
    for records in _ordered_map(partial(_run_chunk, opts=opts), tasks, jobs, remote=remote):
        yield from records


# -- on a Dask cluster --------------------------------------------------------------------

def _run_partition(tasks, opts: _Options, columns: Sequence[str]) -> List[Dict[str, Any]]:
    return [r.to_dict(columns) for t in tasks for r in _run_task(t, opts)]


def scan_to_dask(paths, *, keys: bool = False, match: Union[str, Pattern, None] = None,
                 verify: bool = False, storage_options: Optional[Dict[str, Any]] = None,
                 partition_size: int = 16,
                 max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES):
    """The same scan as :func:`scan`, as a ``dask.bag.Bag`` of record dicts (columns
    :data:`CHECKPOINT_FIELDS`, or :data:`KEY_FIELDS` with `keys`), in the same order.

    The client walks the directories (listing only); the workers open the checkpoints, so
    they must reach the same paths: object-store URLs, or a filesystem every worker mounts.
    A compressed tar is scanned whole by one worker. ``.to_dataframe()`` gives a Dask
    DataFrame::

        from dask.distributed import Client
        client = Client("tcp://scheduler:8786")
        df = tfckpt.scan_to_dask("s3://bucket/runs/", storage_options={"anon": False}).to_dataframe()
        df[df.status == "error"].compute()
    """
    import dask.bag as db

    roots = _as_paths(paths)
    for p in roots:
        _check_root(p)
    opts = _options(keys, match, verify, storage_options, max_member_bytes)
    tasks = list(_discover(roots, opts, for_dask=True))
    columns = KEY_FIELDS if keys else CHECKPOINT_FIELDS
    bag = db.from_sequence(tasks, partition_size=max(1, partition_size)) if tasks else \
        db.from_sequence([], npartitions=1)
    bag = bag.map_partitions(_run_partition, opts, columns)
    return _scan_bag_class()(bag.dask, bag.name, bag.npartitions, columns)


_SCAN_BAG = None


def dataframe_meta(keys: bool = False):
    """An empty pandas DataFrame with the columns and dtypes of scan records (nullable
    integers: a column holds None where a field does not apply)."""
    import pandas as pd

    ints = {"keys", "parameters", "bytes", "shards", "step", "checkpoints", "shard", "offset"}
    columns = KEY_FIELDS if keys else CHECKPOINT_FIELDS
    return pd.DataFrame({c: pd.Series([], dtype="Int64" if c in ints else
                                      "boolean" if c == "partitioned" else object)
                         for c in columns})


def _scan_bag_class():
    """A dask Bag whose ``to_dataframe()`` knows the records' columns and dtypes."""
    global _SCAN_BAG
    if _SCAN_BAG is None:
        import dask.bag as db

        class ScanBag(db.Bag):
            __slots__ = ("_columns",)

            def __init__(self, dsk, name, npartitions, columns=CHECKPOINT_FIELDS):
                super().__init__(dsk, name, npartitions)
                self._columns = columns

            def to_dataframe(self, meta=None, columns=None, optimize_graph=True):
                if meta is None and columns is None:
                    meta = dataframe_meta(keys=self._columns == KEY_FIELDS)
                return super().to_dataframe(meta=meta, columns=columns,
                                            optimize_graph=optimize_graph)

        _SCAN_BAG = ScanBag
    return _SCAN_BAG


# -- output -------------------------------------------------------------------------------

FORMATS = ("table", "jsonl", "csv", "parquet")


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v, separators=(",", ":"), sort_keys=isinstance(v, dict))
    return str(v)


class _JsonlWriter:
    def __init__(self, out: IO[str], columns: Sequence[str]) -> None:
        self.out, self.columns = out, columns

    def write(self, rec: Record) -> None:
        self.out.write(json.dumps(rec.to_dict(self.columns), ensure_ascii=False) + "\n")

    def close(self) -> None:
        pass


class _CsvWriter:
    def __init__(self, out: IO[str], columns: Sequence[str]) -> None:
        self.columns = columns
        self.w = csv.writer(out, lineterminator="\n")
        self.w.writerow(columns)

    def write(self, rec: Record) -> None:
        self.w.writerow([_cell(getattr(rec, c, None)) for c in self.columns])

    def close(self) -> None:
        pass


class _ParquetWriter:
    """Parquet through pyarrow, written in row groups as records arrive."""

    _BATCH = 4096

    def __init__(self, path: str, columns: Sequence[str]) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ImportError("--format parquet needs pyarrow, which is not installed: "
                              "pip install pyarrow (or tfckpt[parquet])") from None
        self.pa = pa
        types = {"keys": pa.int64(), "parameters": pa.int64(), "bytes": pa.int64(),
                 "shards": pa.int64(), "step": pa.int64(), "checkpoints": pa.int64(),
                 "shard": pa.int64(), "offset": pa.int64(), "partitioned": pa.bool_(),
                 "dtypes": pa.map_(pa.string(), pa.int64()), "shape": pa.list_(pa.int64())}
        self.columns = columns
        self.schema = pa.schema([(c, types.get(c, pa.string())) for c in columns])
        self.writer = pq.ParquetWriter(path, self.schema)
        self.rows: List[Dict[str, Any]] = []

    def write(self, rec: Record) -> None:
        d = rec.to_dict(self.columns)
        if d.get("dtypes") is not None:
            d["dtypes"] = list(d["dtypes"].items())
        self.rows.append(d)
        if len(self.rows) >= self._BATCH:
            self._flush()

    def _flush(self) -> None:
        if self.rows:
            self.writer.write_table(self.pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows = []

    def close(self) -> None:
        self._flush()
        self.writer.close()


def _human_bytes(n: Optional[int]) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


class _TableWriter:
    """A readable table, streamed: fixed-width columns, the variable-width ones last."""

    def __init__(self, out: IO[str], columns: Sequence[str]) -> None:
        self.out = out
        self.keys_view = "key" in columns
        if self.keys_view:
            out.write(f"{'STATUS':<6}  {'DTYPE':<10} {'SHAPE':<18} {'PARAMETERS':>12} "
                      f"{'BYTES':>10}  LOCATION  KEY\n")
        else:
            out.write(f"{'STATUS':<6}  {'KIND':<12} {'KEYS':>6} {'PARAMETERS':>13} "
                      f"{'BYTES':>10} {'SHARDS':>6} {'STEP':>10}  LOCATION\n")

    def write(self, rec: Record) -> None:
        status = "ok" if rec.ok else "ERROR"
        if rec.record == "key":
            shape = "[" + ",".join(str(d) for d in rec.shape or []) + "]"
            line = (f"{status:<6}  {rec.dtype or '-':<10} {shape:<18} "
                    f"{rec.parameters if rec.parameters is not None else '-':>12} "
                    f"{_human_bytes(rec.bytes):>10}  {rec.location}  {rec.key}")
        elif rec.record == "checkpoint":
            step = "-" if rec.step is None else str(rec.step)
            line = (f"{status:<6}  {rec.kind or '-':<12} "
                    f"{rec.keys if rec.keys is not None else '-':>6} "
                    f"{rec.parameters if rec.parameters is not None else '-':>13} "
                    f"{_human_bytes(rec.bytes):>10} "
                    f"{rec.shards if rec.shards is not None else '-':>6} {step:>10}  "
                    f"{rec.location}")
            if rec.dtypes:
                line += "  (" + ", ".join(f"{k} x{v}" for k, v in rec.dtypes.items()) + ")"
        else:
            what = "state file" if rec.record == "state" else "path"
            line = f"{status:<6}  {what:<12} {'':>6} {'':>13} {'':>10} {'':>6} {'':>10}  " \
                   f"{rec.location}"
            if rec.latest:
                line += f"  latest: {rec.latest}"
        if rec.error:
            line += f"\n        error: {rec.error}"
        self.out.write(line + "\n")

    def close(self) -> None:
        pass


def record_writer(fmt: str, out: Union[IO[str], str], *, keys: bool = False):
    """A writer for records in `fmt` (one of :data:`FORMATS`): ``write(record)`` as they
    come, then ``close()``. `out` is a text stream, or a file path for ``parquet``."""
    columns = KEY_FIELDS if keys else CHECKPOINT_FIELDS
    if fmt == "jsonl":
        return _JsonlWriter(out, columns)
    if fmt == "csv":
        return _CsvWriter(out, columns)
    if fmt == "table":
        return _TableWriter(out, columns)
    if fmt == "parquet":
        if not isinstance(out, (str, os.PathLike)):
            raise ValueError("parquet output needs a file path (--output FILE)")
        return _ParquetWriter(os.fspath(out), columns)
    raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
