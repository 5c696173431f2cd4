"""Hostile archives (issue 10, class 5): bombs, overlapping zip entries, damaged central
directories, member names that are not plain paths.

Each bomb is scanned in a child process under the address-space cap and the timeout of
tests/test_hostile.py, so a runaway allocation or a hang fails the case rather than the run.
Every case asserts the record (its status and message) and that the paths after the archive
are still scanned.
"""

from __future__ import annotations

import io
import os
import pathlib
import struct
import tarfile
import zipfile

import numpy as np
from test_cli import run_cli, run_proc
from test_hostile import run_child

import tfckpt

BOMB_ZEROS = 5 << 28  # 1.25 GiB of zeros after the real bytes: more than the child may map


class _Zeros(io.RawIOBase):
    """`head`, then `n` zero bytes, read in pieces (never held whole)."""

    def __init__(self, head: bytes, n: int) -> None:
        self._head, self._left = head, n

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self._head:
            k = min(len(b), len(self._head))
            b[:k], self._head = self._head[:k], self._head[k:]
            return k
        k = min(len(b), self._left)
        b[:k] = bytes(k)
        self._left -= k
        return k


def _checkpoint(tmp_path, name="ckpt-7", step=7):
    """A checkpoint whose listing reads its step: (prefix, {suffix: bytes})."""
    prefix = str(tmp_path / "src" / name)
    tfckpt.write(
        prefix,
        {
            "save_counter/.ATTRIBUTES/VARIABLE_VALUE": np.int64(step),
            "w": np.arange(4, dtype=np.float32),
        },
    )
    files = {}
    for f in os.listdir(tmp_path / "src"):
        if f.startswith(name + "."):
            files[f[len(name) :]] = (tmp_path / "src" / f).read_bytes()
    return prefix, files


def _good(tmp_path):
    """A plain checkpoint after the archive: the scan must reach it."""
    prefix = str(tmp_path / "good" / "ckpt-2")
    tfckpt.write(prefix, {"b": np.arange(3, dtype=np.int32)}, overwrite=True)
    return str(tmp_path / "good")


def _gz_bomb(tmp_path) -> str:
    """A .tar.gz of a few MB whose data shard expands to 1.25 GiB (zeros after the real
    bytes: the index still reads, and the shard's size is what the tar header says)."""
    _, files = _checkpoint(tmp_path)
    path = str(tmp_path / "bomb.tar.gz")
    with tarfile.open(path, "w:gz", compresslevel=6) as tar:
        for suffix, data in sorted(files.items()):
            info = tarfile.TarInfo("run/ckpt-7" + suffix)
            if suffix == ".index":
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                info.size = len(data) + BOMB_ZEROS
                tar.addfile(info, io.BufferedReader(_Zeros(data, BOMB_ZEROS), 1 << 20))
    assert os.path.getsize(path) < 8 << 20
    return path


