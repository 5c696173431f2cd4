"""TensorFlow's checkpoint reader as scripts see it (FORMAT.md section 15): ``CheckpointReader``
and the ``tf.train`` functions over it, with TensorFlow's results, errors and quirks, read by
tfckpt.

TensorFlow's rules kept here: a path names a checkpoint when ``PATH.index`` exists (format
V2) or when it matches files (format V1, a glob pattern); a directory is resolved through its
``checkpoint`` state file by ``load_checkpoint`` only; scalars come back as numpy scalars and
a scalar string as ``bytes``; partitioned variables are listed and read whole; values are
writable copies, as TensorFlow's are. fsspec URLs (``gs://...``) are read as tfckpt.open
reads them.
"""

from __future__ import annotations

import glob
import logging
import os
from typing import Any, Dict, List, Optional, Tuple, Union

import tfckpt
from tfckpt.dtypes import by_code
from tfckpt.files import INDEX_SUFFIX, STATE_FILE, TABLE_MAGIC
from tfckpt.remote import is_url

from . import errors
from .dtypes import DType, as_dtype

__all__ = [
    "CheckpointReader",
    "NewCheckpointReader",
    "load_checkpoint",
    "list_variables",
    "load_variable",
    "latest_checkpoint",
    "get_checkpoint_state",
    "debug_string",
]

PathLike = Union[str, "os.PathLike[str]"]
_RESTORE_HINT = (
    ": perhaps your file is in a different file format and you need to use a "
    "different restore operator?"
)
_log = logging.getLogger("tensorflow")
#: The dtypes TensorFlow's V1 reader returns (TensorSliceReader::GetTensor's type switch).
_V1_READABLE = frozenset(
    ("float32", "float64", "int32", "uint8", "int16", "int8", "int64", "string", "bool")
)
#: The dtypes TensorFlow assembles from slices (GetSliceValue's type switch, FORMAT.md 6.4).
_ASSEMBLED = frozenset(
    (
        "float32",
        "float64",
        "int32",
        "uint8",
        "int16",
        "int8",
        "complex64",
        "complex128",
        "int64",
        "bool",
        "qint32",
        "quint8",
        "qint8",
        "bfloat16",
        "int4",
        "uint4",
    )
)


class CheckpointReader:
    """``tf.compat.v1.train.NewCheckpointReader(path)``: the variables of one checkpoint."""

    def __init__(self, filepattern: PathLike) -> None:
        self._reader = _open(os.fspath(filepattern))
        rows = self._reader.listing()
        self._shapes = {r[0]: list(r[2]) for r in rows}
        self._dtypes = {r[0]: as_dtype(r[1]) for r in rows}

    def get_variable_to_shape_map(self) -> Dict[str, List[int]]:
        return {k: list(v) for k, v in self._shapes.items()}

    def get_variable_to_dtype_map(self) -> Dict[str, DType]:
        return dict(self._dtypes)

    def has_tensor(self, tensor_str: str) -> bool:
        return tensor_str in self._shapes

    def get_tensor(self, tensor_str: str) -> Any:
        """The value of one variable: a writable numpy array, a numpy scalar for a scalar,
        ``bytes`` for a scalar string."""
        import numpy as np

        refusal = self._refusal(tensor_str)
        if refusal is not None:
            raise refusal
        try:
            value = np.array(self._reader.read(tensor_str))
        except tfckpt.CheckpointError as e:
            raise _translate(e, opening=False) from None
        return value[()] if value.ndim == 0 else value

    def _refusal(self, key: str) -> Optional[Exception]:
        """The error TensorFlow's reader gives before reading `key`, if it gives one: a
        missing key, a variant, and the limits of its assembly of partitioned tensors (in
        format V1 none at all, and few dtypes)."""
        v1 = self._reader.header.format == "V1"
        if key not in self._shapes:
            return errors.NotFoundError(
                None,
                None,
                f"{key} not found in checkpoint file"
                if v1
                else f"Key {key} not found in checkpoint",
            )
        row = by_code(self._dtypes[key].as_datatype_enum)
        if row.kind in ("variant", "resource"):
            return errors.InternalError(
                None, None, f"Tensorflow type {row.code} not convertible to numpy dtype."
            )
        slices = len(self._reader.entry(key).slices)
        if v1 and slices > 1:
            return errors.UnimplementedError(None, None, "Sliced checkpoints are not supported")
        if v1 and row.name not in _V1_READABLE:
            return errors.UnimplementedError(None, None, "Data type not supported")
        if not v1 and slices and row.name not in _ASSEMBLED:
            return ValueError(f"Dtype {row.enum_name[3:].lower()} not supported.")
        return None

    def debug_string(self) -> bytes:
        return debug_string(self._reader)


def NewCheckpointReader(filepattern: PathLike) -> CheckpointReader:  # noqa: N802 - TF's name
    return CheckpointReader(filepattern)


def load_checkpoint(ckpt_dir_or_file: PathLike) -> CheckpointReader:
    """A reader for a checkpoint prefix, or for the latest checkpoint of a directory."""
    path = os.fspath(ckpt_dir_or_file)
    filename = latest_checkpoint(path) if os.path.isdir(path) else path
    if filename is None:
        raise ValueError(
            f"Couldn't find 'checkpoint' file or checkpoints in given directory {path}"
        )
    return NewCheckpointReader(filename)


