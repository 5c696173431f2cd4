"""The Keras 3 weights file: ``.weights.h5``, alone or inside a ``.keras`` archive (beside the
model's ``config.json``). Its layout, the order Keras 3 gives its variables, and a copy of it
with other values. Needs h5py (``pip install 'tfckpt[keras]'``).

Keras 3 stores each layer's own variables as datasets ``vars/0``, ``vars/1`` ... (trainable
first) in a group at the layer's path: ``layers/<snake_case(ClassName)>[_k]`` inside a
container, ``k`` counting the container's earlier layers of the same class; nested models
nest (``layers/sequential/layers/dense/vars/0``), sub-objects sit under their attribute names
(``layers/lstm/cell/vars/0``). The layer's name is only the ``name`` attribute of its ``vars``
group.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import zipfile
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Tuple

from ..errors import CheckpointError, NotACheckpointError
from ..files import HDF5_MAGIC

__all__ = ["WeightsFile", "VarsGroup", "Dataset", "snake_case", "h5py_module"]

#: The members of a ``.keras`` archive this module reads.
WEIGHTS_MEMBER = "model.weights.h5"
CONFIG_MEMBER = "config.json"
#: The group that holds one layer's own variables.
VARS = "vars"
#: The marker Keras 3 puts on a dataset holding bfloat16 values.
BFLOAT16 = "bfloat16"
#: Sub-objects of a layer in the order Keras 3 lists their weights (the layer's tracking
#: order: a Bidirectional's forward layer before its backward one); others follow by name.
_SUBOBJECT_ORDER = ("cell", "cells", "layer", "forward_layer", "backward_layer")
_NUMBERED = re.compile(r"^(?P<base>.*?)(?:_(?P<k>\d+))?$")


def h5py_module() -> Any:
    """h5py, or an error that says how to get it: it is an optional extra."""
    try:
        import h5py
    except ImportError:
        raise CheckpointError(
            "Keras .weights.h5 files need h5py: pip install 'tfckpt[keras]' (or pip install h5py)"
        ) from None
    return h5py


def snake_case(class_name: str) -> str:
    """A layer class name as Keras 3 names its group in a container: ``BatchNormalization``
    -> ``batch_normalization``, ``Conv2D`` -> ``conv2d``."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def unique_name(base: str, used: Dict[str, int]) -> str:
    """The name of the next layer of class `base` in a container (``dense``, ``dense_1``...);
    `used` counts what the container named so far."""
    if base in used:
        used[base] += 1
        return f"{base}_{used[base]}"
    used[base] = 0
    return base


def numbered(name: str) -> Tuple[str, int]:
    """(class part, number) of a group name in a container: ``dense_2`` -> (``dense``, 2),
    ``dense`` -> (``dense``, 0)."""
    m = _NUMBERED.match(name)
    assert m is not None
    return m.group("base"), int(m.group("k") or 0)


def join(*parts: str) -> str:
    return "/".join(p for p in parts if p)


@dataclass(frozen=True)
class Dataset:
    """One variable in the file."""

    path: str  # "layers/dense/vars/0"
    shape: Tuple[int, ...]
    dtype: str  # the numpy name ("float32"), or "bfloat16"


@dataclass(frozen=True)
class VarsGroup:
    """One layer's own variables."""

    path: str  # the layer's path ("layers/dense"; "" for the model)
    name: str  # the layer's name (the vars group's ``name`` attribute)
    datasets: Tuple[Dataset, ...]


