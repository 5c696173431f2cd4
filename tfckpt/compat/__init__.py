"""TensorFlow's checkpoint-reading API without TensorFlow: ``import tfckpt.compat as tf``.

Scripts written against ``tf.train.list_variables`` / ``load_variable`` / ``load_checkpoint``
(the TF-to-PyTorch weight converters, for instance) run unchanged on tfckpt, with
TensorFlow's results, errors and quirks (FORMAT.md section 15). Provided:

* ``tf.train``: ``load_checkpoint``, ``list_variables``, ``load_variable``,
  ``latest_checkpoint``, ``get_checkpoint_state``;
* ``tf.compat.v1.train``: the same and ``NewCheckpointReader``; the reader has
  ``get_tensor``, ``has_tensor``, ``get_variable_to_shape_map``,
  ``get_variable_to_dtype_map`` and ``debug_string``;
* ``tf.errors`` (``NotFoundError`` and the other OpError classes), ``tf.dtypes``,
  ``tf.DType``, ``tf.as_dtype`` and the dtype constants (``tf.float32`` ...).

Anything else (``tf.keras``, ``tf.constant`` ...) raises AttributeError naming it.
``python -m tfckpt.compat SCRIPT.py ARGS...`` runs a script whose ``import tensorflow`` gets
this module.
"""

from __future__ import annotations

from typing import Any

from . import dtypes, errors
from .checkpoint_reader import (
    NewCheckpointReader,
    get_checkpoint_state,
    latest_checkpoint,
    list_variables,
    load_checkpoint,
    load_variable,
)
from .dtypes import DType, as_dtype
from .namespace import Namespace, missing

_READING = {
    "load_checkpoint": load_checkpoint,
    "list_variables": list_variables,
    "load_variable": load_variable,
    "latest_checkpoint": latest_checkpoint,
    "get_checkpoint_state": get_checkpoint_state,
}
_CONSTANTS = {name: getattr(dtypes, name) for name in dtypes.TOP_LEVEL}
_TYPES = {"DType": DType, "as_dtype": as_dtype, "dtypes": dtypes, "errors": errors}

#: ``tf.train`` (TensorFlow 2: no NewCheckpointReader there).
train = Namespace("tensorflow.train", _READING)
#: ``tf.compat.v1``: its ``train`` adds NewCheckpointReader.
_v1 = Namespace(
    "tensorflow.compat.v1",
    {
        "train": Namespace(
            "tensorflow.compat.v1.train", {**_READING, "NewCheckpointReader": NewCheckpointReader}
        ),
        **_TYPES,
        **_CONSTANTS,
    },
)
compat = Namespace("tensorflow.compat", {"v1": _v1})

globals().update(_CONSTANTS)

#: The stand-in modules by the name TensorFlow gives them (``python -m tfckpt.compat``).
MODULES = {
    "tensorflow": Namespace(
        "tensorflow", {**_TYPES, **_CONSTANTS, "train": train, "compat": compat}
    ),
    "tensorflow.train": train,
    "tensorflow.compat": compat,
    "tensorflow.compat.v1": _v1,
    "tensorflow.compat.v1.train": _v1.train,
    "tensorflow.errors": errors,
    "tensorflow.dtypes": dtypes,
}

__all__ = ["train", "compat", "errors", "dtypes", "DType", "as_dtype", "MODULES", *dtypes.TOP_LEVEL]


def __getattr__(name: str) -> Any:
    missing("tensorflow", name)
