"""``tfckpt migrate``: a TF1 name-based checkpoint rewritten under a TF2 model's
object-based keys (``tfckpt.migrate``)."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

import tfckpt

from ._common import EXIT_DAMAGE, EXIT_OK, pairs, write_report


def register(sub: Any) -> None:
    """Adds ``migrate`` to the subcommands (``parser.add_subparsers(...)``)."""
    m = sub.add_parser(
        "migrate",
        help="rewrite TF1 name-based keys to a TF2 model's object-based keys",
        description="Maps each OLD key to the key of the NEW model's variable of that name "
        "(the names a checkpoint of the new model records), copies the values "
        "through, and adds the new model's object graph.",
    )
    m.add_argument("old", help="the name-based (TF1 Saver) checkpoint")
    m.add_argument(
        "--like", required=True, metavar="NEW", help="any object-based checkpoint of the new model"
    )
    m.add_argument("-o", "--output", required=True, metavar="OUT")
    m.add_argument(
        "--map",
        action="append",
        metavar="OLD=NEW",
        help="a manual mapping, winning over names: an OLD key and the NEW key or "
        "object path, or a regular expression and its replacement (re.sub) "
        "that turns old keys into new variable names, keys or paths",
    )
    m.add_argument("--strict", action="store_true", help="fail unless every key on both sides maps")
    m.add_argument(
        "--no-fill",
        action="store_true",
        help="leave out new keys without an old value instead of taking NEW's",
    )
    m.add_argument("--dry-run", action="store_true", help="print the report, write nothing")
    m.add_argument("--overwrite", action="store_true")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Exit 0 when the old model values all found a new key, 1 when some (or all) would be
    lost: a migration that maps nothing must not look like success."""
    maps = pairs(args.map, "--map")
    with tfckpt.open(args.old) as reader:
        old_keys = set(reader.keys())
    name_map = {o: n for o, n in maps if o in old_keys}
    rules = [(o, n) for o, n in maps if o not in old_keys]
    report = tfckpt.migrate(
        args.old,
        args.like,
        args.output,
        name_map=name_map,
        name_rules=rules,
        strict=args.strict,
        fill_from_like=not args.no_fill,
        dry_run=args.dry_run,
        overwrite=args.overwrite,
    )
    write_report(report, args.json, out)
    return EXIT_OK if report.succeeded else EXIT_DAMAGE
