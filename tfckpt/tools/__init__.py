"""Whole-checkpoint tools: diff, explain a restore, average, migrate name-based keys, convert
to and from ``.npz`` and ``.safetensors``, and format V1 checkpoints to V2; one tool a module.

Every tool streams tensor by tensor (large tensors in chunks along their first axis) and
copies bytes it does not change without decoding them, as :func:`tfckpt.edit` does.

::

    tfckpt.diff("old/ckpt-9", "fresh/ckpt-1")            # why "Key not found"?
    tfckpt.explain_restore("old/ckpt-9", "fresh/ckpt-1")  # what restore() will do
    tfckpt.average(["r/ckpt-8", "r/ckpt-9", "r/ckpt-10"], "avg/ckpt-10")
    tfckpt.migrate("tf1/model.ckpt-500", like="tf2/ckpt-1", out="migrated/ckpt-1")
    tfckpt.to_safetensors("run/ckpt-9", "weights.safetensors")
    tfckpt.from_npz("weights.npz", "port/ckpt-1", object_graph=True)
    tfckpt.tools.to_v2("old/model.ckpt-?????-of-00004", "new/model.ckpt")  # V1 -> V2
"""

from __future__ import annotations

from .average import average
from .convert import ConversionReport, to_v2
from .diff import DiffResult, ValueChange, diff
from .explain import Mismatch, RestoreReport, explain_restore
from .migrate import MigrationReport, migrate
from .npz import from_npz, to_npz
from .optimizer import optimizer_keys
from .safetensors import from_safetensors, read_safetensors_header, to_safetensors
from .stats import NonFinite, TensorStats, first_nonfinite, stats

__all__ = [
    "diff",
    "DiffResult",
    "ValueChange",
    "explain_restore",
    "RestoreReport",
    "Mismatch",
    "average",
    "migrate",
    "MigrationReport",
    "optimizer_keys",
    "to_npz",
    "from_npz",
    "to_safetensors",
    "from_safetensors",
    "ConversionReport",
    "to_v2",
    "read_safetensors_header",
    "stats",
    "TensorStats",
    "first_nonfinite",
    "NonFinite",
]
