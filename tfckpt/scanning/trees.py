"""Trees: local directories, the members of an archive and fsspec stores, walked the same
way, so that discovery does not care where the files are."""

from __future__ import annotations

import errno
import os
import posixpath
import re
import stat
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Callable, Dict, Iterator, List, Optional, Set, Tuple
from urllib.parse import urlsplit, urlunsplit

from ..errors import CheckpointError
from ..files import (
    INDEX_SUFFIX,
    MAX_STATE_BYTES,
    TABLE_MAGIC,
    is_table_file,
    v1_group_name,
)
from .records import describe_exception

__all__ = [
    "Item",
    "Tree",
    "Walk",
    "LocalTree",
    "ArchiveTree",
    "FsspecTree",
    "join",
    "is_local_checkpoint",
    "canonical_url",
]

#: (relative directory, its items in name order or None, why it cannot be listed or None)
Walk = Iterator[Tuple[str, Optional[List["Item"]], Optional[str]]]


@dataclass
class Item:
    """One entry of a directory as a tree reports it."""

    name: str
    type: str  # "file", "dir" or "error"
    size: Optional[int] = None
    error: Optional[str] = None
    ref: Any = None  # the tree's handle: an archive member, a real path, ...


class Tree:
    """What discovery asks of a tree; directories are named relative to its root ("" is the
    root itself), with '/' between names."""

    def location(self, rel: str) -> str:
        """How records name `rel`: a path, ``ARCHIVE!/MEMBER`` or a URL."""
        raise NotImplementedError

    def walk(self) -> Walk:
        """Every directory in pre-order, a directory's items sorted by name."""
        raise NotImplementedError

    def read_bytes(self, rel: str, item: Item) -> bytes:
        """The start of a small file (a state file): at most one byte past the largest a
        state file may be, so that a larger one can be told."""
        raise NotImplementedError

    def has_index(self, rel: str) -> bool:
        """Whether checkpoint prefix `rel` has its index in the tree."""
        raise NotImplementedError

    def find_absolute(self, path: str) -> Optional[str]:
        """The location of a checkpoint a state file names by absolute path, if it is there."""
        return None

    def v1_checkpoints(self, rel: str, names: List[str]) -> Dict[str, tuple]:
        """The format V1 checkpoints among files `names` of directory `rel`: none, but in a
        local directory, at a URL, or in an uncompressed tar or a zip."""
        return {}

    def checkpoint_spec(self, rel_prefix: str, index: Item, shards: Dict[str, Item]) -> tuple:
        """How a worker builds the storage of checkpoint `rel_prefix` (picklable)."""
        raise NotImplementedError


_BY_NAME = attrgetter("name")


def join(rel: str, name: str) -> str:
    """`name` inside relative directory `rel`."""
    return posixpath.join(rel, name) if rel else name


def _subdirectories(rel: str, items: List[Item]) -> List[Tuple[str, Item]]:
    """The directories among `items`, last first: pushed on a stack, they pop in order."""
    return [(join(rel, item.name), item) for item in reversed(items) if item.type == "dir"]


def _walk_listing(list_dir: Callable[[str], Tuple[Optional[List[Item]], Optional[str]]]) -> Walk:
    """A pre-order walk from the root, `list_dir(rel)` giving each directory's items."""
    stack = [""]
    while stack:
        rel = stack.pop()
        items, error = list_dir(rel)
        yield rel, items, error
        if items:
            stack.extend(child for child, _ in _subdirectories(rel, items))


def is_local_checkpoint(prefix: str) -> bool:
    """Whether a checkpoint with this prefix is on the local filesystem (its index is)."""
    return os.path.isfile(prefix + INDEX_SUFFIX)


