"""Writes the regression inputs of tests/test_pycore.py: tests/regressions/<name>.bin (an
.index file) and <name>.json (what it is, what TensorFlow 2.21 does with it, what tfckpt must
say). Each is a place where the native core differs from TensorFlow and the pure-Python twin
follows TensorFlow; fuzz/differential.py found them (its KNOWN_NATIVE_BUGS).

    python tests/regressions/make_pycore_regressions.py   # runs TensorFlow in children
"""

from __future__ import annotations

import json
import pathlib
import struct
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import craft as C  # noqa: E402

DATA = struct.pack("<4f", 1, 2, 3, 4)
CRC = C.fixed32(C.masked_crc(DATA))
OK = C.entry(C.DT_FLOAT, [4], data=DATA)  # key "ok" (and "x" where valid): float32 [4]
DIM4 = C.ld(2, C.tag(1, 0) + b"\x04")
FLOAT4 = {"dtype": 1, "shape": [4], "size": 16}
HEADER_ENTRY = C.block_entry(0, b"", C.header())


def x_entry(shape: bytes = DIM4) -> bytes:
    """float32 [4] at offset 0 with the given TensorShapeProto bytes."""
    return (C.tag(1, 0) + b"\x01" + C.ld(2, shape) + C.tag(5, 0) + b"\x10" + C.tag(6, 5)
            + CRC)


def groups(depth: int) -> bytes:
    return C.tag(15, 3) * depth + C.tag(15, 4) * depth


def table_with_ok_entry(lengths: bytes) -> bytes:
    """A table whose second entry (key ok) has the given shared/unshared/value lengths."""
    e = lengths + b"ok" + OK
    return C.assemble([C.block([HEADER_ENTRY + e], [0, len(HEADER_ENTRY)])])


CASES = {
    "entry_shape_unknown_rank": dict(
        desc="key x: float32 [4] whose TensorShapeProto also sets unknown_rank (field 3) = "
             "true. A TensorShape ignores unknown_rank; FORMAT.md 4.2 does not make it invalid.",
        entries=[("ok", OK), ("x", x_entry(DIM4 + C.tag(3, 0) + b"\x01"))],
        expect={"x": FLOAT4}),
    "entry_shape_unknown_rank_reset": dict(
        desc="key x: unknown_rank set to true, then to false again (protobuf: the last value "
             "wins).",
        entries=[("ok", OK), ("x", x_entry(DIM4 + C.tag(3, 0) + b"\x01" + C.tag(3, 0) + b"\x00"))],
        expect={"x": FLOAT4}),
    "entry_tag_6_bytes": dict(
        desc="key x: its first tag (dtype, field 1) is written as a 6-byte varint "
             "`88 80 80 80 80 00`. Protobuf reads tags of at most 5 bytes: the entry does not "
             "parse.",
        entries=[("ok", OK), ("x", bytes([0x88, 0x80, 0x80, 0x80, 0x80, 0x00, 0x01]) + x_entry()[2:])],
        expect={"x": {"error": True}}),
    "entry_tag_5_bytes_high_bits": dict(
        desc="key x: its first tag is `88 80 80 80 10`: 5 bytes whose value has bits beyond 32. "
             "Protobuf keeps the low 32 bits (field 1, varint), so this is dtype 1.",
        entries=[("ok", OK), ("x", bytes([0x88, 0x80, 0x80, 0x80, 0x10, 0x01]) + x_entry()[2:])],
        expect={"x": FLOAT4}),
    "entry_group_depth_101": dict(
        desc="key x: a valid entry followed by an unknown group (field 15) nested 101 deep. "
             "Protobuf's recursion limit is 100: the entry does not parse.",
        entries=[("ok", OK), ("x", OK + groups(101))],
        expect={"x": {"error": True}}),
    "entry_group_depth_99_in_dim": dict(
        desc="key x: an unknown group nested 99 deep inside the Dim of its shape (a message 2 "
             "deep): over the recursion limit of 100, the entry does not parse.",
        entries=[("ok", OK), ("x", x_entry(C.ld(2, C.tag(1, 0) + b"\x04" + groups(99))))],
        expect={"x": {"error": True}}),
    "header_tag_6_bytes": dict(
        desc="the header's num_shards tag written as a 6-byte varint: the header does not "
             "parse.",
        entries=[("ok", OK)], hdr=bytes([0x88, 0x80, 0x80, 0x80, 0x80, 0x00, 0x01]) + C.header()[2:],
        expect={"rejected": "CorruptCheckpointError"}),
    "table_varint32_shared_high_bits": dict(
        desc="a data block entry (key ok) whose `shared` length is `80 80 80 80 10`, a 5-byte "
             "varint32 whose bits beyond 32 LevelDB drops: shared = 0.",
        index=table_with_ok_entry(b"\x80\x80\x80\x80\x10" + C.varint(2) + C.varint(len(OK))),
        expect={"ok": FLOAT4}),
    "table_varint32_unshared_high_bits": dict(
        desc="a data block entry (key ok) whose `unshared` length is `82 80 80 80 10`: 2 once "
             "the bits beyond 32 are dropped.",
        index=table_with_ok_entry(C.varint(0) + b"\x82\x80\x80\x80\x10" + C.varint(len(OK))),
        expect={"ok": FLOAT4}),
}


def tensorflow_outcome(work: str, name: str):
    """(prefix, what list_variables and get_tensor do in a TensorFlow child)."""
    case = CASES[name]
    entries = case.get("entries") or []
    prefix = C.write_bundle(work, name, entries, DATA, hdr=case.get("hdr"),
                            index_bytes=case.get("index"))
    key = "x" if any(k == "x" for k, _ in entries) else "ok"
    out = subprocess.run([sys.executable, str(HERE.parent / "craft.py"), "tf"],
                         input=json.dumps({"prefix": prefix, "key": key}),
                         capture_output=True, text=True)
    steps = [line[5:].replace(prefix, "<prefix>") for line in out.stdout.splitlines()
             if line.startswith("STEP ") and line != "STEP imported"]
    if out.returncode < 0:
        steps.append(f"process died with signal {-out.returncode}")
    elif out.returncode:
        steps.append(f"exit {out.returncode}")
    return prefix, steps


def main() -> None:
    work = tempfile.mkdtemp(prefix="tfckpt-regressions-")
    with ThreadPoolExecutor(4) as pool:
        results = pool.map(lambda n: (n,) + tensorflow_outcome(work, n), list(CASES))
        for name, prefix, steps in results:
            (HERE / f"{name}.bin").write_bytes(pathlib.Path(prefix + ".index").read_bytes())
            doc = {"description": CASES[name]["desc"], "tensorflow_2_21": steps,
                   "expect": CASES[name]["expect"]}
            (HERE / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")
            print(name, steps)


if __name__ == "__main__":
    main()