def list_variables(ckpt_dir_or_file: PathLike) -> List[Tuple[str, List[int]]]:
    """Every variable as ``(name, shape list)``, sorted by name."""
    shapes = load_checkpoint(ckpt_dir_or_file).get_variable_to_shape_map()
    return [(name, shapes[name]) for name in sorted(shapes)]


def load_variable(ckpt_dir_or_file: PathLike, name: str) -> Any:
    """The value of one variable (a trailing ``:0`` is dropped, as TensorFlow does)."""
    if name.endswith(":0"):
        name = name[:-2]
    return load_checkpoint(ckpt_dir_or_file).get_tensor(name)


def get_checkpoint_state(checkpoint_dir: PathLike, latest_filename: Optional[str] = None) -> Any:
    """The directory's ``checkpoint`` state file (a CheckpointState message) with relative
    paths joined to the directory; None when it is missing or does not parse."""
    from google.protobuf import text_format

    from tfckpt.proto import CheckpointState

    directory = os.fspath(checkpoint_dir)
    state_path = os.path.join(directory, latest_filename or STATE_FILE)
    if not os.path.isfile(state_path):
        return None
    with open(state_path, encoding="utf-8") as f:
        text = f.read()
    state = CheckpointState()
    try:
        text_format.Merge(text, state)
    except text_format.ParseError as e:
        _log.warning("%s: %s", type(e).__name__, e)
        _log.warning("%s: Checkpoint ignored", state_path)
        return None
    if not state.model_checkpoint_path:
        raise ValueError("Invalid checkpoint state loaded from " + directory)
    if not os.path.isabs(state.model_checkpoint_path):
        state.model_checkpoint_path = os.path.join(directory, state.model_checkpoint_path)
    for i, p in enumerate(state.all_model_checkpoint_paths):
        if not os.path.isabs(p):
            state.all_model_checkpoint_paths[i] = os.path.join(directory, p)
    return state


def latest_checkpoint(
    checkpoint_dir: PathLike, latest_filename: Optional[str] = None
) -> Optional[str]:
    """The recorded latest checkpoint joined to the directory, or None (logging an error)
    when its files do not exist."""
    state = get_checkpoint_state(checkpoint_dir, latest_filename)
    if state is None or not state.model_checkpoint_path:
        return None
    path = state.model_checkpoint_path
    if glob.glob(path + INDEX_SUFFIX) or glob.glob(path):
        return path
    _log.error("Couldn't match files for checkpoint %s", path)
    return None


def debug_string(reader: Any) -> bytes:
    """CheckpointReader.debug_string: for format V2 (BundleReader::DebugString) every entry
    without slices in table order, slice keys included, as ``key (DT_X) [shape]``; for format
    V1 (TensorSliceReader::DebugString) every tensor, with ``, N slices`` when it has more
    than one (TensorFlow lists them in hash-map order; here, sorted)."""
    lines = []
    v1 = reader.header.format == "V1"
    for key, dtype, shape, _size, _n, _error, sliced in reader.listing(hidden=not v1):
        more = ""
        if v1:
            count = len(reader.entry(key).slices)
            more = f", {count} slices" if count > 1 else ""
        elif sliced:
            continue
        dims = ",".join(str(d) for d in shape)
        lines.append(f"{key} ({by_code(dtype).enum_name}) [{dims}]{more}\n")
    return "".join(lines).encode("utf-8", "surrogateescape")


# -- opening, and TensorFlow's errors -------------------------------------------------------
def _open(path: str) -> Any:
    """TensorFlow's CheckpointReader constructor: ``PATH.index`` makes a V2 bundle, anything
    else is a V1 file pattern whose matches must be tables."""
    try:
        if os.path.isfile(path + INDEX_SUFFIX) or is_url(path):
            return tfckpt.open(path)
        matches = sorted(glob.glob(path))
        if not matches:
            raise errors.NotFoundError(
                None,
                None,
                "Unsuccessful TensorSliceReader constructor: Failed to find any "
                f"matching files for {path}",
            )
        for m in matches:
            _check_table(m)
        return tfckpt.open(path)
    except tfckpt.CheckpointError as e:
        raise _translate(e, opening=True) from None


def _check_table(path: str) -> None:
    if os.path.isdir(path):
        why = f"FAILED_PRECONDITION: {path}; Is a directory"
    else:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(size - len(TABLE_MAGIC), 0))
            if size >= 48 and f.read() == TABLE_MAGIC:
                return
        why = (
            "DATA_LOSS: not an sstable (bad magic number)"
            if size >= 48
            else "DATA_LOSS: file is too short to be an sstable"
        )
    raise errors.DataLossError(
        None, None, f"Unable to open table file {path}: {why}" + _RESTORE_HINT
    )


def _translate(e: "tfckpt.CheckpointError", opening: bool) -> errors.OpError:
    """The TensorFlow error for a tfckpt error. TensorFlow translates its C++ errors by their
    words: a table that does not open is a DataLossError, a missing key NotFoundError;
    anything else, such as a missing data file (``FILE; No such file or directory``) or a
    corrupt payload, is a plain OpError with code UNKNOWN."""
    if isinstance(e, tfckpt.KeyNotFoundError):
        return errors.NotFoundError(None, None, str(e))
    if opening:
        return errors.DataLossError(None, None, f"Unable to open table file {e}")
    if isinstance(e, tfckpt.MissingShardError) and e.path:
        return errors.OpError(None, None, f"{e.path}; No such file or directory", errors.UNKNOWN)
    return errors.OpError(None, None, str(e), errors.UNKNOWN)
