"""What a scan reports: one record per finding, with the columns of its view."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, NamedTuple, Optional, Sequence, Tuple

from ..errors import CheckpointError

__all__ = [
    "Record",
    "KeyRecord",
    "CHECKPOINT_FIELDS",
    "KEY_FIELDS",
    "STATS_FIELDS",
    "error_record",
    "describe_exception",
]

#: Columns of a record in the per-checkpoint view (also those of state and path records).
CHECKPOINT_FIELDS = (
    "record",
    "location",
    "name",
    "kind",
    "status",
    "error",
    "keys",
    "parameters",
    "bytes",
    "dtypes",
    "shards",
    "step",
    "step_source",
    "latest",
    "checkpoints",
)
#: Columns added to the per-checkpoint view by ``stats=True``: values that are NaN or Inf,
#: and the L2 norm of all finite values of the checkpoint together.
STATS_FIELDS = ("nonfinite", "l2")
#: Columns of a record in the per-key view (``keys=True``).
KEY_FIELDS = (
    "record",
    "location",
    "name",
    "key",
    "dtype",
    "shape",
    "parameters",
    "bytes",
    "partitioned",
    "status",
    "error",
)


@dataclass
class Record:
    """One finding of a scan. Fields that do not apply are None; :meth:`to_dict` gives the
    columns of a view (:data:`CHECKPOINT_FIELDS` or :data:`KEY_FIELDS`)."""

    record: str  # "checkpoint", "state", "path" or "key"
    location: str
    name: str
    status: str = "ok"  # "ok" or "error"
    error: Optional[str] = None
    kind: Optional[str] = None  # "object-based", "name-based" or "savedmodel"
    keys: Optional[int] = None
    parameters: Optional[int] = None
    bytes: Optional[int] = None
    dtypes: Optional[Dict[str, int]] = None
    shards: Optional[int] = None
    step: Optional[int] = None
    step_source: Optional[str] = None  # "save_counter", "global_step" or "suffix"
    latest: Optional[str] = None  # state files: the location of the latest checkpoint
    checkpoints: Optional[int] = None  # state files: how many checkpoints it names
    key: Optional[str] = None
    dtype: Optional[str] = None
    shape: Optional[Tuple[int, ...]] = None
    partitioned: Optional[bool] = None
    nonfinite: Optional[int] = None  # with stats=True: values that are NaN or +-Inf
    l2: Optional[float] = None  # with stats=True: the L2 norm of all finite values

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self, columns: Optional[Sequence[str]] = None) -> Dict[str, Any]:
        """The record as a plain dict of `columns` (by default those of its own view)."""
        if columns is None:
            columns = KEY_FIELDS if self.record == "key" else CHECKPOINT_FIELDS
            if self.nonfinite is not None or self.l2 is not None:
                columns = tuple(columns) + STATS_FIELDS
        d = _plain(self, columns)
        if d.get("dtypes") is not None:
            d["dtypes"] = dict(d["dtypes"])
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
        return _plain(self, columns or KEY_FIELDS)


def _plain(rec: Any, columns: Sequence[str]) -> Dict[str, Any]:
    """`columns` of a record as a dict of plain values (a shape as a list, for JSON)."""
    d: Dict[str, Any] = {c: getattr(rec, c, None) for c in columns}
    if d.get("shape") is not None:
        d["shape"] = list(d["shape"])
    return d


def error_record(record: str, location: str, name: str, message: str) -> Record:
    """A record of kind `record` whose status is error, saying `message`."""
    return Record(record, location, name, status="error", error=message)


def describe_exception(e: BaseException) -> str:
    """The words a record gives an exception: a checkpoint error's own message, an OS
    error's reason and file, anything else with its type."""
    if isinstance(e, CheckpointError):
        return str(e) or type(e).__name__
    if isinstance(e, OSError) and e.strerror:
        return f"{e.strerror}: {e.filename}" if e.filename else e.strerror
    return f"{type(e).__name__}: {e}"
