#!/usr/bin/env python3
"""Mutation testing for tfckpt: plants one small bug at a time and checks the tests notice.

Each mutant in MUTANTS is (id, file, exact original snippet, replacement, description, tests).
The runner copies the repository (tracked and untracked files, no ignored ones) to a temporary
directory, runs the chosen tests once unmutated (they must pass), then for each mutant: applies
it, rebuilds the native extension when the file is C++ (``setup.py build_ext --inplace
--force``), runs ``pytest -x`` on the mutant's tests, records KILLED (a test failed) or
SURVIVED (all passed), restores the file (and the unmutated extension), and goes on. A
snippet that is not found exactly once is an ERROR: code moves, and a mutant that silently
stops applying would inflate the score. So is a C++ mutant that does not compile.

    python mutation/run.py                  # every mutant; about 15-25 minutes on 2 cores
    python mutation/run.py --list           # the mutants (and whether each still applies)
    python mutation/run.py --only R1 K2     # some of them
    python mutation/run.py --json out.json  # also write the results as JSON

Run it with the project's environment (the Python that runs the tests: numpy, pytest,
TensorFlow). The TensorFlow corpus the tests build is kept in --corpus-dir between runs.
Building the extension needs pybind11 in --build-python (default: the first of this Python
and ``python3`` on PATH that has it and the same extension suffix). Not part of CI: see
mutation/README.md for the last score and the survivors.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent

# Test subsets, fastest first (-x stops at the first failure).
READER = ("tests/test_fixtures.py", "tests/test_reader.py")
ASSEMBLY = ("tests/test_fixtures.py", "tests/test_reader.py", "tests/test_v1.py")
CORRUPTION = ("tests/test_reader.py", "tests/test_corruption.py")
CRC = ("tests/test_native_crc_snappy.py", "tests/test_reader.py", "tests/test_pycore.py")
WRITER = ("tests/test_reader.py", "tests/test_writer.py")
DTYPES = (
    "tests/test_dtypes.py",
    "tests/test_fixtures.py",
    "tests/test_reader.py",
    "tests/test_writer.py",
)
COPY = ("tests/test_reader.py", "tests/test_tools.py", "tests/test_writer.py")
ERRORS = (
    "tests/test_errors.py",
    "tests/test_reader.py",
    "tests/test_corruption.py",
    "tests/test_pycore.py",
)
KEYS = (
    "tests/test_keys.py",
    "tests/test_reader.py",
    "tests/test_writer.py",
    "tests/test_restore.py",
)


@dataclass(frozen=True)
class Mutant:
    id: str
    file: str
    old: str
    new: str
    description: str
    tests: Sequence[str]


M = Mutant
MUTANTS: List[Mutant] = [
    # -- the reader (tfckpt/reader.py; index parsing in tfckpt/slices.py) -----------------
    M(
        "R1",
        "tfckpt/reader.py",
        "if e.dtype_code in (STRING, VARIANT) or verify or self._swap:",
        "if e.dtype_code in (STRING, VARIANT) or verify:",
        "read_slice of a big-endian bundle without the byte swap",
        READER,
    ),
    M(
        "R2",
        "tfckpt/reader.py",
        "            return self._assemble(e, full_bounds(e.shape), verify)",
        "            return self._assemble(e, full_bounds(e.shape), False)",
        "read() assembles a partitioned tensor without checking its slices' CRCs",
        READER,
    ),
    M(
        "R3",
        "tfckpt/reader.py",
        "                if verify:  # read through the storage, not the mapping\n"
        "                    self._check_crc(e, self._checksum(e))",
        "                if False:  # read through the storage, not the mapping\n"
        "                    self._check_crc(e, self._checksum(e))",
        "a whole numeric tensor read (from the mapping) without its CRC check",
        READER,
    ),
    M(
        "R4",
        "tfckpt/reader.py",
        "        stored = core.unmask_crc(e.crc32c)",
        "        stored = e.crc32c",
        "the stored CRC compared without unmasking it",
        READER,
    ),
    M(
        "R5",
        "tfckpt/reader.py",
        "if itemsize > 0 and e.size != e.num_elements * itemsize:",
        "if itemsize > 0 and e.size < e.num_elements * itemsize:",
        "an entry larger than its shape needs is accepted",
        CORRUPTION,
    ),
    M(
        "R6",
        "tfckpt/reader.py",
        "        if e.shard_id >= self.header.num_shards:\n            raise CorruptCheckpointError(",
        "        if e.shard_id > self.header.num_shards:\n            raise CorruptCheckpointError(",
        "a shard id equal to the shard count passes the header check (Reader.payload)",
        CORRUPTION,
    ),
    M(
        "R7",
        "tfckpt/reader.py",
        '        return arr.view(np.dtype(f"u{unit}")).byteswap().view(arr.dtype)',
        '        return arr.view(np.dtype(f"u{unit}")).view(arr.dtype)',
        "big-endian values read without the byte swap",
        READER,
    ),
    M(
        "R8",
        "tfckpt/slices.py",
        "            if j < 0:\n                j += dim\n",
        "",
        "read_slice with a negative integer index does not count from the end",
        READER,
    ),
    M(
        "R9",
        "tfckpt/slices.py",
        "            squeeze.add(i)",
        "            pass",
        "read_slice keeps the dimension an integer index selects",
        READER,
    ),
    M(
        "R10",
        "tfckpt/slices.py",
        "            spec_bounds.append((start, start + length))",
        "            spec_bounds.append((start, length))",
        "a TF slice spec's length read as its stop",
        READER,
    ),
    M(
        "R11",
        "tfckpt/reader.py",
        "core.decode_strings(view, e.num_elements, self._swap, verify, e.key)",
        "core.decode_strings(view, e.num_elements, False, verify, e.key)",
        "a big-endian string tensor's length checksum checked as little-endian",
        READER,
    ),
    M(
        "R12",
        "tfckpt/reader.py",
        "        return tuple(StoredEntry(e.key, s, self.slice_entry(e.key, s)) for s in e.slices)",
        "        return tuple(StoredEntry(e.key, s, e) for s in e.slices)",
        "Reader.stored gives a partitioned tensor's own entry for each slice, not the slice's",
        COPY,
    ),
    M(
        "R13",
        "tfckpt/reader.py",
        '            f"{key} (slice {s.spec})",',
        "            key,",
        "Reader.slice_entry's entry does not name its slice (errors point at the whole tensor)",
        CORRUPTION,
    ),
    M(
        "R14",
        "tfckpt/reader.py",
        "        raise err.with_context(key=e.key, shard=e.shard_id) from None",
        "        raise err from None",
        "Reader.payload: a payload past the end of its shard is reported without its key",
        CORRUPTION,
    ),
    M(
        "R15",
        "tfckpt/reader.py",
        "                if verify:\n                    self._check_crc(e, core.crc32c(view))",
        "                if False:\n                    self._check_crc(e, core.crc32c(view))",
        "a numeric tensor read into owned memory (big-endian, or a verified slice) without "
        "its CRC check",
        READER,
    ),
    M(
        "R16",
        "tfckpt/reader.py",
        "                strides[i] = strides[i + 1] * e.shape[i + 1]",
        "                strides[i] = strides[i + 1] * e.shape[i]",
        "read_slice's partial read strides a row by the wrong dimension",
        READER,
    ),
    # -- slice assembly (tfckpt/slices.py, shared by the V2 and V1 readers) ---------------
    M(
        "S1",
        "tfckpt/slices.py",
        "    return tuple((max(x0, y0), min(x1, y1)) for (x0, x1), (y0, y1) in zip(a, b))",
        "    return tuple((max(x0, y0), max(x1, y1)) for (x0, x1), (y0, y1) in zip(a, b))",
        "the intersection of two boxes ends at the later stop",
        ASSEMBLY,
    ),
    M(
        "S2",
        "tfckpt/slices.py",
        "    if covered != volume(bounds):",
        "    if covered > volume(bounds):",
        "slices that leave a hole in the requested region are accepted",
        ASSEMBLY + CORRUPTION,
    ),
    M(
        "S3",
        "tfckpt/slices.py",
        "            if volume(_intersect(boxes[i], boxes[j])) > 0:",
        "            if volume(_intersect(boxes[i], boxes[j])) > 1:",
        "two slices overlapping in one element are not refused",
        ASSEMBLY + CORRUPTION,
    ),
    M(
        "S4",
        "tfckpt/slices.py",
        "    src_idx = tuple(slice(lo - blo, hi - blo) for (lo, hi), (blo, _) in "
        "zip(inter, src_bounds))",
        "    src_idx = tuple(slice(lo, hi) for (lo, hi), (blo, _) in zip(inter, src_bounds))",
        "a slice's part copied from the slice's own origin, not its offset",
        ASSEMBLY,
    ),
    M(
        "S5",
        "tfckpt/reader.py",
        "            if sub.dtype_code != e.dtype_code or tuple(sub.shape) != want or sub.slices:",
        "            if sub.dtype_code != e.dtype_code or sub.slices:",
        "a slice entry whose shape disagrees with its extent is read",
        ASSEMBLY + CORRUPTION,
    ),
    M(
        "S6",
        "tfckpt/reader.py",
        "        if e.offset + e.size > size or e.size < least:",
        "        if e.offset + e.size > size:",
        "a string/variant slice too small for its elements passes the stored-size check",
        CORRUPTION + ("tests/test_regressions.py",),
    ),
    # -- CRC32C, Python twin (tfckpt/_pycore/crc32c.py) -----------------------------------
    M(
        "C1",
        "tfckpt/_pycore/crc32c.py",
        "    return ((((crc >> 15) | (crc << 17)) & _U32) + _MASK_DELTA) & _U32",
        "    return ((((crc >> 17) | (crc << 15)) & _U32) + _MASK_DELTA) & _U32",
        "mask_crc rotates the wrong way",
        CRC,
    ),
    M(
        "C2",
        "tfckpt/_pycore/crc32c.py",
        "_MASK_DELTA = 0xA282EAD8",
        "_MASK_DELTA = 0xA282EAD9",
        "the mask constant off by one",
        CRC,
    ),
    M(
        "C3",
        "tfckpt/_pycore/crc32c.py",
        "    state = crc ^ _U32\n",
        "    state = crc\n",
        "crc32c without the initial inversion",
        CRC,
    ),
    M(
        "C4",
        "tfckpt/_pycore/crc32c.py",
        "        state = t0[(state ^ b) & 0xFF] ^ (state >> 8)",
        "        state = t0[(state ^ b) & 0xFF] ^ (state >> 7)",
        "the byte-at-a-time tail of crc32c shifts by 7",
        CRC,
    ),
    # -- CRC32C and payloads, native (csrc/) ----------------------------------------------
    M(
        "K1",
        "csrc/crc32c.h",
        "  return ((crc >> 15) | (crc << 17)) + kMaskDelta;",
        "  return ((crc >> 15) | (crc << 17)) - kMaskDelta;",
        "native Mask subtracts the delta",
        CRC,
    ),
    M(
        "K2",
        "csrc/crc32c.h",
        "  return (rot >> 17) | (rot << 15);",
        "  return (rot >> 15) | (rot << 17);",
        "native Unmask rotates the wrong way",
        CRC,
    ),
    M(
        "K3",
        "csrc/crc32c.cc",
        "  return Shift(shift, Shift(shift, s0) ^ s1) ^ s2;",
        "  return Shift(shift, s0 ^ s1) ^ s2;",
        "hardware CRC: the first of three streams shifted once, not twice",
        CRC,
    ),
    M(
        "K4",
        "csrc/table.cc",
        "  uint32_t actual = crc32c::Extend(crc32c::Value(contents, handle.size), trailer, 1);",
        "  uint32_t actual = crc32c::Value(contents, handle.size);",
        "a table block's CRC computed without its type byte",
        CRC,
    ),
    M(
        "K5",
        "csrc/bundle.cc",
        "    if (!GetVarint(&p, end, &len) || len > static_cast<uint64_t>(end - p) ||\n"
        "        static_cast<uint64_t>(end - p) - len < 4) {",
        "    if (!GetVarint(&p, end, &len) || len > static_cast<uint64_t>(end - p)) {",
        "no bounds check before a variant element's checksum",
        ("tests/test_pycore.py", "tests/test_corruption.py"),
    ),
    M(
        "K6",
        "csrc/bundle.cc",
        "        if (swap_lengths) v = ByteSwap32(v);",
        "",
        "native decode_strings checks big-endian lengths as little-endian",
        READER,
    ),
    M(
        "K7",
        "csrc/bundle.cc",
        "      2, 16, 2, -1, 0, 4, 8, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};",
        "      2, 8, 2, -1, 0, 4, 8, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};",
        "complex128 stored as 8 bytes per element (native size table)",
        DTYPES,
    ),
    # -- the writer (tfckpt/writer.py, csrc/writer.cc) -----------------------------------
    M(
        "W1",
        "tfckpt/writer.py",
        '                data = data.reshape(-1).view(np.dtype(f"u{unit}")).byteswap()',
        '                data = data.reshape(-1).view(np.dtype(f"u{unit}"))',
        "a big-endian checkpoint written with little-endian values",
        WRITER,
    ),
    M(
        "W2",
        "tfckpt/dtypes.py",
        '        if d.numpy is None or d.kind in ("string", "variant", "quantized"):',
        '        if d.numpy is None or d.kind in ("string", "variant"):',
        "numpy arrays may be written as quantized types (uint16 -> quint16; code_of)",
        ("tests/test_dtypes.py",) + WRITER,
    ),
    M(
        "W3",
        "tfckpt/writer.py",
        "            np.maximum(old[:, :, 0], new[:, 0]) < np.minimum(old[:, :, 1], new[:, 1]), axis=1",
        "            np.maximum(old[:, :, 0], new[:, 0]) <= np.minimum(old[:, :, 1], new[:, 1]), axis=1",
        "adjacent slices refused as overlapping",
        WRITER,
    ),
    M(
        "W4",
        "tfckpt/writer.py",
        "        out.append((start, stop - start))",
        "        out.append((start, stop))",
        "add_slice with numpy ranges stores the stop as the length",
        WRITER,
    ),
    M(
        "W5",
        "tfckpt/writer.py",
        "        model_checkpoint_path=name,",
        "        model_checkpoint_path=kept[0][0],",
        "the state file names the oldest kept checkpoint as the latest",
        ("tests/test_writer.py", "tests/test_restore.py"),
    ),
    M(
        "W6",
        "tfckpt/writer.py",
        "    kept.append((name, time.time()))",
        "    kept.insert(0, (name, time.time()))",
        "the state file lists the new checkpoint first (max_to_keep drops it)",
        ("tests/test_writer.py", "tests/test_restore.py"),
    ),
    M(
        "W7",
        "csrc/writer.cc",
        "      if (big_endian_) v = __builtin_bswap32(v);\n      crc = crc32c::Extend(crc, &v, 4);",
        "      crc = crc32c::Extend(crc, &v, 4);",
        "a big-endian string tensor written with a little-endian length checksum",
        WRITER,
    ),
    M(
        "W8",
        "csrc/writer.cc",
        "    crc = crc32c::Extend(crc, &len64, 8);\n",
        "",
        "variant elements' checksums written without their lengths",
        WRITER,
    ),
    M(
        "W9",
        "tfckpt/writer.py",
        "        new_key = key if as_ is None else as_",
        "        new_key = key",
        "Writer.copy ignores as_: a renamed tensor is copied under its old key",
        COPY,
    ),
    M(
        "W10",
        "tfckpt/writer.py",
        "                slice_key(new_key, extents),",
        "                slice_key(key, extents),",
        "Writer.copy stores a renamed partitioned tensor's slices under the old name's slice keys",
        COPY,
    ),
    M(
        "W11",
        "tfckpt/writer.py",
        '    return m is not None and m.group("prefix") == base',
        '    return m is not None and m.group("prefix").startswith(base)',
        "stale-shard cleanup: writing ckpt-1 removes ckpt-10's data files (DATA_NAME_RE prefix)",
        WRITER,
    ),
    # -- the dtype table (tfckpt/dtypes.py) ----------------------------------------------
    M(
        "D1",
        "tfckpt/dtypes.py",
        '    (14, "bfloat16", "DT_BFLOAT16", "ml:bfloat16", 2, 2,',
        '    (14, "bfloat16", "DT_BFLOAT16", "ml:bfloat16", 2, 0,',
        "bfloat16 not byte-swapped (swap column)",
        DTYPES,
    ),
    M(
        "D2",
        "tfckpt/dtypes.py",
        '    (8, "complex64", "DT_COMPLEX64", "complex64", 8, 4,',
        '    (8, "complex64", "DT_COMPLEX64", "complex64", 8, 8,',
        "complex64 swapped as one 8-byte unit (real and imaginary exchanged)",
        DTYPES,
    ),
    M("D3", "tfckpt/dtypes.py", '"q:int32"', '"q:uint32"', "qint32 read as uint32", DTYPES),
    M(
        "D5",
        "tfckpt/dtypes.py",
        '            base.name + "_ref",',
        "            base.name,",
        "a reference dtype (float32_ref) named as its base type",
        DTYPES,
    ),
    M(
        "D6",
        "tfckpt/dtypes.py",
        '        "DT_COMPLEX128",\n        "complex128",\n        16,',
        '        "DT_COMPLEX128",\n        "complex128",\n        8,',
        "complex128 taken as 8 bytes per element (itemsize column; K7's twin)",
        DTYPES,
    ),
    M(
        "D7",
        "tfckpt/dtypes.py",
        '    (23, "uint64", "DT_UINT64", "uint64", 8, 8,',
        '    (23, "uint64", "DT_UINT64", "uint64", 8, 4,',
        "uint64 byte-swapped in 4-byte halves (swap column)",
        DTYPES,
    ),
    M(
        "D8",
        "tfckpt/dtypes.py",
        '    if dt.kind in "OSU":',
        '    if dt.kind in "OS":',
        "code_of refuses numpy str arrays instead of writing them as strings",
        DTYPES,
    ),
    # -- errors (tfckpt/errors.py) -------------------------------------------------------
    M(
        "E1",
        "tfckpt/errors.py",
        "            and new_offset is None\n            and (shard is None or self.shard is not None)\n",
        "            and new_offset is None\n",
        "with_context drops a shard when it is the only thing new",
        ERRORS,
    ),
    M(
        "E2",
        "tfckpt/errors.py",
        "            **self._extra(),\n        )",
        "        )",
        "with_context loses a ChecksumMismatchError's stored and computed CRCs",
        ERRORS,
    ),
    M(
        "E3",
        "tfckpt/errors.py",
        "        if new_path is not None and new_path not in message:",
        "        if new_path is not None:",
        "with_context prefixes the file to a message that names it already",
        ERRORS,
    ),
    # -- key names (tfckpt/keys.py) ------------------------------------------------------
    M(
        "N1",
        "tfckpt/keys.py",
        '    return name.replace(".", "..").replace("/", ".S")',
        '    return name.replace("/", ".S").replace(".", "..")',
        "escape_local_name escapes '/' first, so its '.S' gets its dot doubled",
        KEYS,
    ),
    M(
        "N2",
        "tfckpt/keys.py",
        '            out.append("." if nxt == "." else "/" if nxt == "S" else c + nxt)',
        '            out.append("." if nxt == "." else "/" if nxt == "S" else nxt)',
        "unescape_local_name drops the dot of an unknown escape",
        KEYS,
    ),
]


# ------------------------------------------------------------------------------------------


def _say(msg: str) -> None:
    print(msg, flush=True)


def _copy_repository(dst: Path) -> None:
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    for rel in out.decode().split("\0"):
        if not rel:
            continue
        src = ROOT / rel
        if not src.is_file():
            continue  # deleted in the work tree
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)


def _extension(directory: Path) -> Optional[Path]:
    found = sorted((directory / "tfckpt").glob("_native*" + sysconfig.get_config_var("EXT_SUFFIX")))
    return found[0] if found else None


def _find_build_python(given: Optional[str]) -> str:
    candidates = [given] if given else [sys.executable, shutil.which("python3")]
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    probe = "import sysconfig, pybind11, setuptools; print(sysconfig.get_config_var('EXT_SUFFIX'))"
    for py in candidates:
        if not py:
            continue
        r = subprocess.run([py, "-c", probe], capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.strip() == suffix:
            return py
    sys.exit(
        "mutation/run.py: no Python with pybind11 and setuptools builds extensions for "
        f"this one ({suffix}); pass --build-python"
    )


def _build(scratch: Path, build_python: str) -> Optional[str]:
    """Builds the extension in `scratch`; None, or the compiler's complaint."""
    r = subprocess.run(
        [build_python, "setup.py", "build_ext", "--inplace", "--force", "-q"],
        cwd=scratch,
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        return (r.stderr or r.stdout)[-1500:]
    return None


def _run_tests(scratch: Path, tests: Sequence[str], corpus_dir: str, timeout: float):
    """(passed, seconds, first failing test or reason)."""
    env = dict(
        os.environ,
        PYTHONPATH=str(scratch),
        TFCKPT_CORPUS_DIR=corpus_dir,
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.pop("TFCKPT_IMPLEMENTATION", None)
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    t0 = time.perf_counter()
    try:
        r = subprocess.run(
            cmd, cwd=scratch, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return False, time.perf_counter() - t0, f"timed out after {timeout:.0f} s"
    seconds = time.perf_counter() - t0
    lines = r.stdout.splitlines()
    failed = next((ln.split(" - ")[0] for ln in lines if ln.startswith(("FAILED", "ERROR"))), None)
    if r.returncode == 0:
        return True, seconds, None
    return False, seconds, failed or (lines[-1] if lines else r.stderr[-300:])


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--list", action="store_true", help="list the mutants and exit")
    p.add_argument("--only", nargs="+", metavar="ID", help="run only these mutants")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.add_argument(
        "--corpus-dir",
        default=os.path.join(tempfile.gettempdir(), "tfckpt-mutation-corpus"),
        help="TFCKPT_CORPUS_DIR for the tests (kept between runs)",
    )
    p.add_argument("--build-python", help="the Python that builds the extension")
    p.add_argument("--timeout", type=float, default=900, help="seconds per test run")
    p.add_argument("--keep", action="store_true", help="keep the scratch copy")
    args = p.parse_args(argv)

    ids = [m.id for m in MUTANTS]
    assert len(ids) == len(set(ids)), "mutant ids must be unique"
    chosen = MUTANTS
    if args.only:
        unknown = sorted(set(args.only) - set(ids))
        if unknown:
            p.error(f"unknown mutant ids: {', '.join(unknown)}")
        chosen = [m for m in MUTANTS if m.id in args.only]
    if args.list:
        bad = 0
        for m in chosen:
            count = (ROOT / m.file).read_text().count(m.old) if (ROOT / m.file).is_file() else 0
            bad += count != 1
            flag = "" if count == 1 else f"  [ERROR: snippet found {count} times]"
            _say(f"{m.id:4} {m.file:24} {m.description}{flag}")
        return 1 if bad else 0

    scratch = Path(tempfile.mkdtemp(prefix="tfckpt-mutation-"))
    results = []
    try:
        _say(f"copying {ROOT} to {scratch}")
        _copy_repository(scratch)
        native_sources = [ROOT / "setup.py", *sorted((ROOT / "csrc").iterdir())]
        built = _extension(ROOT)
        needs_cpp = any(m.file.startswith("csrc/") for m in chosen)
        build_python = _find_build_python(args.build_python) if needs_cpp else None
        if built and built.stat().st_mtime >= max(f.stat().st_mtime for f in native_sources):
            shutil.copy2(built, scratch / "tfckpt" / built.name)
        else:
            _say("building the native extension (the repository's is missing or stale)")
            problem = _build(scratch, build_python or _find_build_python(args.build_python))
            if problem:
                _say(problem)
                return 2
        pristine = _extension(scratch)
        saved_ext = scratch / ".pristine-extension"
        shutil.copy2(pristine, saved_ext)

        subsets = sorted({t for m in chosen for t in m.tests})
        _say(f"baseline: {len(subsets)} test files, unmutated")
        ok, seconds, why = _run_tests(scratch, subsets, args.corpus_dir, args.timeout)
        if not ok:
            _say(f"the unmutated tests fail ({why}); fix that first")
            return 2
        _say(f"baseline passed in {seconds:.0f} s\n")

        for m in chosen:
            path = scratch / m.file
            source = path.read_text()
            count = source.count(m.old)
            rec = {"id": m.id, "file": m.file, "description": m.description, "tests": list(m.tests)}
            if count != 1:
                rec.update(status="ERROR", detail=f"snippet found {count} times in {m.file}")
                results.append(rec)
                _say(f"{m.id:4} ERROR     {rec['detail']}")
                continue
            cpp = m.file.startswith("csrc/")
            t0 = time.perf_counter()
            try:
                path.write_text(source.replace(m.old, m.new))
                problem = _build(scratch, build_python) if cpp else None
                if problem:
                    rec.update(status="ERROR", detail="does not compile: " + problem[-300:])
                else:
                    passed, seconds, why = _run_tests(
                        scratch, m.tests, args.corpus_dir, args.timeout
                    )
                    rec.update(
                        status="SURVIVED" if passed else "KILLED",
                        detail=why or "",
                        test_seconds=round(seconds, 1),
                    )
            finally:
                path.write_text(source)
                if cpp:
                    shutil.copy2(saved_ext, pristine)
            rec["seconds"] = round(time.perf_counter() - t0, 1)
            results.append(rec)
            _say(
                f"{m.id:4} {rec['status']:9} {rec['seconds']:6.1f} s  {m.description}"
                + (f"\n     by {rec['detail']}" if rec["detail"] else "")
            )
    finally:
        if args.keep:
            _say(f"scratch copy kept at {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)

    killed = sum(r["status"] == "KILLED" for r in results)
    survived = [r for r in results if r["status"] == "SURVIVED"]
    errors = [r for r in results if r["status"] == "ERROR"]
    judged = killed + len(survived)
    score = killed / judged if judged else 0.0
    _say(
        f"\nscore: {killed} of {judged} mutants killed ({100 * score:.0f}%)"
        + (f"; {len(errors)} errors" if errors else "")
    )
    for r in survived:
        _say(f"  survived: {r['id']} {r['file']}: {r['description']}")
    for r in errors:
        _say(f"  error:    {r['id']} {r['file']}: {r['detail']}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "killed": killed,
                    "survived": len(survived),
                    "errors": len(errors),
                    "score": round(score, 4),
                    "mutants": results,
                },
                indent=1,
            )
            + "\n"
        )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
