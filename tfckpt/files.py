"""What the user pointed at -> a checkpoint prefix, or a clear error.

Accepted: a prefix (``ckpt-3``), its ``.index`` or a ``.data-*`` file, a directory with a
``checkpoint`` state file (resolved as ``tf.train.latest_checkpoint`` does), the state file
itself, a SavedModel directory or its ``variables/`` directory. Format V1 checkpoints too:
a V1 file, a sharded V1 pattern (``model.ckpt-?????-of-00003``, or any glob of V1 files),
one shard file of it, or a directory or state file naming one. Anything else gets an error
that says what the file is instead, where that can be told.
"""

from __future__ import annotations

import errno
import glob
import os
import re
import stat
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from .errors import (
    GitLfsPointerError,
    MissingShardError,
    NotACheckpointError,
    UnreadableError,
    UnsupportedCheckpointError,
)

__all__ = [
    "is_url",
    "FILE_URL",
    "locate",
    "Located",
    "resolve_prefix",
    "data_filename",
    "read_checkpoint_state",
    "parse_checkpoint_state",
    "sniff",
    "find_shard",
    "STATE_FILE",
    "INDEX_SUFFIX",
    "MAX_STATE_BYTES",
    "TABLE_MAGIC",
    "INDEX_NAME_RE",
    "DATA_NAME_RE",
    "TEMP_NAME_RE",
    "STATE_TEMP_NAME_RE",
    "COMPRESSION_MAGICS",
    "ZIP_MAGICS",
    "HDF5_MAGIC",
    "GIT_LFS_MAGIC",
    "GIT_LFS_ADVICE",
    "check_git_lfs_pointer",
    "is_table_file",
    "v1_group_name",
    "looks_like_v1_name",
    "file_kind",
    "open_regular",
    "read_regular",
    "identity_of",
    "commit_lock_path",
]

FILE_URL = "file://"
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(path: "str | os.PathLike[str]") -> bool:
    """Whether `path` is read through fsspec (a URL other than ``file://``; see
    tfckpt.remote)."""
    text = os.fspath(path)
    return (
        isinstance(text, str)
        and "://" in text  # most paths are not URLs: no regular expression for them
        and bool(_URL_RE.match(text))
        and not text.startswith(FILE_URL)
    )


# -- the names and magics of checkpoint files (FORMAT: docs/format.md, "File naming") -------

#: The state file ``tf.train.CheckpointManager`` / ``Saver`` keep beside their checkpoints.
STATE_FILE = "checkpoint"
#: A state file larger than this is not one (real ones are a few hundred bytes).
MAX_STATE_BYTES = 1 << 20
INDEX_SUFFIX = ".index"
#: ``<prefix>.index``
INDEX_NAME_RE = re.compile(r"^(?P<prefix>.+)\.index$", re.S)
#: ``<prefix>.data-NNNNN-of-MMMMM`` (``%s.data-%05d-of-%05d``; more digits past 99999)
DATA_NAME_RE = re.compile(r"^(?P<prefix>.+)\.data-(?P<shard>\d{5,})-of-(?P<num>\d{5,})$", re.S)
#: A file a save writes under a temporary name and renames when it is done.
TEMP_NAME_RE = re.compile(r"^(?P<prefix>.+)\.(?:index|data-\d{5,}-of-\d{5,})\.tempstate\d+$", re.S)
#: The temporary name of a state file being rewritten.
STATE_TEMP_NAME_RE = re.compile(r"^checkpoint\.tmp[0-9a-f]+$")
#: A V1 shard file (ShardedFilename: "%s-%05d-of-%05d") and the pattern naming all of them
#: (ShardedFilespec: "%s-?????-of-%05d").
_V1_SHARD_RE = re.compile(r"^(?P<base>.*)-(?P<shard>\d{5,})-of-(?P<num>\d{5,})$")
_V1_SPEC_RE = re.compile(r"^(?P<base>.*)-\?{5}-of-(?P<num>\d{5,})$")
#: The last 8 bytes of every table file (``.index``, format V1 files).
TABLE_MAGIC = bytes.fromhex("57fb808b247547db")
#: The first bytes of compressed files, by compression.
COMPRESSION_MAGICS = {
    "gzip": b"\x1f\x8b",
    "bzip2": b"BZh",
    "xz": b"\xfd7zXZ\x00",
    "zstd": b"\x28\xb5\x2f\xfd",
}
#: A zip's first bytes: a local file header, or the end record of an empty archive.
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
GIT_LFS_MAGIC = b"version https://git-lfs.github.com/spec/"


