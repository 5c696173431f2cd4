"""Conversions: format V1 -> V2, and what the ``.npz`` and ``.safetensors`` converters share
(the report, the file that appears only when complete, refusing or skipping what a format
cannot hold, writing named arrays as a checkpoint with an object graph built for them)."""

from __future__ import annotations

import contextlib
import os
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from ..errors import CheckpointError, InvalidArgumentError
from ..keys import (
    OBJECT_GRAPH_KEY,
    VARIABLE_VALUE,
    parse_object_key,
    parse_slot_key,
    split_object_path,
    unescape_local_name,
)
from ..objects import build_object_graph
from ..reader import open as open_checkpoint
from ..writer import Writer
from ._common import opened

__all__ = ["to_v2", "ConversionReport"]


@dataclass
class ConversionReport:
    """What a conversion wrote, and what it skipped and why."""

    src: str
    dst: str
    written: List[str] = field(default_factory=list)
    skipped: Dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        lines = [f"skipped {k}: {why}" for k, why in self.skipped.items()]
        lines.append(
            f"# {len(self.written)} tensors written to {self.dst}, {len(self.skipped)} skipped"
        )
        return "\n".join(lines)

    def to_json(self) -> dict:
        return asdict(self)


@contextlib.contextmanager
def atomic_file(path: "str | os.PathLike[str]", overwrite: bool) -> Iterator[str]:
    """A temporary file beside `path`, renamed onto it when the block ends without error, so
    an interrupted conversion never leaves a partial file under the final name."""
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise CheckpointError(f"{path} exists; pass overwrite=True (--overwrite) to replace it")
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp{uuid.uuid4().hex}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def refuse_or_skip(
    report: ConversionReport, problems: Dict[str, str], what: str, skip_unsupported: bool
) -> None:
    """Raises one error listing every tensor `what` cannot hold, or with `skip_unsupported`
    records them as skipped: a conversion fails before writing anything, or not at all."""
    if not problems:
        return
    if not skip_unsupported:
        listing = "\n".join(f"  {k}: {why}" for k, why in problems.items())
        raise InvalidArgumentError(
            f"{len(problems)} tensors cannot be stored in {what}:\n{listing}\n"
            "pass skip_unsupported=True (--skip-unsupported) to convert the rest"
        )
    report.skipped.update(problems)


def to_v2(
    ckpt: Any,
    out: "str | os.PathLike[str]",
    progress: Optional[Callable[[int], None]] = None,
    **write_kwargs: Any,
) -> ConversionReport:
    """Writes checkpoint `ckpt` as a format V2 bundle at prefix `out`; meant for format V1
    checkpoints (a V1 file, a sharded pattern such as ``model.ckpt-?????-of-00003``, a
    directory naming one), and takes any checkpoint :func:`tfckpt.open` reads.

    Keys and dtypes are kept, and partitioned tensors stay partitioned with the same slices
    (same extents, so the same slice keys TensorFlow's V2 saver writes): a
    ``tf.compat.v1.train.Saver`` restores the result into the graph that wrote the V1 file.
    Slices are read one at a time. `write_kwargs` go to :class:`tfckpt.Writer` (e.g.
    ``overwrite=True``, ``max_shard_bytes``). `progress(nbytes)` is called with the stored
    bytes of each key as it is written.
    """
    with opened(ckpt, open_with=open_checkpoint) as (reader,):
        report = ConversionReport(src=reader.prefix, dst=os.fspath(out))
        with Writer(out, **write_kwargs) as w:
            for key in reader.keys():
                if progress is not None:
                    progress(reader.stored_size(key))
                e = reader.entry(key)
                if not e.slices:
                    w.add(key, reader.read(key), dtype=e.dtype_code)
                else:
                    for s in e.slices:
                        w.add_slice(
                            key, e.shape, s.spec, reader.read_slice(key, s.spec), dtype=e.dtype_code
                        )
                report.written.append(key)
    return report


def write_tensors(
    values: Iterable[Tuple[str, Any, Any]],
    names: Sequence[str],
    out: Any,
    object_graph: bool,
    report: ConversionReport,
    write_kwargs: Dict[str, Any],
) -> None:
    """Writes (name, array, dtype) triples with a Writer (dtype as ``Writer.add`` takes it,
    None for the array's own), building an object graph for path-like names first when
    asked."""
    key_of: Dict[str, str] = {}
    graph_bytes = None
    if object_graph:
        if OBJECT_GRAPH_KEY in names:
            raise InvalidArgumentError(
                f"the input already holds {OBJECT_GRAPH_KEY}: write it as given "
                "(object_graph=False) to keep that graph"
            )
        graph_bytes, key_of = _graph_for_names(list(names))
    with Writer(out, **write_kwargs) as w:
        for name, arr, dtype in values:
            w.add(key_of.get(name, name), arr, dtype=dtype)
            report.written.append(name)
        if graph_bytes is not None:
            w.add(OBJECT_GRAPH_KEY, graph_bytes)


def _graph_for_names(names: Sequence[str]) -> Tuple[bytes, Dict[str, str]]:
    """(object graph bytes, name -> checkpoint key) for object paths or object keys."""
    variables: List[Tuple[str, ...]] = []
    slots: List[Tuple[Tuple[str, ...], Tuple[str, ...], str]] = []
    origin: Dict[Any, str] = {}
    for name in names:
        slot = parse_slot_key(name)
        if slot is not None and slot[3] == VARIABLE_VALUE:
            var, opt, slot_name, _ = slot
            spec = (
                tuple(split_object_path(var)),
                tuple(split_object_path(opt)),
                unescape_local_name(slot_name),
            )
            slots.append(spec)
            origin[spec] = name
            continue
        value = parse_object_key(name)
        parts = (
            tuple(split_object_path(value[0]))
            if value and value[1] == VARIABLE_VALUE
            else tuple(name.split("/"))
        )
        if any(not p for p in parts):
            raise InvalidArgumentError(f"{name!r} is not an object path (an empty local name)")
        variables.append(parts)
        origin[parts] = name
    try:
        graph, key_of = build_object_graph(variables, slots)
    except ValueError as e:
        raise InvalidArgumentError(f"cannot build an object graph: {e}") from None
    return graph, {origin[k]: v for k, v in key_of.items()}
