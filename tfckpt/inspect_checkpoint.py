"""``python -m tfckpt.inspect_checkpoint --file_name=...``: TensorFlow's tool, without it."""

import sys

from .cli import main

if __name__ == "__main__":
    main(["inspect", *sys.argv[1:]])