def commit_lock_path(prefix: str) -> str:
    """The lock file a writer holds (created exclusively) while it commits at `prefix`."""
    return prefix + ".index.commit-lock"


# -- opening files that may not be files -------------------------------------------------
# A FIFO blocks open() until a writer appears, a socket cannot be opened, a device may
# never end: every file tfckpt reads is opened without blocking and refused unless it is a
# regular file, with a message that says what it is.

_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISLNK, "a symbolic link"),
)


def file_kind(mode: int) -> str:
    """What a file of st_mode `mode` is, in words ("a FIFO (named pipe)", "a regular file")."""
    for test, what in _KINDS:
        if test(mode):
            return what
    return "a regular file" if stat.S_ISREG(mode) else "a special file"


def identity_of(st: os.stat_result) -> Tuple[int, int, int, int]:
    """What says a file is still the one that was opened: device, inode, size, mtime."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def open_regular(path: str, what: str = "") -> Tuple[int, os.stat_result]:
    """Opens `path` for reading without ever blocking: ``(descriptor, its stat)``. Raises
    NotACheckpointError naming the kind of anything but a regular file (`what` names the
    role in the message, "data shard 0 of 2"), and OSError when it cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        if e.errno != errno.ENXIO:  # a socket (or a FIFO without a writer on some systems)
            raise
        try:
            kind = file_kind(os.stat(path).st_mode)
        except OSError:
            raise e from None
        raise NotACheckpointError(_not_regular(path, what, kind), path=path) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise NotACheckpointError(_not_regular(path, what, file_kind(st.st_mode)), path=path)
    return fd, st


def _not_regular(path: str, what: str, kind: str) -> str:
    role = f" ({what})" if what else ""
    return f"{path}{role} is {kind}, not a regular file; refused without reading it"


def read_regular(path: str, limit: int, what: str = "") -> Tuple[bytes, os.stat_result]:
    """The bytes of regular file `path`, read with :func:`open_regular`, never more than
    `limit` + 1 bytes (so the caller can tell a file that is too large)."""
    fd, st = open_regular(path, what)
    try:
        chunks = []
        got = 0
        while got <= limit:
            # Ask for what the file holds (+1 to see its end): a read allocates what it asks.
            want = max(st.st_size - got, 0) + 1 if st.st_size else 1 << 16
            chunk = os.read(fd, min(limit + 1 - got, want, 1 << 24))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks), st
    finally:
        os.close(fd)


def data_filename(prefix: str, shard_id: int, num_shards: int) -> str:
    """The name of data shard `shard_id` of `num_shards` (``%s.data-%05d-of-%05d``)."""
    return "%s.data-%05d-of-%05d" % (prefix, shard_id, num_shards)


def parse_checkpoint_state(data: bytes, where: str):
    """Parses the text of a ``checkpoint`` state file into a CheckpointState message;
    raises NotACheckpointError naming `where` if it is not one."""
    from google.protobuf import text_format

    from .proto import CheckpointState

    state = CheckpointState()
    try:
        text_format.Parse(data.decode("utf-8"), state)
    except (text_format.ParseError, UnicodeDecodeError) as e:
        raise NotACheckpointError(
            f"{where}: not a valid 'checkpoint' state file ({e})", path=where
        ) from None
    return state


