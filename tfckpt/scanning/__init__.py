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

from .archives import archive_kind
from .locations import open_location
from .output import FORMATS, record_writer
from .records import CHECKPOINT_FIELDS, KEY_FIELDS, KeyRecord, Record
from .roots import check_root
from .run import dataframe_meta, scan, scan_to_dask
from .tasks import (
    DEFAULT_MAX_ARCHIVE_MEMBERS,
    DEFAULT_MAX_ARCHIVE_SECONDS,
    DEFAULT_MAX_MEMBER_BYTES,
)

__all__ = [
    "scan",
    "scan_to_dask",
    "dataframe_meta",
    "Record",
    "KeyRecord",
    "CHECKPOINT_FIELDS",
    "KEY_FIELDS",
    "record_writer",
    "FORMATS",
    "check_root",
    "archive_kind",
    "DEFAULT_MAX_MEMBER_BYTES",
    "DEFAULT_MAX_ARCHIVE_MEMBERS",
    "DEFAULT_MAX_ARCHIVE_SECONDS",
    "open_location",
]