class LocalTree(Tree):
    """A directory on the local filesystem, walked like ``find -L``: symbolic links are
    followed, a link leading back to a directory being walked is reported as a loop."""

    def __init__(self, root: str) -> None:
        self.root = root

    def location(self, rel: str) -> str:
        return os.path.join(self.root, rel) if rel else self.root

    def walk(self) -> Walk:
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
            stack.extend((child, item.ref) for child, item in _subdirectories(rel, items))

    def _item(self, entry: os.DirEntry, real: str) -> Item:
        # d_type answers for plain entries without a system call; links are followed.
        if not entry.is_symlink():
            if entry.is_dir(follow_symlinks=False):
                return Item(entry.name, "dir", ref=real + "/" + entry.name)
            if entry.is_file(follow_symlinks=False):
                return Item(entry.name, "file")
        try:
            st = entry.stat()
        except OSError as e:
            if e.errno == errno.ELOOP:
                return Item(entry.name, "error", error="symbolic link loop")
            if entry.is_symlink():
                try:
                    target = os.readlink(entry.path)
                except OSError:
                    target = "?"
                return Item(
                    entry.name, "error", error=f"broken symbolic link (to {target}): {e.strerror}"
                )
            return Item(entry.name, "error", error=f"cannot stat: {e.strerror}")
        if stat.S_ISDIR(st.st_mode):
            target = os.path.realpath(entry.path)
            if real == target or real.startswith(target.rstrip("/") + "/"):
                return Item(
                    entry.name, "error", error=f"symbolic link loop: leads back to {target}"
                )
            return Item(entry.name, "dir", ref=target)
        if stat.S_ISREG(st.st_mode):
            return Item(entry.name, "file", size=st.st_size)
        what = (
            "a FIFO"
            if stat.S_ISFIFO(st.st_mode)
            else "a socket"
            if stat.S_ISSOCK(st.st_mode)
            else "a device"
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
            else "not a regular file"
        )
        return Item(entry.name, "error", error=f"not a regular file: {what}")

    def read_bytes(self, rel: str, item: Item) -> bytes:
        with open(self.location(rel), "rb") as f:
            return f.read(MAX_STATE_BYTES + 1)

    def has_index(self, rel: str) -> bool:
        return is_local_checkpoint(self.location(rel))

    def find_absolute(self, path: str) -> Optional[str]:
        return path if is_local_checkpoint(path) else None

    def checkpoint_spec(self, rel_prefix: str, index: Item, shards: Dict[str, Item]) -> tuple:
        return ("local", self.location(rel_prefix))

    def v1_checkpoints(self, rel: str, names: List[str]) -> Dict[str, tuple]:
        """The format V1 checkpoints among files `names` of directory `rel` (each file told
        by its table footer), by the name the saver gives them, with their specs."""
        found: Dict[str, tuple] = {}
        for name in names:
            if is_table_file(self.location(join(rel, name))):
                group = v1_group_name(name)
                found.setdefault(group, ("v1", self.location(join(rel, group))))
        return found


def member_bytes(kind: str, archive: str, member: Any, tail: int = 0) -> Any:
    """The bytes of a member of an uncompressed tar (a view of the mapped archive) or a zip
    (decompressed, within the zip bomb checks), or with `tail` only its last bytes."""
    from ..storage import ZipMemberStorage, mapped_archive

    if kind == "tar":
        off, size = member
        start = off + max(size - tail, 0) if tail else off
        return memoryview(mapped_archive(archive))[start : off + size]
    data = ZipMemberStorage(archive, archive, {INDEX_SUFFIX: member}).index_buffer()
    return memoryview(data)[-tail:] if tail else data


def _tree_name(member: str) -> Optional[str]:
    """A member's name without empty and "." components, or None when it has a ".."."""
    parts = [p for p in member.split("/") if p not in ("", ".")]
    return None if ".." in parts else "/".join(parts)


class ArchiveTree(Tree):
    """The members of an archive as a tree of directories.

    `files` maps member names to the archive's handles of its regular files, `errors`
    names to why an entry is unusable; `sizes(handle)` and `reader(rel, handle)` answer
    for a file. `problem` says what is wrong with the archive as a whole, if anything.
    """

    def __init__(
        self,
        archive: str,
        kind: str,
        files: Dict[str, Any],
        errors: Dict[str, str],
        sizes: Callable[[Any], int],
        reader: Callable[[str, Any], bytes],
        problem: Optional[str] = None,
    ) -> None:
        self.problem = problem
        self.archive = archive
        self.kind = kind  # "tar", "tarz" or "zip"
        self._reader = reader
        self.dirs: Dict[str, Dict[str, Item]] = {"": {}}
        # Member names as a tree holds them: "a//b/./c" is "a/b/c"; a name that climbs out
        # with ".." is an error item of its own, at the top, never a path to follow.
        self.files: Dict[str, Any] = {}
        refused: Dict[str, str] = {}
        for path, member in files.items():
            name = _tree_name(path)
            if name is None:
                refused[path] = "a member name with a '..' component; not read"
            elif name:
                self.files[name] = member
        for path, member in self.files.items():
            self._add(path, Item(posixpath.basename(path), "file", size=sizes(member), ref=member))
        for path, message in errors.items():
            name = _tree_name(path)
            if name is None:
                refused[path] = message
            elif name:
                self._add(name, Item(posixpath.basename(name), "error", error=message))
        for path, message in refused.items():
            self.dirs[""].setdefault(path, Item(path, "error", error=message))

    def _add(self, path: str, item: Item) -> None:
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
        self.dirs[parent].setdefault(name, Item(name, "dir"))

    def location(self, rel: str) -> str:
        return f"{self.archive}!/{rel}" if rel else self.archive

    def walk(self) -> Walk:
        if self.problem:
            yield "", None, self.problem
        yield from _walk_listing(
            lambda rel: ([self.dirs[rel][n] for n in sorted(self.dirs[rel])], None)
        )

    def read_bytes(self, rel: str, item: Item) -> bytes:
        return self._reader(rel, item.ref)

    def has_index(self, rel: str) -> bool:
        return rel + INDEX_SUFFIX in self.files

    def v1_checkpoints(self, rel: str, names: List[str]) -> Dict[str, tuple]:
        """The format V1 checkpoints among members `names` of directory `rel`, each told by
        its table footer, by the name the saver gives them (not in a compressed tar, which
        is read as one stream)."""
        if self.kind == "tarz":
            return {}
        here = self.dirs.get(rel, {})
        found: Dict[str, tuple] = {}
        for name in names:
            group = v1_group_name(name)
            member = self.files.get(join(rel, name))
            if group in found or member is None:
                continue
            try:
                footer = bytes(member_bytes(self.kind, self.archive, member, tail=len(TABLE_MAGIC)))
            except (OSError, ValueError, CheckpointError):
                continue  # not told a table file: not taken for a checkpoint
            if footer != TABLE_MAGIC:
                continue
            members = sorted(
                n
                for n, item in here.items()
                if item.type == "file" and (n == group or v1_group_name(n) == group)
            )
            files = [(self.location(join(rel, m)), self.files[join(rel, m)]) for m in members]
            gap = _v1_set_gap(group, members)
            found[group] = ("v1archive", self.kind, self.archive, files, gap)
        return found

    def checkpoint_spec(self, rel_prefix: str, index: Item, shards: Dict[str, Item]) -> tuple:
        members = {INDEX_SUFFIX: index.ref}
        members.update({s: item.ref for s, item in shards.items()})
        return (self.kind, self.archive, self.location(rel_prefix), members)