def read_checkpoint_state(path: str):
    """Reads and parses a ``checkpoint`` state file (see :func:`parse_checkpoint_state`),
    reading no more than MAX_STATE_BYTES of it: a state file of gigabytes is refused."""
    raw, _ = read_regular(path, MAX_STATE_BYTES, "a 'checkpoint' state file")
    if len(raw) > MAX_STATE_BYTES:
        raise NotACheckpointError(
            f"{path}: not a valid 'checkpoint' state file (larger than {MAX_STATE_BYTES} "
            "bytes; real ones hold a few hundred)",
            path=path,
        )
    try:
        return parse_checkpoint_state(raw, path)
    except NotACheckpointError as e:
        raise NotACheckpointError(f"{e}; {sniff(path)}", path=path) from None


@dataclass(frozen=True)
class Located:
    """A checkpoint found on disk.

    ``format`` is "V2" (``prefix`` is the bundle prefix) or "V1" (``prefix`` is the V1 file,
    or the pattern naming its shards, as TensorFlow's saver returns it; ``files`` are the
    table files, sorted)."""

    format: str
    prefix: str
    files: Tuple[str, ...] = ()


def _v2(prefix: str) -> Located:
    return Located("V2", prefix)


def _has_glob(path: str) -> bool:
    return any(c in path for c in "*?[")


def _v1_shard_name(base: str, shard: int, num_text: str) -> str:
    return "%s-%05d-of-%s" % (base, shard, num_text)


def _v1_present_shards(base: str, num_text: str) -> List[str]:
    """The shard files of `base` that exist (found by listing, not by trying every name:
    the count comes from a file name and may be absurd)."""
    directory = os.path.dirname(base) or "."
    name = re.compile(re.escape(os.path.basename(base)) + r"-(\d{5,})-of-" + re.escape(num_text))
    try:
        entries = os.listdir(directory)
    except OSError:
        return []
    num = int(num_text)
    found = []
    for e in entries:
        m = name.fullmatch(e)
        if m and int(m.group(1)) < num:
            path = os.path.join(os.path.dirname(base), e)
            if path == _v1_shard_name(base, int(m.group(1)), num_text) and os.path.isfile(path):
                found.append(path)
    return sorted(found)


def _v1_shards(base: str, num_text: str) -> Located:
    """All shards of a sharded V1 checkpoint, every one required to exist."""
    num = int(num_text)
    files = _v1_present_shards(base, num_text)
    if len(files) != num:
        present = set(files)
        i = next(i for i in range(num) if _v1_shard_name(base, i, num_text) not in present)
        missing = _v1_shard_name(base, i, num_text)
        raise MissingShardError(
            f"V1 checkpoint {base}-?????-of-{num_text}: shard {i} of {num} is missing: "
            f"{missing} does not exist ({len(files)} of {num} shard files found)",
            path=missing,
            shard=i,
        )
    return Located("V1", f"{base}-?????-of-{num_text}", tuple(files))


def _v1_file(path: str) -> Located:
    """A V1 table file: a single-file checkpoint, or one shard of a sharded one (then the
    whole set, as a .data-* file of format V2 stands for its whole checkpoint)."""
    m = _V1_SHARD_RE.match(path)
    if (
        m
        and path == _v1_shard_name(m.group("base"), int(m.group("shard")), m.group("num"))
        and int(m.group("shard")) < int(m.group("num"))
    ):
        return _v1_shards(m.group("base"), m.group("num"))
    return Located("V1", path, (path,))


