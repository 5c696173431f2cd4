"""The ``tfckpt`` command: one module per subcommand, built on tfckpt's public API only.

Exit status: 0 all is well, 1 damage found (corrupt bytes, checksum mismatch, missing shard),
2 usage or I/O error (a bad path, a missing key, a file that is not a checkpoint).
TensorFlow's inspect_checkpoint flags (``tfckpt --file_name=...``) run the drop-in
(:mod:`tfckpt.cli.inspect`).
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Optional, Sequence, TextIO

import tfckpt

from . import (
    average,
    convert,
    diff,
    dump,
    edit,
    explain,
    inspect,
    migrate,
    plot,
    refs,
    scan,
    stats,
    verify,
)
from ._common import (
    EXIT_DAMAGE,
    EXIT_DIFFERENT,
    EXIT_OK,
    EXIT_TROUBLE,
    Progress,
    UsageError,
    format_bytes,
    format_shape,
    printable,
)

__all__ = [
    "main",
    "run",
    "build_parser",
    "UsageError",
    "Progress",
    "format_bytes",
    "format_shape",
    "EXIT_OK",
    "EXIT_DAMAGE",
    "EXIT_DIFFERENT",
    "EXIT_TROUBLE",
]

#: The subcommands, in the order ``tfckpt --help`` lists them.
_SUBCOMMANDS = (
    dump,
    verify,
    inspect,
    stats,
    plot,
    scan,
    refs,
    edit,
    average,
    migrate,
    diff,
    explain,
    convert,
)


def version_text() -> str:
    """The version and which core reads and writes bytes (a wheel's C++ extension, or the
    pure-Python twin where no wheel fitted and nothing could be compiled)."""
    core = {"native": "native C++ core", "python": "pure-Python core (slower)"}
    return (
        f"tfckpt {tfckpt.__version__} ({core.get(tfckpt.implementation, tfckpt.implementation)}"
        f", CRC32C: {tfckpt.crc32c_implementation})"
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tfckpt",
        description="Read, write, verify and inspect TensorFlow checkpoints without TensorFlow.",
        epilog="Exit status: 0 ok, 1 damage found, 2 usage or I/O error. "
        "TensorFlow's inspect_checkpoint flags (--file_name ...) work too.",
    )
    p.add_argument("--version", action="version", version=version_text())
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for command in _SUBCOMMANDS:
        command.register(sub)
    return p


def run(
    argv: Optional[Sequence[str]] = None, out: Optional[TextIO] = None, err: Optional[TextIO] = None
) -> int:
    """Runs the command line `argv` and returns the exit status (for scripts and tests)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        if argv == ["--version"]:  # to `out`, which argparse's action would not use
            out.write(version_text() + "\n")
            return EXIT_OK
        if argv and argv[0] == "inspect":
            return inspect.run_argv(argv[1:], out)
        if argv and argv[0] == "dump" and inspect.wants_inspect(argv[1:], inspect.ONLY_FLAGS):
            return inspect.run_argv(argv[1:], out)
        if argv and argv[0].startswith("--") and inspect.wants_inspect(argv, abbrev=True):
            return inspect.run_argv(argv, out)
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as e:
            return EXIT_OK if e.code == 0 else EXIT_TROUBLE
        if not getattr(args, "func", None):
            parser.print_help(out)
            return EXIT_TROUBLE
        args.err = err
        return args.func(args, out)
    except tfckpt.UnreadableError as e:  # there but not readable: I/O, not damage
        err.write(f"tfckpt: {printable(str(e), keep_newlines=True)}\n")
        return EXIT_TROUBLE
    except (tfckpt.CorruptCheckpointError, tfckpt.MissingShardError) as e:
        err.write(f"tfckpt: {printable(str(e), keep_newlines=True)}\n")
        return EXIT_DAMAGE
    except (UsageError, tfckpt.CheckpointError) as e:  # a missing key, a bad path: trouble
        err.write(f"tfckpt: {printable(str(e), keep_newlines=True)}\n")
        return EXIT_TROUBLE
    except OSError as e:
        if isinstance(e, BrokenPipeError):
            raise
        err.write(f"tfckpt: {printable(str(e), keep_newlines=True)}\n")
        return EXIT_TROUBLE


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Console entry point (also of ``python -m tfckpt`` and
    ``python -m tfckpt.inspect_checkpoint``)."""
    # Behave like a Unix tool in a pipe: `tfckpt dump X | head` ends quietly, the process
    # ended by SIGPIPE as `cat` or `grep` would be.
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        code = run(argv)
        sys.stdout.flush()
    except KeyboardInterrupt:
        sys.stderr.write("tfckpt: interrupted\n")
        code = 130
    except Exception as e:  # noqa: BLE001 - a bug: still one line, no traceback
        sys.stderr.write(f"tfckpt: internal error: {type(e).__name__}: {e}\n")
        code = EXIT_TROUBLE
    sys.exit(code)
