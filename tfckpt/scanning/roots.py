"""Roots: what a scan was pointed at (a directory, a checkpoint, a state file, an archive
or a URL) as the tasks it leads to."""

from __future__ import annotations

import os
import posixpath
from typing import Iterator, Sequence

from ..errors import CheckpointError, NotACheckpointError
from ..files import FILE_URL, INDEX_SUFFIX, STATE_FILE, sniff
from ..remote import DEFAULT_LIMITS, is_url, list_directory, path_exists
from .archives import TooManyMembers, archive_kind, compressed_tar_tasks, tar_tree, zip_tree
from .discover import dir_tasks, is_savedmodel_prefix, walk_tasks
from .records import describe_exception, error_record
from .tasks import Checkpoint, Done, Options, Task, WholeArchive
from .trees import FsspecTree, LocalTree, is_local_checkpoint

__all__ = ["is_url", "check_root", "root_tasks", "discover"]


def _local(path: str) -> str:
    return path[len(FILE_URL) :] if path.startswith(FILE_URL) else path


def check_root(path: str) -> None:
    """Raises NotACheckpointError unless `path` can be scanned: a URL (looked at when
    scanned), or a local path that exists or is a checkpoint prefix."""
    if is_url(path):
        return
    path = _local(path)
    if not (os.path.exists(path) or is_local_checkpoint(path)):
        raise NotACheckpointError(
            f"{path}: no such file or directory (nor a checkpoint prefix {path}{INDEX_SUFFIX})"
        )


def root_tasks(path: str, opts: Options, for_dask: bool = False) -> Iterator[Task]:
    """The tasks under one root. With `for_dask`, a compressed tar is one task (its
    members cannot be handed out before the stream is read)."""
    if is_url(path):
        yield from _fsspec_tasks(path, opts)
        return
    path = _local(path)
    if os.path.isdir(path):
        yield from walk_tasks(LocalTree(path))
        return
    if os.path.isfile(path):
        yield from _file_tasks(path, opts, for_dask)
        return
    if is_local_checkpoint(path):
        yield _single_checkpoint(path)
        return
    raise NotACheckpointError(f"{path}: no such file or directory")


def _file_tasks(path: str, opts: Options, for_dask: bool) -> Iterator[Task]:
    """A file given as a root: an index, a state file, an archive, or a checkpoint prefix
    that is also a file."""
    name = os.path.basename(path)
    if name.endswith(INDEX_SUFFIX):
        yield _single_checkpoint(path[: -len(INDEX_SUFFIX)])
        return
    if name == STATE_FILE:
        tree = LocalTree(os.path.dirname(path) or ".")
        for rel, items, _ in tree.walk():
            for t in dir_tasks(tree, rel, items or []):
                if isinstance(t, Done) and t.records[0].record == "state":
                    yield t
            return
    kind = archive_kind(path)
    if kind in ("tar", "zip"):
        yield from _archive_tasks(path, kind, opts.max_archive_members)
    elif kind == "tarz":
        if for_dask:
            yield WholeArchive(path)
        else:
            yield from compressed_tar_tasks(path, opts)
    elif is_local_checkpoint(path):
        yield _single_checkpoint(path)
    else:
        yield Done(
            [
                error_record(
                    "path",
                    path,
                    name,
                    f"not a checkpoint, a directory or an archive: {sniff(path)}",
                )
            ]
        )


def _archive_tasks(path: str, kind: str, max_members: int) -> Iterator[Task]:
    """The tasks of an uncompressed tar or a zip; damage that stops the listing of its
    members (a broken central directory, a header that does not parse), or more members
    than `max_members`, is a record of the archive, and the scan goes on after it."""
    try:
        tree = tar_tree(path, max_members) if kind == "tar" else zip_tree(path, max_members)
        tasks = list(walk_tasks(tree))
    except TooManyMembers as e:
        yield Done([error_record("path", path, os.path.basename(path), str(e))])
        return
    except Exception as e:  # anything a damaged archive makes its reader raise
        name = "tar" if kind == "tar" else "zip"
        yield Done(
            [
                error_record(
                    "path",
                    path,
                    os.path.basename(path),
                    f"damaged {name} archive, its members cannot be listed: "
                    f"{describe_exception(e)}",
                )
            ]
        )
        return
    yield from tasks


def _single_checkpoint(prefix: str) -> Checkpoint:
    kind = "savedmodel" if is_savedmodel_prefix(prefix) else None
    return Checkpoint(prefix, os.path.basename(prefix), kind, ("local", prefix))


def _fsspec_tasks(url: str, opts: Options) -> Iterator[Task]:
    """The tasks under a URL: a checkpoint (its prefix or its ``.index``) or a directory
    tree. Whatever goes wrong with the URL itself (not found, a server that fails or never
    answers) is a record, and the scan goes on to the next path."""
    name = posixpath.basename(url.rstrip("/")) or url
    try:
        yield from _url_tasks(url, opts)
    except (OSError, ValueError, CheckpointError) as e:
        yield Done([error_record("path", url, name, describe_exception(e))])


def _url_tasks(url: str, opts: Options) -> Iterator[Task]:
    import fsspec

    limits = opts.limits or DEFAULT_LIMITS
    fs, path = fsspec.core.url_to_fs(url, **opts.storage_options)
    if path.endswith(INDEX_SUFFIX):
        prefix, prefix_url = path[: -len(INDEX_SUFFIX)], url[: -len(INDEX_SUFFIX)]
        yield Checkpoint(
            prefix_url, posixpath.basename(prefix), None, ("fsspec", fs, prefix, prefix_url, {})
        )
        return
    if not path.endswith("/") and path_exists(fs, path + INDEX_SUFFIX, url + INDEX_SUFFIX, limits):
        yield Checkpoint(url, posixpath.basename(path), None, ("fsspec", fs, path, url, {}))
        return
    try:
        list_directory(fs, path, url, limits)
    except FileNotFoundError:
        raise NotACheckpointError(f"{url}: not found") from None
    yield from walk_tasks(FsspecTree(fs, path, url, limits))


def discover(paths: Sequence[str], opts: Options, for_dask: bool = False) -> Iterator[Task]:
    """The tasks under every root, root by root."""
    for p in paths:
        yield from root_tasks(p, opts, for_dask)