def _v1_pattern(pattern: str, allow_glob: bool = True) -> Optional[Located]:
    """A glob naming V1 table files (TensorFlow's TensorSliceReader takes one), or None.
    Without `allow_glob` (a path read from a file) only the sharded pattern is expanded,
    by listing its directory: a path from a file is never handed to glob."""
    m = _V1_SPEC_RE.match(pattern)
    if m:
        present = _v1_present_shards(m.group("base"), m.group("num"))
        if present and _is_table(present[0]):
            return _v1_shards(m.group("base"), m.group("num"))  # every shard, or an error
    if not allow_glob or not _has_glob(pattern):
        return None
    files = sorted(f for f in glob.glob(pattern) if os.path.isfile(f))
    if not files:
        return None
    not_v1 = [f for f in files if f.endswith(".index") or DATA_NAME_RE.match(f) or not _is_table(f)]
    if not_v1:
        what = (
            "it belongs to a format V2 checkpoint: give its prefix"
            if not_v1[0].endswith(".index") or DATA_NAME_RE.match(not_v1[0])
            else sniff(not_v1[0])
        )
        raise NotACheckpointError(
            f"{pattern} matches {len(files)} file{'s' if len(files) != 1 else ''}, but "
            f"{not_v1[0]} is not a V1 "
            f"checkpoint file: {what}"
        )
    return Located("V1", pattern, tuple(files))


def _v1_in_directory(directory: str) -> List[Located]:
    """The V1 checkpoints among the files of a directory (shards grouped), by name."""
    found: Dict[str, str] = {}
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    for name in names:
        path = os.path.join(directory, name)
        if (
            name.startswith(".")
            or name.endswith(".index")
            or DATA_NAME_RE.match(name)
            or not os.path.isfile(path)
            or not _is_table(path)
        ):
            continue
        m = _V1_SHARD_RE.match(path)
        key = f"{m.group('base')}-?????-of-{m.group('num')}" if m else path
        found.setdefault(key, path)
    return [_v1_file(path) for _, path in sorted(found.items())]


def _from_state_file(state_path: str) -> Located:
    directory = os.path.dirname(state_path) or "."
    state = read_checkpoint_state(state_path)
    if not state.model_checkpoint_path:
        raise NotACheckpointError(
            f"{state_path}: invalid checkpoint state: model_checkpoint_path is empty"
        )
    recorded = state.model_checkpoint_path
    # The last component of the recorded path, '/' or '\\' separated (a Windows path).
    last = re.split(r"[/\\]", recorded)[-1]
    beside = os.path.join(directory, last)
    if not os.path.isabs(recorded):
        # As tf.train.get_checkpoint_state: relative to the state file's directory; then
        # the documented fallback, the last component beside the state file.
        candidates = [os.path.join(directory, recorded)]
        if last and beside not in candidates:
            candidates.append(beside)
    else:
        # A TF1 Saver records absolute paths; after the directory is moved or copied they
        # point elsewhere. The same base name beside the state file is the checkpoint the
        # user pointed at; the recorded path is the fallback.
        candidates = [beside, recorded]
    for prefix in candidates:
        if os.path.isfile(prefix + ".index"):
            return _v2(prefix)
        # latest_checkpoint accepts <path> itself for format V1 (FORMAT.md 1.4): a file or
        # the pattern of a sharded save.
        if os.path.isfile(prefix) and _is_table(prefix):
            return _v1_file(prefix)
        v1 = _v1_pattern(prefix, allow_glob=False)
        if v1 is not None:
            return v1
    raise NotACheckpointError(
        f"{state_path} names checkpoint {state.model_checkpoint_path!r}, but "
        f"{candidates[0]}.index does not exist" + _listing_hint(directory)
    )


def _listing_hint(directory: str) -> str:
    found = sorted(glob.glob(os.path.join(glob.escape(directory), "*.index")))
    if not found:
        return ""
    names = ", ".join(os.path.basename(f)[: -len(".index")] for f in found[:5])
    more = f" and {len(found) - 5} more" if len(found) > 5 else ""
    return f"; checkpoints present there: {names}{more}"


def is_table_file(path: str) -> bool:
    """Whether `path` is a table file (a V1 checkpoint file, or an index) by its footer:
    one small read, for a scan that meets files without knowing what they are."""
    return _is_table(path)


def v1_group_name(name: str) -> str:
    """The name a V1 checkpoint file is known by: a shard ``m-00001-of-00003`` by the
    pattern of its set (``m-?????-of-00003``, as the saver names it), another by itself."""
    m = _V1_SHARD_RE.match(name)
    return f"{m.group('base')}-?????-of-{m.group('num')}" if m else name


