"""``tfckpt stats``: what the values look like (min, max, mean, std, NaN and Inf counts) per
tensor, tensors holding NaN or Inf first; ``--first-nonfinite`` names the first checkpoint of a
run that holds NaN or Inf. Exit 1 when a NaN or Inf is found (or a checkpoint is damaged)."""

from __future__ import annotations

import argparse
import re
from typing import Any, Dict, List, Optional, Pattern, TextIO

import tfckpt
from tfckpt.dtypes import by_code

from ._common import (
    EXIT_DAMAGE,
    EXIT_OK,
    Progress,
    UsageError,
    error_stream,
    format_shape,
    open_checkpoint,
    printable,
    run_checkpoints,
    write_json,
)


def register(sub: Any) -> None:
    """Adds ``stats`` to the subcommands (``parser.add_subparsers(...)``)."""
    p = sub.add_parser(
        "stats",
        help="min, max, mean, std and NaN/Inf counts of every tensor",
        description="Statistics of the values of every numeric tensor, read once from the "
        "stored bytes (checksums checked on the way) and accumulated in float64: tensors "
        "holding NaN or Inf first. With --first-nonfinite, PATH is a run directory and the "
        "first checkpoint by step holding NaN or Inf is named. Exit 1 when a NaN or Inf is "
        "found, or a checkpoint is damaged.",
    )
    p.add_argument("path", help="a checkpoint (with --first-nonfinite: a run directory)")
    p.add_argument("--match", metavar="RE", help="only keys this regular expression finds")
    p.add_argument("--json", action="store_true", help="{key: {...}} as JSON")
    p.add_argument(
        "--first-nonfinite",
        action="store_true",
        help="PATH is a run: name the first checkpoint (by step) holding NaN or Inf",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO) -> int:
    match = compile_match(args.match)
    if args.first_nonfinite:
        return _first_nonfinite(args, match, out)
    with open_checkpoint(args.path) as reader:
        keys = [
            k
            for k in reader.keys()
            if (match is None or match.search(k)) and by_code(reader.entry(k).dtype_code).is_numeric
        ]
        total = sum(reader.stored_size(k) for k in keys)
        with Progress("stats", error_stream(args), total=total) as progress:
            result = tfckpt.stats(reader, match, progress=progress.update)
    if args.json:
        write_json({k: s.to_dict() for k, s in result.items()}, out)
    else:
        write_table(result, out)
    return EXIT_DAMAGE if any(s.nonfinite for s in result.values()) else EXIT_OK


def compile_match(match: Optional[str]) -> Optional[Pattern[str]]:
    if match is None:
        return None
    try:
        return re.compile(match)
    except re.error as e:
        raise UsageError(f"--match: bad regular expression {match!r}: {e}") from None


def _num(v: Optional[float]) -> str:
    return "-" if v is None else f"{v:.4g}"


def write_table(result: Dict[str, Any], out: TextIO) -> None:
    """One row a tensor, aligned: those holding NaN or Inf first, then by key."""
    header = ["key", "dtype", "shape", "min", "max", "mean", "std", "nan", "+inf", "-inf"]
    rows: List[List[str]] = []
    for key in sorted(result, key=lambda k: (result[k].nonfinite == 0, k)):
        s = result[key]
        rows.append(
            [printable(key), s.dtype, format_shape(s.shape), _num(s.min), _num(s.max)]
            + [_num(s.mean), _num(s.std), str(s.nan), str(s.posinf), str(s.neginf)]
        )
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    for r in [header] + rows:
        cells = [c.ljust(w) for c, w in zip(r[:3], widths)]
        cells += [c.rjust(w) for c, w in zip(r[3:], widths[3:])]
        out.write("  ".join(cells).rstrip() + "\n")
    flagged = sum(1 for s in result.values() if s.nonfinite)
    out.write(f"# {len(result)} tensors; {flagged} with NaN or Inf\n")


def _first_nonfinite(args: argparse.Namespace, match: Optional[Pattern[str]], out: TextIO) -> int:
    found = run_checkpoints(args.path)
    err = error_stream(args)
    unreadable: Dict[str, str] = {}

    def note(_step: Any, location: Any, error: Any) -> None:
        unreadable[str(location)] = str(error)
        err.write(f"tfckpt: cannot read {printable(str(location))}: {printable(str(error))}\n")

    for c in found:
        if c.error is not None:
            note(c.step, c.location, c.error)
    readable = [(c.step, c.location) for c in found if c.error is None]
    total = sum(c.bytes for c in found if c.error is None)
    with Progress("stats", err, total=total) as progress:
        hit = tfckpt.first_nonfinite(readable, match, on_error=note, progress=progress.update)
    if args.json:
        doc = {
            "checkpoints": len(found),
            "first_nonfinite": None if hit is None else hit.to_dict(),
            "unreadable": unreadable,
        }
        write_json(doc, out)
    elif hit is None:
        tail = f"; {len(unreadable)} could not be read" if unreadable else ""
        checked = len(found) - len(unreadable)
        out.write(f"{printable(args.path)}: no NaN or Inf in {checked} checkpoint(s){tail}\n")
    else:
        out.write(
            f"first non-finite: step {hit.step}, {printable(hit.path)} "
            f"({len(hit.keys)} of {hit.tensors} tensors hold NaN or Inf)\n"
        )
        for key, s in sorted(hit.keys.items()):
            out.write(
                f"  {printable(key)}: {s.nan} NaN, {s.posinf} +Inf, {s.neginf} -Inf of {s.count}\n"
            )
    return EXIT_DAMAGE if hit is not None or unreadable else EXIT_OK