class FsspecTree(Tree):
    """A directory on an fsspec filesystem (a prefix of an object store, an HTTP server's
    index pages, ...), walked within `limits` (:class:`tfckpt.remote.RemoteLimits`): every
    request bounded in time, at most ``max_depth`` levels and ``max_entries`` entries, and
    no directory walked twice. A server's tree may loop (a link back to an ancestor, under
    another spelling or behind a server-side link); the walk reports, as a record, a
    directory URL that spells one already walked (``%2e%2e``, ``./``, ``//``...) and a
    directory that lists exactly what one of its ancestors lists, and goes no deeper."""

    def __init__(self, fs: Any, root: str, url: str, limits: Any = None) -> None:
        from ..remote import DEFAULT_LIMITS

        self.fs = fs
        self.root = root.rstrip("/")
        self.url = url.rstrip("/")
        self.limits = limits or DEFAULT_LIMITS
        self._listed: Tuple[str, Dict[str, Item]] = ("", {})  # the directory being tasked

    def _path(self, rel: str) -> str:
        return f"{self.root}/{rel}" if rel else self.root

    def location(self, rel: str) -> str:
        return f"{self.url}/{rel}" if rel else self.url

    def walk(self) -> Walk:
        limits = self.limits
        seen: Set[str] = set()
        entries = 0
        # (relative directory, depth, its ancestors' listings as a chain of
        # (rel, fingerprint, parent chain)): constant memory per pending directory.
        stack: List[Tuple[str, int, Optional[tuple]]] = [("", 0, None)]
        while stack:
            rel, depth, ancestors = stack.pop()
            canonical = canonical_url(self.location(rel))
            if canonical in seen:
                yield rel, None, f"link loop: {canonical} was walked already (not walked again)"
                continue
            seen.add(canonical)
            items, error = self._list(rel)
            if items is None:
                yield rel, None, error
                continue
            entries += len(items)
            if entries > limits.max_entries:
                yield (
                    rel,
                    None,
                    (
                        f"walk stopped: more than {limits.max_entries} entries under {self.url} "
                        "(--max-entries)"
                    ),
                )
                return
            fingerprint = hash(tuple((i.name, i.type, i.size) for i in items))
            twin = ancestors
            while twin is not None and twin[1] != fingerprint:
                twin = twin[2]
            if twin is not None and items:
                yield (
                    rel,
                    None,
                    (
                        f"link loop: lists exactly what its ancestor {self.location(twin[0])} "
                        "lists (a link back to it); not walked"
                    ),
                )
                continue
            self._listed = (rel, {i.name: i for i in items})
            yield rel, items, None
            children = _subdirectories(rel, items)
            if children and depth >= limits.max_depth:
                for child, _ in reversed(children):
                    yield (
                        child,
                        None,
                        (
                            f"not walked: deeper than {limits.max_depth} levels below {self.url} "
                            "(--max-depth)"
                        ),
                    )
                continue
            chain = (rel, fingerprint, ancestors)
            stack.extend((child, depth + 1, chain) for child, _ in children)

    def _list(self, rel: str) -> Tuple[Optional[List[Item]], Optional[str]]:
        from ..remote import list_directory

        try:
            listing = list_directory(self.fs, self._path(rel), self.location(rel), self.limits)
        except (OSError, ValueError, CheckpointError) as e:
            return None, f"cannot list: {describe_exception(e)}"
        items: Dict[str, Item] = {}
        for info in listing:
            name = info["name"].rstrip("/").rsplit("/", 1)[-1]
            if not name or name in (".", ".."):
                continue
            if info.get("type") == "directory":
                items.setdefault(name, Item(name, "dir"))
            else:
                items[name] = Item(name, "file", size=info.get("size"))
        return [items[n] for n in sorted(items)], None

    def read_bytes(self, rel: str, item: Item) -> bytes:
        from ..remote import read_small

        data = read_small(
            self.fs, self._path(rel), self.location(rel), MAX_STATE_BYTES, self.limits
        )
        if data is None:
            raise FileNotFoundError(f"{self.location(rel)}: not found")
        return data

    def has_index(self, rel: str) -> bool:
        from ..remote import path_exists

        try:
            return path_exists(
                self.fs, self._path(rel) + INDEX_SUFFIX, self.location(rel), self.limits
            )
        except (OSError, ValueError, CheckpointError):
            return False

    def checkpoint_spec(self, rel_prefix: str, index: Item, shards: Dict[str, Item]) -> tuple:
        sizes = {s: item.size for s, item in shards.items() if item.size is not None}
        return ("fsspec", self.fs, self._path(rel_prefix), self.location(rel_prefix), sizes)

    def v1_checkpoints(self, rel: str, names: List[str]) -> Dict[str, tuple]:
        """The format V1 checkpoints among files `names` of directory `rel`, each file told
        by its table footer (one small range request; a HEAD first where the listing gave
        no size), by the name the saver gives them, with their specs."""
        from ..remote import fetch_footer

        listed = self._listed[1] if self._listed[0] == rel else {}
        found: Dict[str, tuple] = {}
        for name in names:
            group = v1_group_name(name)
            if group in found:
                continue
            loc = join(rel, name)
            item = listed.get(name)
            try:
                footer = fetch_footer(
                    self.fs, self._path(loc), self.location(loc), item.size if item else None,
                    len(TABLE_MAGIC), self.limits,
                )  # fmt: skip
            except (OSError, ValueError, CheckpointError):
                continue  # not told a table file: not taken for a checkpoint
            if footer != TABLE_MAGIC:
                continue
            members = sorted(n for n in listed if n == group or v1_group_name(n) == group)
            files = [
                (
                    self._path(join(rel, member)),
                    self.location(join(rel, member)),
                    listed[member].size,
                )
                for member in members
            ]
            found[group] = ("v1url", self.fs, files, _v1_set_gap(group, members))
        return found