def looks_like_v1_name(name: str) -> bool:
    """Whether a file name is one a V1 saver gives: a shard of a set, or a ``*ckpt*``."""
    return bool(_V1_SHARD_RE.match(name)) or "ckpt" in name


def _is_table(path: str) -> bool:
    try:
        fd, st = open_regular(path)
    except (OSError, NotACheckpointError):
        return False
    try:
        return st.st_size >= 48 and os.pread(fd, 8, st.st_size - 8) == TABLE_MAGIC
    except OSError:
        return False
    finally:
        os.close(fd)


#: What to say about a git-lfs pointer found where a checkpoint file should be.
GIT_LFS_ADVICE = (
    "it is a git-lfs pointer file, not the checkpoint itself; run "
    "'git lfs pull' to fetch the real file"
)


def check_git_lfs_pointer(path: str, buffer: Any, shard: Optional[int] = None) -> None:
    """Raises GitLfsPointerError when `buffer` (the start of file `path`: bytes or a
    mapping) is a git-lfs pointer rather than the file itself: the commonest way to get a
    broken checkpoint from a repository, whatever the file is named."""
    n = len(GIT_LFS_MAGIC)
    head = buffer[:n] if isinstance(buffer, bytes) else bytes(memoryview(buffer)[:n])
    if head == GIT_LFS_MAGIC:
        raise GitLfsPointerError(f"{path}: {GIT_LFS_ADVICE}", path=path, shard=shard)


def sniff(path: str) -> str:
    """Says in words what kind of file `path` is, for error messages."""
    try:
        fd, st = open_regular(path)
    except NotACheckpointError:
        return f"it is {file_kind(os.stat(path).st_mode)}, not a regular file"
    except OSError as e:
        return f"it cannot be read ({e.strerror})"
    try:
        size = st.st_size
        head = os.pread(fd, 512, 0)
    except OSError as e:
        return f"it cannot be read ({e.strerror})"
    finally:
        os.close(fd)
    name = os.path.basename(path)
    if size == 0:
        return "it is an empty file"
    if head.startswith(HDF5_MAGIC):
        return (
            "it is an HDF5 file (Keras .h5 / .weights.h5 weights), not a TensorFlow "
            "checkpoint; read it with h5py"
        )
    if head.startswith(ZIP_MAGICS[0]):
        if name.endswith(".keras"):
            return (
                "it is a Keras v3 archive (.keras zip of config and .weights.h5), not a checkpoint"
            )
        return "it is a zip archive"
    for what, magic in COMPRESSION_MAGICS.items():
        if head.startswith(magic):
            return (
                f"it is a {size}-byte {what}-compressed file, not a tar archive that can "
                "be read (damaged or truncated, or it compresses something else)"
            )
    if head.startswith(GIT_LFS_MAGIC):
        return GIT_LFS_ADVICE
    if _is_table(path):
        if name.endswith(".index"):
            return "it is a table file"
        return (
            "it is a format V1 checkpoint (a single table file written by "
            "tf.compat.v1.train.Saver with write_version=V1)"
        )
    if name == "saved_model.pb" or name.endswith(".meta"):
        return "it is a graph (MetaGraphDef / SavedModel protobuf) and holds no variable values"
    if b"\x00" not in head:
        try:
            head.decode("utf-8")
            return "it is a text file"
        except UnicodeDecodeError:
            pass
    return f"it is a {size}-byte file of unknown kind"


def resolve_prefix(path: "str | os.PathLike[str]") -> str:
    """Turns whatever the user pointed at into a checkpoint prefix whose .index exists.
    A format V1 checkpoint is refused here: only :func:`tfckpt.open` reads it."""
    found = locate(path)
    if found.format != "V2":
        raise UnsupportedCheckpointError(
            f"{found.prefix}: this is a format V1 checkpoint (SavedTensorSlices tables written "
            "by tf.compat.v1.train.Saver with write_version=V1); tfckpt.open reads it, but "
            "this operation needs format V2: convert it first with "
            f"'tfckpt convert {found.prefix} OUT --to v2'"
        )
    return found.prefix


