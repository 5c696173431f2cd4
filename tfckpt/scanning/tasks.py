"""What discovery hands to the workers: the options of a scan and its units of work.

Tasks are plain picklable values, so that worker processes and Dask workers can run them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Pattern, Union

from .records import Record

__all__ = [
    "Options",
    "Done",
    "Checkpoint",
    "WholeArchive",
    "Task",
    "DEFAULT_MAX_MEMBER_BYTES",
    "DEFAULT_MAX_ARCHIVE_MEMBERS",
    "DEFAULT_MAX_ARCHIVE_SECONDS",
]

#: Members of a compressed tar are held in memory until their checkpoint is complete.
DEFAULT_MAX_MEMBER_BYTES = 2 << 30
#: Members an archive may have; one with more is a record, not scanned (a tar of a million
#: empty members would otherwise cost memory and time in proportion).
DEFAULT_MAX_ARCHIVE_MEMBERS = 200_000
#: Seconds a compressed archive may take to read (a few MB can expand to terabytes).
DEFAULT_MAX_ARCHIVE_SECONDS = 3600.0


@dataclass
class Options:
    """What a scan was asked for (see :func:`tfckpt.scan`)."""

    keys: bool = False
    match: Optional[Pattern] = None
    verify: bool = False
    storage_options: Dict[str, Any] = field(default_factory=dict)
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES
    max_archive_members: int = DEFAULT_MAX_ARCHIVE_MEMBERS
    max_archive_seconds: float = DEFAULT_MAX_ARCHIVE_SECONDS
    stats: bool = False
    # -- remote (URLs): the bounds of every request and of the walk of a tree
    limits: Any = None  # a tfckpt.remote.RemoteLimits; None for its defaults

    def matches(self, *texts: Optional[str]) -> bool:
        return self.match is None or any(t is not None and self.match.search(t) for t in texts)


@dataclass
class Done:
    """Records made while walking (state files, half-written saves, unreadable paths)."""

    records: List[Record]


@dataclass
class Checkpoint:
    """A checkpoint to open: `spec` says how to build its storage (picklable)."""

    location: str
    name: str
    kind: Optional[str]
    spec: tuple


@dataclass
class WholeArchive:
    """A compressed tar, scanned start to end by one worker (its members are not
    addressable without decompressing what precedes them)."""

    path: str


Task = Union[Done, Checkpoint, WholeArchive]
