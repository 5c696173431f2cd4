"""What TensorFlow itself reads from a checkpoint: the test oracle.

``oracle(prefix)`` uses TF's CheckpointReader (``tf.train.load_checkpoint``)
in-process; ``inspect_output(prefix, *flags)`` runs TF's inspect_checkpoint
tool in a subprocess (about 3 s each: use sparingly).  Nothing in here
imports tfckpt.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from typing import Any, Dict, Tuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

INSPECT_MODULE = "tensorflow.python.tools.inspect_checkpoint"


def _tf():
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    return tf


def _err(e: BaseException) -> Tuple[str, str]:
    return (type(e).__name__, str(e))


def oracle(prefix: str) -> Dict[str, Any]:
    """Returns what TF 2.21 reads from checkpoint ``prefix``.

    Keys of the result:
      ``open_error``: None, or (exception class name, message) when
          ``tf.train.load_checkpoint`` refuses the path (then all other
          entries are empty).
      ``list_variables``: ``tf.train.list_variables(prefix)``, a sorted list
          of (name, shape list).
      ``dtypes``: {name: tf.DType.name} from ``get_variable_to_dtype_map``.
      ``shapes``: {name: shape list} from ``get_variable_to_shape_map``.
      ``values``: {name: numpy array (or bytes for scalar strings, as TF
          returns it)} for every listed key TF could read.
      ``errors``: {name: (exception class name, message)} for every listed
          key where ``get_tensor`` raised.
      ``debug_string``: ``reader.debug_string()`` decoded as inspect_checkpoint
          does (utf-8, errors ignored), or None if it raised.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tf = _tf()
    res: Dict[str, Any] = {
        "prefix": str(prefix),
        "open_error": None,
        "list_variables": [],
        "dtypes": {},
        "shapes": {},
        "values": {},
        "errors": {},
        "debug_string": None,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            reader = tf.train.load_checkpoint(str(prefix))
        except Exception as e:
            res["open_error"] = _err(e)
            return res
        res["list_variables"] = [(k, list(s)) for k, s in tf.train.list_variables(str(prefix))]
        res["dtypes"] = {k: v.name for k, v in reader.get_variable_to_dtype_map().items()}
        res["shapes"] = {k: list(v) for k, v in reader.get_variable_to_shape_map().items()}
        for k, _ in res["list_variables"]:
            try:
                res["values"][k] = reader.get_tensor(k)
            except Exception as e:
                res["errors"][k] = _err(e)
        try:
            res["debug_string"] = reader.debug_string().decode("utf-8", errors="ignore")
        except Exception:
            pass
    return res


def inspect_result(prefix: str, *flags: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Runs ``python -m tensorflow.python.tools.inspect_checkpoint --file_name=prefix *flags``.

    Returns the CompletedProcess (text mode) so callers can see the exit
    status and stderr as well.
    """
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
    return subprocess.run(
        [sys.executable, "-m", INSPECT_MODULE, f"--file_name={prefix}", *flags],
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="surrogateescape",
        timeout=timeout,
    )


def inspect_output(prefix: str, *flags: str) -> str:
    """stdout of TF's inspect_checkpoint for ``prefix`` with ``flags``.

    Examples: ``inspect_output(p)`` (default debug-string mode),
    ``inspect_output(p, "--all_tensor_names")``, ``inspect_output(p,
    "--all_tensors")``, ``inspect_output(p, "--tensor_name=K")``.
    """
    return inspect_result(prefix, *flags).stdout


if __name__ == "__main__":  # pragma: no cover - manual use
    import pprint

    o = oracle(sys.argv[1])
    o["values"] = {
        k: (getattr(v, "dtype", type(v)), getattr(v, "shape", None)) for k, v in o["values"].items()
    }
    pprint.pprint(o, width=140)