def _check_listable(path: str) -> None:
    """Raises UnreadableError when directory `path` cannot be listed: the searches below
    would find nothing in it and call it "a directory without checkpoints"."""
    try:
        os.scandir(path).close()
    except OSError as e:
        raise UnreadableError(
            f"Cannot read directory {path}: {e.strerror}", path=path, reason=e.strerror
        ) from None


def locate(path: "str | os.PathLike[str]") -> Located:
    """Finds the checkpoint `path` points at: a V2 prefix, or the files of a V1 checkpoint."""
    path = os.fspath(path)
    looked: List[str] = []
    if os.path.isfile(path + ".index"):  # the common case first: a prefix
        return _v2(path)
    _refuse_special(path + ".index")
    _refuse_special(path)

    if os.path.isdir(path):
        _check_listable(path)
        state = os.path.join(path, STATE_FILE)
        if os.path.isfile(state):
            return _from_state_file(state)
        for sub in ("variables/variables", "variables"):
            prefix = os.path.join(path, sub)
            if os.path.isfile(prefix + ".index"):
                return _v2(prefix)
        found = sorted(glob.glob(os.path.join(glob.escape(path), "*.index")))
        if found and not any(os.path.isfile(f) for f in found):
            _refuse_special(found[0])
        found = [f for f in found if os.path.isfile(f)]
        if len(found) == 1:
            return _v2(found[0][: -len(".index")])
        if found:
            raise NotACheckpointError(
                f"{path} is a directory with {len(found)} checkpoints and no 'checkpoint' "
                "state file saying which is latest; pass one of: "
                + ", ".join(f[: -len(".index")] for f in found[:10])
            )
        v1 = _v1_in_directory(path)
        if len(v1) == 1:
            return v1[0]
        if v1:
            raise NotACheckpointError(
                f"{path} is a directory with {len(v1)} format V1 checkpoints and no "
                "'checkpoint' state file saying which is latest; pass one of: "
                + ", ".join(c.prefix for c in v1[:10])
            )
        raise NotACheckpointError(
            f"{path} is a directory without checkpoints: looked for a 'checkpoint' state "
            "file, a SavedModel's variables/variables.index, *.index files and format V1 "
            "files"
        )

    if os.path.basename(path) == STATE_FILE and os.path.isfile(path):
        return _from_state_file(path)
    if path.endswith(".index") and os.path.isfile(path):
        return _v2(path[: -len(".index")])
    m = DATA_NAME_RE.match(path)
    if m and os.path.isfile(m.group("prefix") + ".index"):
        return _v2(m.group("prefix"))
    looked.append(path + ".index")

    if os.path.isfile(path):
        if _is_table(path):
            return _v1_file(path)
        if m:
            raise NotACheckpointError(
                f"{path} is a data shard, but its index {m.group('prefix')}.index is missing"
            )
        raise NotACheckpointError(f"{path} is not a checkpoint: {sniff(path)}")
    pattern = _v1_pattern(path)
    if pattern is not None:
        return pattern

    hint = _listing_hint(os.path.dirname(path) or ".")
    matches = sorted(glob.glob(glob.escape(path) + "*.index"))
    if matches:
        hint = "; did you mean " + ", ".join(x[: -len(".index")] for x in matches[:5])
    raise NotACheckpointError(f"No checkpoint at {path}: neither it nor {looked[0]} exists" + hint)


def _refuse_special(path: str) -> None:
    """Raises NotACheckpointError if `path` exists and is neither a regular file nor a
    directory (a FIFO would block the open that reads it)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise NotACheckpointError(_not_regular(path, "", file_kind(mode)), path=path)


def find_shard(prefix: str, shard_id: int, num_shards: int) -> Optional[str]:
    """The path of a data shard, or None if it is not there."""
    name = data_filename(prefix, shard_id, num_shards)
    return name if os.path.isfile(name) else None
