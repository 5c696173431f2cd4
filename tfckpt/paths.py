"""What the user pointed at -> a checkpoint prefix, or a clear error.

Accepted: a prefix (``ckpt-3``), its ``.index`` or a ``.data-*`` file, a directory with a
``checkpoint`` state file (resolved as ``tf.train.latest_checkpoint`` does), the state file
itself, a SavedModel directory or its ``variables/`` directory. Anything else gets an error
that says what the file is instead, where that can be told.
"""

from __future__ import annotations

import glob
import os
import re
from typing import List, Optional

from .errors import NotACheckpointError, UnsupportedCheckpointError

__all__ = ["resolve_prefix", "data_filename", "read_checkpoint_state", "sniff"]

_DATA_RE = re.compile(r"^(?P<prefix>.*)\.data-(?P<shard>\d{5,})-of-(?P<num>\d{5,})$")
_TABLE_MAGIC = bytes.fromhex("57fb808b247547db")
STATE_FILE = "checkpoint"


def data_filename(prefix: str, shard_id: int, num_shards: int) -> str:
    """The name of data shard `shard_id` of `num_shards` (``%s.data-%05d-of-%05d``)."""
    return "%s.data-%05d-of-%05d" % (prefix, shard_id, num_shards)


def read_checkpoint_state(path: str):
    """Parses a text-format ``checkpoint`` state file into a CheckpointState message."""
    from google.protobuf import text_format

    from .proto import CheckpointState

    with open(path, "rb") as f:
        raw = f.read()
    state = CheckpointState()
    try:
        text_format.Parse(raw.decode("utf-8"), state)
    except (text_format.ParseError, UnicodeDecodeError) as e:
        raise NotACheckpointError(
            f"{path}: not a valid 'checkpoint' state file ({e}); {sniff(path)}") from None
    return state


def _from_state_file(state_path: str) -> str:
    directory = os.path.dirname(state_path) or "."
    state = read_checkpoint_state(state_path)
    if not state.model_checkpoint_path:
        raise NotACheckpointError(
            f"{state_path}: invalid checkpoint state: model_checkpoint_path is empty")
    if not os.path.isabs(state.model_checkpoint_path):
        candidates = [os.path.join(directory, state.model_checkpoint_path)]
    else:
        # A TF1 Saver records absolute paths; after the directory is moved or copied they
        # point elsewhere. The same base name beside the state file is the checkpoint the
        # user pointed at; the recorded path is the fallback.
        candidates = [os.path.join(directory, os.path.basename(state.model_checkpoint_path)),
                      state.model_checkpoint_path]
    for prefix in candidates:
        if os.path.isfile(prefix + ".index"):
            return prefix
        if os.path.isfile(prefix) and _is_table(prefix):
            raise UnsupportedCheckpointError(
                f"{prefix}: this is a format V1 checkpoint (a single table file, "
                "written by tf.compat.v1.train.Saver with write_version=V1); "
                "tfckpt reads format V2 (.index + .data files)")
    raise NotACheckpointError(
        f"{state_path} names checkpoint {state.model_checkpoint_path!r}, but "
        f"{candidates[0]}.index does not exist"
        + _listing_hint(directory))


def _listing_hint(directory: str) -> str:
    found = sorted(glob.glob(os.path.join(glob.escape(directory), "*.index")))
    if not found:
        return ""
    names = ", ".join(os.path.basename(f)[: -len(".index")] for f in found[:5])
    more = f" and {len(found) - 5} more" if len(found) > 5 else ""
    return f"; checkpoints present there: {names}{more}"


def _is_table(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() < 48:
                return False
            f.seek(-8, os.SEEK_END)
            return f.read(8) == _TABLE_MAGIC
    except OSError:
        return False


def sniff(path: str) -> str:
    """Says in words what kind of file `path` is, for error messages."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as e:
        return f"it cannot be read ({e.strerror})"
    name = os.path.basename(path)
    if size == 0:
        return "it is an empty file"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return ("it is an HDF5 file (Keras .h5 / .weights.h5 weights), not a TensorFlow "
                "checkpoint; read it with h5py")
    if head.startswith(b"PK\x03\x04"):
        if name.endswith(".keras"):
            return "it is a Keras v3 archive (.keras zip of config and .weights.h5), not a checkpoint"
        return "it is a zip archive"
    if head.startswith(b"version https://git-lfs.github.com/spec/"):
        return ("it is a git-lfs pointer file, not the checkpoint itself; run "
                "'git lfs pull' to fetch the real file")
    if _is_table(path):
        if name.endswith(".index"):
            return "it is a table file"
        return ("it is a format V1 checkpoint (a single table file written by "
                "tf.compat.v1.train.Saver with write_version=V1)")
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
    """Turns whatever the user pointed at into a checkpoint prefix whose .index exists."""
    path = os.fspath(path)
    looked: List[str] = []
    if os.path.isfile(path + ".index"):  # the common case first: a prefix
        return path

    if os.path.isdir(path):
        state = os.path.join(path, STATE_FILE)
        if os.path.isfile(state):
            return _from_state_file(state)
        for sub in ("variables/variables", "variables"):
            prefix = os.path.join(path, sub)
            if os.path.isfile(prefix + ".index"):
                return prefix
        found = sorted(glob.glob(os.path.join(glob.escape(path), "*.index")))
        if len(found) == 1:
            return found[0][: -len(".index")]
        if found:
            raise NotACheckpointError(
                f"{path} is a directory with {len(found)} checkpoints and no 'checkpoint' "
                "state file saying which is latest; pass one of: "
                + ", ".join(f[: -len(".index")] for f in found[:10]))
        raise NotACheckpointError(
            f"{path} is a directory without checkpoints: looked for a 'checkpoint' state "
            "file, a SavedModel's variables/variables.index and *.index files")

    if os.path.basename(path) == STATE_FILE and os.path.isfile(path):
        return _from_state_file(path)
    if path.endswith(".index") and os.path.isfile(path):
        return path[: -len(".index")]
    m = _DATA_RE.match(path)
    if m and os.path.isfile(m.group("prefix") + ".index"):
        return m.group("prefix")
    if os.path.isfile(path + ".index"):
        return path
    looked.append(path + ".index")

    if os.path.isfile(path):
        if _is_table(path) and not path.endswith(".index"):
            raise UnsupportedCheckpointError(
                f"{path}: {sniff(path)}; tfckpt reads format V2 (.index + .data files)")
        if m:
            raise NotACheckpointError(
                f"{path} is a data shard, but its index {m.group('prefix')}.index is missing")
        raise NotACheckpointError(f"{path} is not a checkpoint: {sniff(path)}")

    hint = _listing_hint(os.path.dirname(path) or ".")
    matches = sorted(glob.glob(glob.escape(path) + "*.index"))
    if matches:
        hint = "; did you mean " + ", ".join(x[: -len(".index")] for x in matches[:5])
    raise NotACheckpointError(
        f"No checkpoint at {path}: neither it nor {looked[0]} exists" + hint)


def find_shard(prefix: str, shard_id: int, num_shards: int) -> Optional[str]:
    """The path of a data shard, or None if it is not there."""
    name = data_filename(prefix, shard_id, num_shards)
    return name if os.path.isfile(name) else None
