"""The stand-in modules of ``tfckpt.compat`` (``tf.train``, ``tf.compat.v1`` ...): each offers
what it was given and fails at once, naming the attribute, for anything TensorFlow has that
it does not, so a script learns on its first line that it needs TensorFlow itself."""

from __future__ import annotations

from types import ModuleType
from typing import Any, NoReturn

__all__ = ["Namespace", "missing"]


def missing(module: str, attr: str) -> NoReturn:
    """Raises the AttributeError for `module.attr`, which tfckpt.compat does not provide."""
    if attr.startswith("__") and attr.endswith("__"):  # probes by import machinery, inspect
        raise AttributeError(f"module {module!r} has no attribute {attr!r}")
    raise AttributeError(
        f"{module}.{attr} is not provided by tfckpt.compat, which stands in for TensorFlow's "
        "checkpoint-reading API only (tf.train.load_checkpoint, list_variables, load_variable, "
        "latest_checkpoint, tf.compat.v1.train.NewCheckpointReader, tf.errors, the dtypes); "
        "run this script with TensorFlow installed"
    )


class Namespace(ModuleType):
    """A module holding `members`, named as TensorFlow names it (``tensorflow.train``)."""

    def __init__(self, name: str, members: dict) -> None:
        super().__init__(name)
        self.__dict__.update(members)
        # A package, so that `from tensorflow import keras` asks the import system for
        # tensorflow.keras and the runner's finder can say it is not provided.
        self.__path__: list = []

    def __getattr__(self, attr: str) -> Any:
        missing(self.__name__, attr)

    def __dir__(self) -> list:
        return sorted(k for k in self.__dict__ if not k.startswith("__"))