def _v1_set_gap(group: str, members: List[str]) -> Optional[str]:
    """What is missing from a sharded V1 set found by listing (its count comes from a file
    name, so the names are not made up one by one), or None."""
    if group in members:
        return None
    num_text = group.rsplit("-of-", 1)[1]
    num, base = int(num_text), group[: -len(f"-?????-of-{num_text}")]
    if len(members) == num:
        return None
    first = next(
        i for i in range(len(members) + 1) if f"{base}-{i:05d}-of-{num_text}" not in members
    )
    return (
        f"{num - len(members)} of the {num} files of the set are missing "
        f"(the first: {base}-{first:05d}-of-{num_text})"
    )


def canonical_url(url: str) -> str:
    """One spelling of a directory URL, so that a walk knows a directory it has seen:
    scheme and host in lower case, a default port dropped, percent-escapes of unreserved
    characters decoded (``%2e`` is ``.``), dot segments resolved, repeated and trailing
    slashes dropped (RFC 3986, 6.2.2)."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), parts.netloc.lower()
    for default in ((":80", "http"), (":443", "https")):
        if host.endswith(default[0]) and scheme == default[1]:
            host = host[: -len(default[0])]
    path = _UNRESERVED_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), parts.path)
    path = re.sub("/{2,}", "/", path)
    path = posixpath.normpath("/" + path) if path else "/"
    path = "/" + path.lstrip("/")  # normpath keeps a leading '//'
    return urlunsplit((scheme, host, path.rstrip("/") or "/", parts.query, ""))


#: A percent-escape of a character that needs none (RFC 3986, 2.3): decoded before comparing.
_UNRESERVED_ESCAPE = re.compile(
    r"%(2[dDeE]|3[0-9]|4[1-9a-fA-F]|5[0-9aA]|5[fF]|6[1-9a-fA-F]|7[0-9aA]|7[eE])"
)
