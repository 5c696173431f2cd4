"""One checkpoint opened by the location a scan names it: a path, or ``ARCHIVE!/MEMBER``
for a checkpoint inside an uncompressed tar or a zip, read in place as the scan reads it."""

from __future__ import annotations

import os
import posixpath
from typing import Any

from ..errors import CorruptCheckpointError, NotACheckpointError, UnsupportedCheckpointError
from ..files import DATA_NAME_RE, INDEX_SUFFIX, sniff, v1_group_name
from ..reader import Reader
from ..reader import open as open_checkpoint
from .archives import TooManyMembers, archive_kind, tar_tree, zip_tree
from .describe import archived_v1, make_storage
from .records import describe_exception
from .tasks import Options

__all__ = ["open_location", "ARCHIVE_SEPARATOR"]

#: Between an archive's path and a member's name in a location: ``run.tar!/ckpt-3``.
ARCHIVE_SEPARATOR = "!/"


def open_location(location: str) -> Any:
    """A reader of the checkpoint at `location`: what :func:`tfckpt.open` takes, or
    ``ARCHIVE!/PREFIX`` (the prefix, or its ``.index``, inside a tar or zip archive)."""
    archive, sep, member = location.partition(ARCHIVE_SEPARATOR)
    if not sep or os.path.exists(location) or not os.path.isfile(archive):
        return open_checkpoint(location)
    kind = archive_kind(archive)
    if kind == "tarz":
        raise UnsupportedCheckpointError(
            f"{archive} is a compressed tar, whose members cannot be read in place: unpack "
            "it, or 'tfckpt scan' it",
            path=archive,
        )
    if kind not in ("tar", "zip"):
        raise NotACheckpointError(
            f"{archive}: not a tar or zip archive: {sniff(archive)}", path=archive
        )
    try:
        tree = tar_tree(archive) if kind == "tar" else zip_tree(archive)
    except TooManyMembers as e:
        raise UnsupportedCheckpointError(f"{archive}: {e}", path=archive) from None
    except Exception as e:  # anything a damaged archive makes its reader raise
        raise CorruptCheckpointError(
            f"{archive}: damaged {kind} archive, its members cannot be listed: "
            f"{describe_exception(e)}",
            path=archive,
        ) from None
    if tree.problem and not tree.files:
        raise CorruptCheckpointError(f"{archive}: {tree.problem}", path=archive)
    prefix = member.strip("/")
    if prefix.endswith(INDEX_SUFFIX):
        prefix = prefix[: -len(INDEX_SUFFIX)]
    directory, base = posixpath.split(prefix)
    items = tree.dirs.get(directory, {})
    index = items.get(base + INDEX_SUFFIX)
    if index is None or index.type != "file":
        # A format V1 checkpoint: a table file, or a sharded set by its saver's pattern.
        names = [n for n, i in items.items() if i.type == "file" and v1_group_name(n) == base]
        spec = tree.v1_checkpoints(directory, names).get(base)
        if spec is not None:
            return archived_v1(f"{archive}{sep}{prefix}", spec)
        raise NotACheckpointError(
            f"No checkpoint index at {archive}{sep}{prefix}{INDEX_SUFFIX}", path=location
        )
    shards = {}
    for name, item in items.items():
        m = DATA_NAME_RE.match(name)
        if m and m.group("prefix") == base and item.type == "file":
            shards[name[len(base) :]] = item
    spec = tree.checkpoint_spec(prefix, index, shards)
    return Reader(storage=make_storage(spec, Options()))
