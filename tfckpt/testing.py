"""Helpers for your own test suite: build, alter and damage checkpoints in a temporary
directory, without TensorFlow.

Each helper is a few lines over :func:`tfckpt.write` and :func:`tfckpt.edit`; they exist so
that a test of *your* restore code reads as what it checks::

    import numpy as np
    import tfckpt.testing as ct

    def test_restore_uses_checkpoint_values(tmp_path):
        prefix = ct.make_checkpoint(tmp_path, {"model/dense/kernel": np.ones((4, 2), "f4")},
                                    object_graph=True)
        model = build_model()                       # your code
        tf.train.Checkpoint(model=model).restore(prefix).assert_consumed()
        assert (model.dense.kernel.numpy() == 1).all()

    def test_restore_reports_damage(tmp_path):
        prefix = ct.make_checkpoint(tmp_path, {"w": np.arange(8, dtype="f4")})
        ct.corrupt(prefix, "w")                     # one payload byte flipped
        with pytest.raises(tf.errors.DataLossError, match="Checksum does not match"):
            my_restore(prefix)                      # your code

Keys may be given as full checkpoint keys (``model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE``)
or, for object-based checkpoints, as object paths (``model/dense/kernel``): a path is turned
into ``<path>/.ATTRIBUTES/VARIABLE_VALUE`` when the key itself is not in the checkpoint.
Nothing here imports TensorFlow or pytest.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Optional, Tuple

from .editing import edit
from .errors import InvalidArgumentError, KeyNotFoundError
from .keys import object_key
from .reader import Reader
from .writer import write

__all__ = ["make_checkpoint", "inject", "with_values", "corrupt", "truncate_shard", "resolve_key"]


def make_checkpoint(
    directory: "str | os.PathLike[str]",
    tensors: Mapping[Any, Any],
    *,
    name: str = "ckpt",
    **write_options: Any,
) -> str:
    """Writes `tensors` to a new checkpoint ``<directory>/<name>`` and returns its prefix.

    `write_options` go to :func:`tfckpt.write`: ``object_graph=True`` makes the keys object
    paths restorable by ``tf.train.Checkpoint`` (``save_counter=``, ``slots=`` too),
    ``dtypes={"w": "bfloat16"}``, ``max_shard_bytes=``, ``update_state=True``... ::

        prefix = make_checkpoint(tmp_path, {"w": np.zeros(3, "f4"), "step": np.int64(7)})
        # tmp_path/ckpt.index, tmp_path/ckpt.data-00000-of-00001
    """
    prefix = os.path.join(os.fspath(directory), name)
    return write(prefix, tensors, **write_options)


def resolve_key(reader: Reader, key: str) -> str:
    """The checkpoint key meant by `key`: itself if the checkpoint holds it, else the
    ``VARIABLE_VALUE`` key of the object path `key`. Raises KeyNotFoundError otherwise."""
    if key in reader:
        return key
    as_object = object_key(key)
    if as_object in reader:
        return as_object
    near = [k for k in reader.keys() if key in k][:5]
    hint = f"; keys containing it: {', '.join(near)}" if near else ""
    raise KeyNotFoundError(
        f"Key {key} not found in checkpoint {reader.prefix} (nor {as_object}){hint}"
    )


def _resolve_all(prefix: str, values: Mapping[str, Any]) -> dict:
    with Reader(prefix) as reader:
        return {resolve_key(reader, k): v for k, v in values.items()}


def inject(
    prefix: "str | os.PathLike[str]", values: Optional[Mapping[str, Any]] = None, **named: Any
) -> str:
    """Replaces values of existing keys in place (atomically) and returns the prefix.

    Keyword arguments are a shortcut for keys that are Python identifiers. The dtype and the
    shape of each key stay as they are (numbers are cast within their kind)::

        inject(prefix, w=np.full(3, 5.0))
        inject(prefix, {"model/dense/kernel": np.eye(4, dtype="f4")})
    """
    prefix = os.fspath(prefix)
    edit(prefix, in_place=True, set=_resolve_all(prefix, {**(values or {}), **named}))
    return prefix


def with_values(
    src: "str | os.PathLike[str]",
    directory: "str | os.PathLike[str]",
    *,
    set: Optional[Mapping[str, Any]] = None,
    name: Optional[str] = None,  # noqa: A002
    **edit_options: Any,
) -> str:
    """Copies checkpoint `src` into `directory` with some values replaced; returns the new
    prefix (``<directory>/<name>``, by default the base name of `src`). `src` is untouched.
    `edit_options` go to :func:`tfckpt.edit` (``drop=``, ``rename=``, ``add=``,
    ``allow_dtype_change=``...)::

        edited = with_values("runs/ckpt-3", tmp_path, set={"model/dense/bias": np.zeros(2)})
    """
    src = os.fspath(src)
    with Reader(src) as reader:
        base = name or os.path.basename(reader.prefix)
        resolved = {resolve_key(reader, k): v for k, v in (set or {}).items()}
    dst = os.path.join(os.fspath(directory), base)
    if os.path.abspath(dst) == os.path.abspath(src):
        raise InvalidArgumentError(
            f"{dst} is the source checkpoint; use inject() to change it in place"
        )
    edit(src, dst, set=resolved, **edit_options)
    return dst


def _payload_location(reader: Reader, key: str) -> Tuple[str, int, int]:
    """(data file, offset, size) of the stored bytes of `key`; for a partitioned tensor,
    those of its first stored slice."""
    e = reader.entry(key)
    if e.slices:
        e = reader.slice_entry(key, e.slices[0])
    return reader.shard_path(e.shard_id), e.offset, e.size


def corrupt(prefix: "str | os.PathLike[str]", key: str, *, at: int = 0) -> Tuple[str, int]:
    """Flips every bit of one byte of `key`'s stored payload, so that reading it fails its
    CRC32C check. Returns (data file, file offset of the byte).

    `at` is the byte's position within the payload (negative counts from its end). The
    index is untouched: the checkpoint still opens, lists and reads every other key;
    TensorFlow's restore of `key` fails with ``DataLossError: ... Checksum does not
    match``::

        corrupt(prefix, "w")               # first payload byte of w
        corrupt(prefix, "model/emb", at=-1)
    """
    prefix = os.fspath(prefix)
    with Reader(prefix) as reader:
        path, offset, size = _payload_location(reader, resolve_key(reader, key))
    if size == 0:
        raise InvalidArgumentError(f"{key} stores no bytes (an empty tensor): nothing to corrupt")
    if not -size <= at < size:
        raise InvalidArgumentError(f"byte {at} is outside the {size}-byte payload of {key}")
    where = offset + (at % size)
    with open(path, "r+b") as f:
        f.seek(where)
        b = f.read(1)
        f.seek(where)
        f.write(bytes([b[0] ^ 0xFF]))
    return path, where


def truncate_shard(
    prefix: "str | os.PathLike[str]", shard: int = 0, *, size: Optional[int] = None
) -> str:
    """Cuts data shard `shard` to `size` bytes (default: half its length), as an interrupted
    copy or a full disk would leave it. Returns the shard's path.

    Keys stored past the cut fail to read: TensorFlow says ``Read less bytes than
    requested``, tfckpt raises CorruptCheckpointError ("truncated shard?")::

        truncate_shard(prefix)             # the second half of shard 0 is gone
        truncate_shard(prefix, size=0)     # an empty data file
    """
    prefix = os.fspath(prefix)
    with Reader(prefix) as reader:
        if not 0 <= shard < reader.header.num_shards:
            raise InvalidArgumentError(
                f"{prefix} has {reader.header.num_shards} data shards; there is no shard {shard}"
            )
        path = reader.shard_path(shard)
    length = os.path.getsize(path)
    new = length // 2 if size is None else size
    if not 0 <= new <= length:
        raise InvalidArgumentError(f"cannot truncate the {length}-byte {path} to {new} bytes")
    os.truncate(path, new)
    return path