def test_a_compressed_tar_bomb_is_listed_without_holding_its_shards(tmp_path):
    bomb, good = _gz_bomb(tmp_path), _good(tmp_path)
    out = run_child(
        f"""
        rows = []
        for r in tfckpt.scan([{bomb!r}, {good!r}]):
            rows.append([r.location, r.status, r.step, r.error])
        for r in tfckpt.scan([{bomb!r}, {good!r}], verify=True, max_member_bytes=64 << 20):
            rows.append([r.location, r.status, r.step, r.error])
        import time
        t0 = time.monotonic()
        for r in tfckpt.scan([{bomb!r}, {good!r}], max_archive_seconds=0.05):
            rows.append([r.location, r.status, r.step, r.error])
        rows.append(time.monotonic() - t0)
        import resource
        rows.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        report(rows)
        """,
        timeout=120,
    )
    *rows, timed_seconds, peak_kib = out
    listing, verified, timed = rows[:2], rows[2:4], rows[4:]
    # Listed: the index whole, of the 1.25 GiB shard only the step's 8 bytes.
    assert listing == [
        [bomb + "!/run/ckpt-7", "ok", 7, None],
        [os.path.join(good, "ckpt-2"), "ok", 2, None],
    ]
    assert peak_kib < 400 << 10  # far below the shard's 1.25 GiB (and the 1 GiB cap)
    # Verified: every byte would have to be held; the limit makes it a record.
    assert verified[0][:2] == [bomb + "!/run/ckpt-7", "error"]
    assert verified[0][3] == (
        f"member(s) .data-00000-of-00001 ({BOMB_ZEROS + 24} bytes) too large to hold in memory "
        f"from a compressed archive (limit {64 << 20} bytes); unpack it or use an uncompressed "
        "tar, which is read in place"
    )
    assert verified[1] == [os.path.join(good, "ckpt-2"), "ok", 2, None]
    # Out of time: the 1.25 GiB member is cut off mid-stream, then the scan goes on.
    assert timed == [
        [
            bomb,
            "error",
            None,
            "not read to its end within 0.05 s (the limit: max_archive_seconds, "
            "--max-archive-seconds); what came after is not scanned",
        ],
        [os.path.join(good, "ckpt-2"), "ok", 2, None],
    ]
    assert timed_seconds < 1.0


def _zip(tmp_path, name="run.zip", prefix="x/ckpt-7") -> str:
    _, files = _checkpoint(tmp_path)
    path = str(tmp_path / name)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for suffix, data in sorted(files.items()):
            z.writestr(prefix + suffix, data)
    return path


def _central_entries(data: bytes):
    """Offsets of the central directory entries of a zip."""
    at, out = data.find(b"PK\x01\x02"), []
    while at >= 0:
        out.append(at)
        at = data.find(b"PK\x01\x02", at + 4)
    return out


def test_overlapping_zip_entries_are_refused(tmp_path):
    """Two entries that share one compressed stream (how the densest zip bombs are built):
    the archive is refused whole, as a record, and the scan goes on; dump says the same."""
    path = _zip(tmp_path)
    data = bytearray(pathlib.Path(path).read_bytes())
    first, second = _central_entries(bytes(data))
    offset = struct.unpack_from("<I", data, first + 42)[0]
    struct.pack_into("<I", data, second + 42, offset)  # both entries' data at one place
    pathlib.Path(path).write_bytes(bytes(data))
    good = _good(tmp_path)
    records = [(r.record, r.location, r.status, r.error) for r in tfckpt.scan([path, good])]
    why = (
        "overlapping zip entries ('x/ckpt-7.index' starts inside 'x/ckpt-7.data-00000-of-00001',"
        " as in a zip bomb); the archive is refused, nothing in it is read"
    )
    assert records == [
        ("path", path, "error", why),
        ("checkpoint", os.path.join(good, "ckpt-2"), "ok", None),
    ]
    assert run_cli(["dump", path + "!/x/ckpt-7"]) == (1, "", f"tfckpt: {path}: {why}\n")
    code, out, _ = run_cli(["scan", path, good])
    assert code == 1 and "ERROR   path" in out and "ok " in out


def test_damaged_zip_directories_are_records(tmp_path):
    path = _zip(tmp_path)
    data = pathlib.Path(path).read_bytes()
    second = _central_entries(data)[1]
    bad_entry = str(tmp_path / "bad_entry.zip")
    pathlib.Path(bad_entry).write_bytes(data[:second] + b"XXXX" + data[second + 4 :])
    truncated = str(tmp_path / "truncated.zip")
    pathlib.Path(truncated).write_bytes(data[:-10])  # no end-of-central-directory record
    good = _good(tmp_path)
    records = [
        (r.record, r.location, r.status, r.error) for r in tfckpt.scan([bad_entry, truncated, good])
    ]
    assert records == [
        (
            "path",
            bad_entry,
            "error",
            "damaged zip archive, its members cannot be listed: BadZipFile: Bad magic number "
            "for central directory",
        ),
        (
            "path",
            truncated,
            "error",
            "damaged zip archive, its members cannot be listed: BadZipFile: File is not a zip file",
        ),
        ("checkpoint", os.path.join(good, "ckpt-2"), "ok", None),
    ]
    code, out, err = run_cli(["verify", truncated + "!/x/ckpt-7"])
    assert (code, out) == (1, "")
    assert err == (
        f"tfckpt: {truncated}: damaged zip archive, its members cannot be listed: "
        "BadZipFile: File is not a zip file\n"
    )


