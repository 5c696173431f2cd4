"""``tfckpt plot``: each tensor's L2 norm and largest magnitude against the step of a run, as a
PNG, the checkpoints holding NaN or Inf marked; one line per tensor, or per group of tensors
when there are many. Needs matplotlib (``pip install 'tfckpt[plot]'``)."""

from __future__ import annotations

import argparse
import json
import math
import re
from typing import Any, Dict, List, Optional, Pattern, TextIO

import tfckpt

from ._common import (
    EXIT_DAMAGE,
    EXIT_OK,
    Progress,
    UsageError,
    error_stream,
    printable,
    run_checkpoints,
)

#: More tensors than this are drawn as groups (by the first part of their key).
MAX_LINES = 12
#: The suffix of object-based keys, left out of the legend.
_VALUE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
_MISSING = "plot needs matplotlib, which is not installed (pip install 'tfckpt[plot]')"


def register(sub: Any) -> None:
    """Adds ``plot`` to the subcommands (``parser.add_subparsers(...)``)."""
    p = sub.add_parser(
        "plot",
        help="plot per-tensor L2 norms and max |x| across the steps of a run",
        description="Draws each tensor's L2 norm and largest |x| (over its finite values) "
        "against the step of every checkpoint of a run, one line per tensor (per group when "
        "there are many), checkpoints holding NaN or Inf marked in red. Needs matplotlib. "
        "Exit 1 when a checkpoint of the run could not be read (the rest is plotted).",
    )
    p.add_argument("run_dir", help="a directory of checkpoints (searched as tfckpt scan does)")
    p.add_argument("-o", "--output", required=True, metavar="FILE.png", help="the PNG to write")
    p.add_argument("--match", metavar="RE", help="only keys this regular expression finds")
    p.add_argument("--data", metavar="FILE.json", help="also write the plotted series as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO) -> int:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError(_MISSING) from None
    try:
        match = re.compile(args.match) if args.match else None
    except re.error as e:
        raise UsageError(f"--match: bad regular expression {args.match!r}: {e}") from None
    if not args.output.lower().endswith(".png"):
        raise UsageError(f"plot: -o {args.output!r}: the picture is written as PNG (FILE.png)")
    err = error_stream(args)
    data = series(args.run_dir, match, err)
    draw(data, args.output)
    if args.data:
        with open(args.data, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1)
            f.write("\n")
    marked = ", ".join(str(s) for s in data["nonfinite_steps"])
    out.write(
        f"{printable(args.output)}: {len(data['lines'])} line(s) over {len(data['steps'])} "
        f"checkpoint(s)" + (f"; NaN or Inf at step {marked}" if marked else "") + "\n"
    )
    return EXIT_DAMAGE if data["unreadable"] else EXIT_OK


def _group_names(keys: List[str]) -> Dict[str, str]:
    """key -> the line it is drawn in: itself while there are few keys, else the first part
    of the key (``encoder/layer_1/kernel`` -> ``encoder``)."""
    if len(keys) <= MAX_LINES:
        return {k: k for k in keys}
    return {k: k.split("/", 1)[0] for k in keys}


def series(run_dir: str, match: Optional[Pattern[str]], err: TextIO) -> Dict[str, Any]:
    """The plotted numbers: per readable checkpoint its step and path; per line its L2 norm
    (over the finite values; a group's is the norm of its tensors together), its largest
    finite |x| and its count of NaN and Inf, one value per checkpoint (None where the line's
    tensors have no finite value there); the steps whose checkpoint holds NaN or Inf; the
    checkpoints that could not be read, with why."""
    checkpoints = run_checkpoints(run_dir)
    per_step: List[Any] = []
    unreadable: Dict[str, str] = {}
    total = sum(c.bytes for c in checkpoints if c.error is None)
    with Progress("plot", err, total=total) as progress:
        for c in checkpoints:
            error = c.error
            if error is None:
                try:
                    per_step.append((c, tfckpt.stats(c.location, match, progress=progress.update)))
                    continue
                except tfckpt.CheckpointError as e:
                    error = str(e)
            unreadable[c.location] = error
            err.write(f"tfckpt: cannot read {printable(c.location)}: {printable(error)}\n")
    if not per_step:
        raise UsageError(f"{run_dir}: no checkpoint could be read")
    names = _group_names(sorted({k for _, result in per_step for k in result}))
    lines: Dict[str, Dict[str, List[Any]]] = {
        name: {"l2": [], "max_abs": [], "nonfinite": [], "keys": []}
        for name in sorted(set(names.values()))
    }
    for key, name in sorted(names.items()):
        lines[name]["keys"].append(key)
    for _, result in per_step:
        squares: Dict[str, float] = {}
        top: Dict[str, float] = {}
        bad: Dict[str, int] = {}
        for key, s in result.items():
            name = names[key]
            bad[name] = bad.get(name, 0) + s.nonfinite
            if s.l2 is not None and s.max_abs is not None:
                squares[name] = squares.get(name, 0.0) + s.l2 * s.l2
                top[name] = max(top.get(name, 0.0), s.max_abs)
        for name, line in lines.items():
            grouped = len(line["keys"]) > 1
            l2 = None
            if name in squares:
                l2 = math.sqrt(squares[name]) if grouped else result[line["keys"][0]].l2
            line["l2"].append(l2)
            line["max_abs"].append(top.get(name))
            line["nonfinite"].append(bad.get(name))
    return {
        "steps": [c.step for c, _ in per_step],
        "paths": [c.location for c, _ in per_step],
        "grouped": any(len(line["keys"]) > 1 for line in lines.values()),
        "lines": lines,
        "nonfinite_steps": [
            c.step for c, result in per_step if any(s.nonfinite for s in result.values())
        ],
        "unreadable": unreadable,
    }


def _label(name: str) -> str:
    text = name[: -len(_VALUE_SUFFIX)] if name.endswith(_VALUE_SUFFIX) else name
    return text if len(text) <= 40 else "..." + text[-37:]


def _wants_log(values: List[float]) -> bool:
    positive = [v for v in values if v > 0]
    return bool(positive) and max(positive) / min(positive) > 100


def draw(data: Dict[str, Any], output: str) -> None:
    """Two panels over the steps: L2 norms above, max |x| below; a legend beside them; the
    checkpoints holding NaN or Inf marked by red dashed lines; log scales where the values
    span more than two decades."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise UsageError(_MISSING) from None
    known = all(s is not None for s in data["steps"])
    xs = data["steps"] if known else list(range(1, len(data["steps"]) + 1))
    bad_xs = [x for x, c in zip(xs, data["paths"]) if _is_bad(data, c)]
    n = len(data["lines"])
    colors = plt.get_cmap("tab10" if n <= 10 else "tab20")
    fig, axes = plt.subplots(2, 1, sharex=True, figsize=(10, 7), dpi=100)
    panels = ((axes[0], "l2", "L2 norm"), (axes[1], "max_abs", "max |x|"))
    for ax, field, ylabel in panels:
        values: List[float] = []
        for i, (name, line) in enumerate(data["lines"].items()):
            ys = [math.nan if v is None else v for v in line[field]]
            values += [v for v in ys if math.isfinite(v)]
            ax.plot(
                xs,
                ys,
                marker="o",
                markersize=3,
                linewidth=1.5,
                color=colors(i % 20),
                label=_label(name) + (f" ({len(line['keys'])})" if data["grouped"] else ""),
            )
        if _wants_log(values):
            ax.set_yscale("log", nonpositive="mask")
        for j, x in enumerate(bad_xs):
            ax.axvline(
                x,
                color="red",
                linestyle="--",
                linewidth=1.5,
                label="holds NaN or Inf" if j == 0 else None,
            )
        ax.set_ylabel(ylabel + (" (log)" if ax.get_yscale() == "log" else ""))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
    what = "per-group (tensors in each)" if data["grouped"] else "per-tensor"
    axes[0].set_title(f"{what} norms over the finite values, across the run")
    axes[1].set_xlabel("step" if known else "checkpoint (in order; steps unknown)")
    handles, labels = axes[0].get_legend_handles_labels()
    axes[0].legend(
        handles,
        labels,
        fontsize=8 if n <= 12 else 7,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        borderaxespad=0,
        frameon=False,
    )
    fig.tight_layout()
    fig.savefig(output, bbox_inches="tight")
    plt.close(fig)


def _is_bad(data: Dict[str, Any], path: str) -> bool:
    i = data["paths"].index(path)
    return any(line["nonfinite"][i] for line in data["lines"].values())
