"""``python -m tfckpt.inspect_checkpoint --file_name=...``: TensorFlow's tool, without TensorFlow."""

import sys

from .cli import cmd_inspect

if __name__ == "__main__":
    sys.exit(cmd_inspect(sys.argv[1:], sys.stdout))