class WeightsFile:
    """A Keras 3 weights file opened for reading: a ``.weights.h5``, or a ``.keras`` archive
    (then :attr:`config` is its ``config.json``)."""

    def __init__(self, path: "str | os.PathLike[str]") -> None:
        h5py = h5py_module()
        self.path = os.fspath(path)
        self.config: Optional[Dict[str, Any]] = None
        self._data: Optional[bytes] = None
        try:
            with open(self.path, "rb") as f:
                head = f.read(8)
        except OSError as e:
            raise CheckpointError(f"{self.path}: {e.strerror}", path=self.path) from None
        if zipfile.is_zipfile(self.path):
            with zipfile.ZipFile(self.path) as z:
                names = z.namelist()
                if WEIGHTS_MEMBER not in names:
                    raise NotACheckpointError(
                        f"{self.path}: a zip archive without "
                        f"{WEIGHTS_MEMBER}, so not a .keras model",
                        path=self.path,
                    )
                if CONFIG_MEMBER in names:
                    self.config = json.loads(z.read(CONFIG_MEMBER))
                self._data = z.read(WEIGHTS_MEMBER)
            self.file = h5py.File(io.BytesIO(self._data), "r")
        elif head.startswith(HDF5_MAGIC):
            self.file = h5py.File(self.path, "r")
        else:
            raise NotACheckpointError(
                f"{self.path}: neither a .keras archive nor an HDF5 .weights.h5 file",
                path=self.path,
            )
        self.groups = self._vars_groups()

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> "WeightsFile":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- layout -------------------------------------------------------------------------
    def _vars_groups(self) -> Dict[str, VarsGroup]:
        h5py = h5py_module()
        found: Dict[str, VarsGroup] = {}

        def visit(name: str, obj: Any) -> None:
            if not (isinstance(obj, h5py.Group) and name.split("/")[-1] == VARS):
                return
            layer = name[: -len(VARS)].rstrip("/")
            items = sorted(
                (k for k in obj if isinstance(obj[k], h5py.Dataset)),
                key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k),
            )
            datasets = tuple(
                Dataset(f"{name}/{k}", tuple(obj[k].shape), dataset_dtype(obj[k])) for k in items
            )
            label = obj.attrs.get("name", "")
            found[layer] = VarsGroup(
                layer, label.decode() if isinstance(label, bytes) else str(label), datasets
            )

        self.file.visititems(visit)
        return found

    def has_layer_list(self) -> bool:
        """Whether the model config lists the layers (Sequential, Functional), so the
        layer order is known; a subclassed model's config does not."""
        return self.config is not None and isinstance(
            (self.config.get("config") or {}).get("layers"), list
        )

    def ordered_groups(self) -> List[VarsGroup]:
        """The layers holding variables in the order Keras 3 lists ``model.weights``: the
        config's layers in order, each one's own variables, then its sub-objects (a nested
        model's layers, an RNN's cell, a Bidirectional's forward then backward layer)."""
        assert self.config is not None
        paths: List[str] = []
        self._walk_config(self.config, "", paths)
        return [self.groups[p] for p in paths if p in self.groups and self.groups[p].datasets]

    def _walk_config(self, cfg: Dict[str, Any], path: str, out: List[str]) -> None:
        h5py = h5py_module()
        if path and not isinstance(self.file.get(path), h5py.Group):
            if cfg.get("class_name") == "InputLayer":
                return
            raise CheckpointError(
                f"{self.path}: config.json has the layer "
                f"{cfg.get('config', {}).get('name')!r} "
                f"({cfg.get('class_name')}) at {path}, but the weights "
                "have no group there",
                path=self.path,
            )
        out.append(path)
        layers = (cfg.get("config") or {}).get("layers")
        if not isinstance(layers, list):
            self._walk_subobjects(path, out)
            return
        if cfg.get("class_name") == "Sequential":  # its input is no layer of model.layers
            layers = [c for c in layers if c.get("class_name") != "InputLayer"]
        used: Dict[str, int] = {}
        for layer in layers:
            name = unique_name(snake_case(str(layer.get("class_name", ""))), used)
            self._walk_config(layer, join(path, "layers", name), out)

    def _walk_subobjects(self, path: str, out: List[str]) -> None:
        group = self.file[path] if path else self.file
        subs = [k for k in group if k != VARS and hasattr(group[k], "keys")]

        def order(k: str) -> Tuple[int, str, int]:
            rank = _SUBOBJECT_ORDER.index(k) if k in _SUBOBJECT_ORDER else len(_SUBOBJECT_ORDER)
            base, n = numbered(k)
            return rank, base, n

        for k in sorted(subs, key=order):
            sub = join(path, k)
            if VARS in group[k]:
                out.append(sub)
            self._walk_subobjects(sub, out)

    # -- values -------------------------------------------------------------------------
    def read(self, dataset: str) -> Any:
        """The values of one dataset (bfloat16 ones as ml_dtypes.bfloat16)."""
        import numpy as np

        ds = self.file[dataset]
        value = np.asarray(ds[()])
        if dataset_dtype(ds) == BFLOAT16:
            import ml_dtypes

            value = value.view(ml_dtypes.bfloat16)
        return value

    def copy_with(self, out_path: str, values: Iterable[Tuple[str, Any]]) -> None:
        """Writes this file to `out_path` byte for byte, then replaces the values of the
        given (dataset path, array) pairs: every group, attribute, dtype and the order stay
        the target's."""
        h5py = h5py_module()
        import numpy as np

        if self._data is not None:
            with open(out_path, "wb") as f:
                f.write(self._data)
        else:
            shutil.copyfile(self.path, out_path)
        with h5py.File(out_path, "r+") as f:
            for dataset, value in values:
                ds = f[dataset]
                arr = np.asarray(value)
                if dataset_dtype(ds) == BFLOAT16:
                    arr = arr.view(ds.dtype)
                ds[...] = arr


def dataset_dtype(ds: Any) -> str:
    """A dataset's dtype as a name: Keras 3 marks bfloat16 values with an attribute."""
    if ds.attrs.get("dtype") in (BFLOAT16, BFLOAT16.encode()):
        return BFLOAT16
    return str(ds.dtype)