def test_member_names_that_are_not_plain_paths(tmp_path):
    """`a//b/./ckpt` is `a/b/ckpt` (listed, and opened by the location the scan prints); a
    name with `..` is a record of its own, never followed; neither stops the scan."""
    _, files = _checkpoint(tmp_path)
    for kind in ("tar", "zip"):
        path = str(tmp_path / f"names.{kind}")
        members = {f"a//b/./ckpt-7{s}": d for s, d in files.items()}
        members["../up/ckpt-7.index"] = files[".index"]
        if kind == "tar":
            with tarfile.open(path, "w") as tar:
                for name, data in sorted(members.items()):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
        else:
            with zipfile.ZipFile(path, "w") as z:
                for name, data in sorted(members.items()):
                    z.writestr(name, data)
        good = _good(tmp_path)
        records = [(r.location, r.status, r.step, r.error) for r in tfckpt.scan([path, good])]
        assert records == [
            (
                f"{path}!/../up/ckpt-7.index",
                "error",
                None,
                ("a member name with a '..' component; not read"),
            ),
            (f"{path}!/a/b/ckpt-7", "ok", 7, None),
            (os.path.join(good, "ckpt-2"), "ok", 2, None),
        ], kind
        code, out, err = run_cli(["dump", f"{path}!/a/b/ckpt-7", "--tensor", "w"])
        assert (code, err) == (0, ""), kind
        assert "[0. 1. 2. 3.]" in out, kind


def test_an_archive_of_too_many_members_is_a_record(tmp_path):
    """More members than max_archive_members (--max-archive-members): a record for the
    archive, for a tar, a compressed tar and a zip alike, and the scan goes on; the
    command's help states the library's defaults."""
    from tfckpt.scanning import DEFAULT_MAX_ARCHIVE_MEMBERS, DEFAULT_MAX_MEMBER_BYTES

    good = _good(tmp_path)
    why = (
        "more than 1000 members (the limit: max_archive_members, --max-archive-members); "
        "the archive is not scanned"
    )
    for kind, mode in (("tar", "w"), ("tar.gz", "w:gz"), ("zip", None)):
        path = str(tmp_path / f"many.{kind}")
        if mode:
            with tarfile.open(path, mode) as tar:
                for i in range(1500):
                    info = tarfile.TarInfo(f"m/{i}")
                    info.size = 1
                    tar.addfile(info, io.BytesIO(b"x"))
        else:
            with zipfile.ZipFile(path, "w") as z:
                for i in range(1500):
                    z.writestr(f"m/{i}", b"x")
        records = [
            (r.record, r.location, r.status, r.error)
            for r in tfckpt.scan([path, good], max_archive_members=1000)
        ]
        assert records == [
            ("path", path, "error", why),
            ("checkpoint", os.path.join(good, "ckpt-2"), "ok", None),
        ], kind
        code, out, err = run_cli(["scan", path, good, "--max-archive-members", "1000"])
        assert (code, err) == (1, "") and why in out, kind
        assert len(list(tfckpt.scan([path]))) == 0, kind  # the default takes it: nothing found
    help_text = run_proc(["scan", "--help"]).stdout.decode()
    assert f"(default: {DEFAULT_MAX_ARCHIVE_MEMBERS})" in " ".join(help_text.split())
    assert f"(default: {DEFAULT_MAX_MEMBER_BYTES}, 2 GiB)" in " ".join(help_text.split())
