"""Tar archives as scans read them: the native header listing (csrc/tar.cc) against
tarfile and against its pure-Python twin, and damaged archives, plain and compressed,
reported in records instead of ending the scan."""

from __future__ import annotations

import gzip
import io
import os
import random
import tarfile

import numpy as np
import pytest

import tfckpt
from tfckpt import _pycore as PY
from tfckpt.scanning import archives

FORMATS = {"ustar": tarfile.USTAR_FORMAT, "gnu": tarfile.GNU_FORMAT, "pax": tarfile.PAX_FORMAT}


@pytest.fixture(scope="module")
def native():
    if tfckpt.implementation != "native":
        pytest.skip("the native extension is not the implementation in use")
    return tfckpt._native


def _add(t: tarfile.TarFile, name: str, data: bytes = b"", **attrs) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for k, v in attrs.items():
        setattr(info, k, v)
    t.addfile(info, io.BytesIO(data) if info.isfile() else None)


def _archive(fmt: str) -> bytes:
    """A tar of every kind of member a listing meets, in the given format."""
    buf = io.BytesIO()
    with tarfile.open(
        fileobj=buf, mode="w", format=FORMATS[fmt], encoding="utf-8", errors="surrogateescape"
    ) as t:
        _add(t, "dir", type=tarfile.DIRTYPE)
        _add(t, "dir/a.bin", b"a" * 700)
        _add(t, "./dot/b.bin", b"b" * 512)
        _add(t, "dir/empty")
        _add(t, "p" * 120 + "/long-name.bin", b"c" * 3)  # a ustar prefix, a GNU L, a pax path
        _add(t, "dir/hard", type=tarfile.LNKTYPE, linkname="dir/a.bin")
        _add(t, "dir/dangling", type=tarfile.LNKTYPE, linkname="nope/missing")
        _add(t, "dir/sym", type=tarfile.SYMTYPE, linkname="a.bin")
        _add(t, "dir/fifo", type=tarfile.FIFOTYPE)
        _add(t, "dir/dev", type=tarfile.CHRTYPE)
        _add(t, "dir/contiguous", b"d" * 10, type=tarfile.CONTTYPE)
        _add(t, "ünï/cödé.bin", b"e" * 20)
        _add(t, "dir/a.bin", b"f" * 30)  # a later member of the same name replaces it
        if fmt != "ustar":  # ustar has no room for long links or undecodable names
            _add(t, "dir/longlink", type=tarfile.SYMTYPE, linkname="t" * 150)
            _add(t, os.fsdecode(b"bytes-\xff\xfe.bin"), b"g" * 5)
    return buf.getvalue()


def _tarfile_listing(raw: bytes):
    infos: dict = {}
    errors: dict = {}
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as t:
        archives.collect_tar_members(t, infos, errors)
    return {n: (m.offset_data, m.size) for n, m in infos.items()}, errors


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_tar_listing_agrees_with_tarfile(native, fmt):
    raw = _archive(fmt)
    files, errors = _tarfile_listing(raw)
    for core in (native, PY):
        assert core.tar_members(raw) == (files, errors, None), core
    assert files["dir/a.bin"][1] == 30 and files["dir/hard"][1] == 700
    assert files["dot/b.bin"][1] == 512 and "dir" not in files
    assert raw[files["p" * 120 + "/long-name.bin"][0] :][:3] == b"ccc"
    assert errors["dir/dangling"] == "hard link to nope/missing, which is not in the archive"
    assert errors["dir/sym"] == "symbolic link (to a.bin) inside the archive, not followed"
    assert errors["dir/fifo"] == errors["dir/dev"] == "not a regular file"
    if fmt != "ustar":
        assert os.fsdecode(b"bytes-\xff\xfe.bin") in files
        assert "t" * 150 in errors["dir/longlink"]


def test_tar_listing_problems_and_refusals(native):
    raw = _archive("gnu")
    body = raw.rstrip(b"\0")
    empty = _tarfile_listing(raw)[0]["dir/empty"][0] - 512  # a member with a short name
    cases = {
        # no end-of-archive blocks, but nothing is cut off: a complete listing
        "unterminated": (body + bytes(-len(body) % 512), "ok"),
        # cut inside a member's data, or inside a header
        "cut-data": (raw[: 1024 + 300], "inside the member whose header is at byte 512"),
        "cut-header": (raw[: empty + 100], f"inside the member header at byte {empty}"),
    }
    for name, (data, want) in cases.items():
        a, b = native.tar_members(data), PY.tar_members(data)
        assert a == b, name
        if want == "ok":
            assert a[2] is None and a[:2] == _tarfile_listing(raw), name
        else:
            assert a[2] and "truncated tar archive" in a[2] and want in a[2], (name, a[2])
    # Left to tarfile: a bad checksum, a negative or non-octal size, a malformed pax record
    hdr = bytearray(raw)
    hdr[10] ^= 0xFF
    assert native.tar_members(bytes(hdr)) is None and PY.tar_members(bytes(hdr)) is None
    for field in (b"-0001000000\0", b"0001000008\0\0", b"1_0\0\0\0\0\0\0\0\0\0"):
        bad = _fix_checksum(_set(raw, 0, 124, field), 0)
        assert native.tar_members(bad) is None and PY.tar_members(bad) is None, field
    pax = _archive("pax")
    i = pax.index(b" path=")
    bad = pax[: i - 3] + b"999" + pax[i:]  # a record length past its header
    assert native.tar_members(bad) is None and PY.tar_members(bad) is None


def _set(raw: bytes, header: int, offset: int, field: bytes) -> bytes:
    b = bytearray(raw)
    b[header + offset : header + offset + len(field)] = field
    return bytes(b)


def _fix_checksum(raw: bytes, header: int) -> bytes:
    b = bytearray(raw)
    b[header + 148 : header + 156] = b" " * 8
    b[header + 148 : header + 156] = b"%06o\0 " % sum(b[header : header + 512])
    return bytes(b)


def _mutate(rng: random.Random, raw: bytes) -> bytes:
    headers = [i for i in range(0, len(raw) - 511, 512) if raw[i + 257 : i + 262] == b"ustar"]
    b = bytearray(raw)
    h = rng.choice(headers)
    what = rng.random()
    if what < 0.3:
        for _ in range(rng.randint(1, 4)):
            b[h + rng.randrange(512)] = rng.randrange(256)
    elif what < 0.6:
        off, n = rng.choice([(124, 12), (148, 8), (156, 1), (0, 100), (157, 100), (345, 155)])
        pool = [
            b"7",
            b" 17 ",
            b"-1",
            b"8",
            b"\x80" + bytes(10) + b"\x05",
            b"\xff" * 12,
            b"",
            b"x",
            b"L",
            b"K",
            b"x",
            b"g",
            b"1",
            b"2",
            b"S",
            b"5",
            b"./",
            b"\\a\\b",
            b"/" * 5,
        ]
        field = (rng.choice(pool) + bytes(n))[:n]
        b[h + off : h + off + n] = field
    elif what < 0.8:
        i = rng.randrange(len(b))
        b[i : i + rng.randint(1, 20)] = bytes(rng.randrange(256) for _ in range(rng.randint(0, 20)))
    else:
        del b[rng.randrange(len(b)) :]
    out = bytes(b)
    if rng.random() < 0.7 and len(out) >= h + 512:
        out = _fix_checksum(out, h)  # reach the parsing behind the checksum
    return out


def test_tar_listing_native_equals_twin_on_mutations(native):
    rng = random.Random(7)
    seeds = [_archive(f) for f in sorted(FORMATS)]
    outcomes = {"listed": 0, "problem": 0, "refused": 0}
    for trial in range(1500):
        data = _mutate(rng, rng.choice(seeds))
        a, b = native.tar_members(data), PY.tar_members(data)
        assert a == b, (trial, data.hex())
        if a is None:
            outcomes["refused"] += 1
            continue
        outcomes["problem" if a[2] else "listed"] += 1
        for name, (offset, size) in a[0].items():
            assert name and not name.startswith(("/", "./")) and not name.endswith("/")
            assert offset % 512 == 0 and offset >= 512 and size >= 0
    assert min(outcomes.values()) > 50, outcomes


# -- damaged archives in a scan ----------------------------------------------------------


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    """Three checkpoints, as a tar and as a tar.gz."""
    d = tmp_path_factory.mktemp("damaged")
    for i in range(3):
        tfckpt.write(d / "src" / f"c{i}" / f"ckpt-{i}", {"w": np.arange(4, dtype=np.float32)})

    def fixed(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.mtime = 0  # the same bytes in every run: the damage below is the same
        return info

    with tarfile.open(d / "ok.tar", "w", format=tarfile.GNU_FORMAT) as t:
        t.add(d / "src", arcname=".", filter=fixed)
    (d / "ok.tgz").write_bytes(gzip.compress((d / "ok.tar").read_bytes(), mtime=0))
    with tarfile.open(d / "ok.tar") as t:
        headers = {m.name: m.offset for m in t}
    return d, headers


def _scan(path):
    return [(r.record, r.name, r.status, r.error) for r in tfckpt.scan(path)]


def test_damaged_uncompressed_tar_is_reported(three):
    d, headers = three
    raw = (d / "ok.tar").read_bytes()
    assert [r[:3] for r in _scan(d / "ok.tar")] == [
        ("checkpoint", f"c{i}/ckpt-{i}", "ok") for i in range(3)
    ]
    second = headers["./c1/ckpt-1.data-00000-of-00001"]

    bad = bytearray(raw)
    bad[second + 3] ^= 0xFF  # a bad header checksum: tarfile stops listing there, silently
    (d / "badsum.tar").write_bytes(bad)
    recs = _scan(d / "badsum.tar")
    assert recs[0][:3] == ("path", "", "error")
    assert recs[0][3] == (
        f"damaged tar archive: a bad member header at byte {second} of "
        f"{len(raw)}; the members after it are not listed"
    )
    assert recs[1:] == [("checkpoint", "c0/ckpt-0", "ok", None)]

    # a negative size, on which tarfile fails
    (d / "neg.tar").write_bytes(_fix_checksum(_set(raw, second, 124, b"-0001000000\0"), second))
    recs = _scan(d / "neg.tar")
    assert len(recs) == 1 and recs[0][:3] == ("path", "", "error")
    assert recs[0][3].startswith("damaged tar archive, its members cannot be listed: ")

    # cut off inside the second checkpoint's data shard
    (d / "cut.tar").write_bytes(raw[: second + 600])
    recs = _scan(d / "cut.tar")
    assert recs[0] == (
        "path",
        "",
        "error",
        f"truncated tar archive: it ends at byte "
        f"{second + 600}, inside the member whose header is at byte {second}",
    )
    assert recs[1] == ("checkpoint", "c0/ckpt-0", "ok", None)
    # the shard's header made it, the index did not
    assert recs[2][:3] == ("checkpoint", "c1/ckpt-1", "error") and len(recs) == 3
    assert recs[2][3].startswith(
        "half-written checkpoint: data shard(s) "
        "ckpt-1.data-00000-of-00001 without the index ckpt-1.index"
    )


def test_damaged_compressed_tar_is_reported(three):
    d, _ = three
    raw = (d / "ok.tgz").read_bytes()
    assert [r[:3] for r in _scan(d / "ok.tgz")] == [
        ("checkpoint", f"c{i}/ckpt-{i}", "ok") for i in range(3)
    ]
    seen = set()
    for cut in range(40, len(raw) - 8, 37):
        (d / "cut.tgz").write_bytes(raw[:cut])
        recs = _scan(d / "cut.tgz")  # never raises
        before = set(seen)
        seen.clear()
        for rec in recs:
            if rec[2] == "ok":
                assert rec[0] == "checkpoint"
                seen.add("ok")
            elif rec[0] == "path" and "damaged compressed tar archive" in rec[3]:
                seen.add("damaged")
            elif (
                rec[0] == "checkpoint"
                and rec[3].startswith("damaged compressed tar archive: ")
                and ", reading member " in rec[3]
            ):
                seen.add("unread")  # listed, but its bytes lie past where the stream breaks
            elif "gzip-compressed file, not a tar archive that can be read" in rec[3]:
                seen.add("unreadable")
            elif rec[0] == "checkpoint" and rec[3].startswith("half-written checkpoint: "):
                seen.add("half")  # a shard made it into what is left, its index did not
            else:
                pytest.fail(f"cut at {cut}: unexpected record {rec}")
        # Every cut loses at least the gzip trailer: each scan, on its own, says so in
        # its first record, about the whole archive.
        assert "damaged" in seen or "unreadable" in seen, f"cut at {cut}: {recs}"
        assert (recs[0][0], recs[0][2]) == ("path", "error"), f"cut at {cut}: {recs}"
        if "unreadable" in seen:  # nothing of the tar could be read: that record alone
            assert recs == [("path", "cut.tgz", "error", recs[0][3])], f"cut at {cut}: {recs}"
        else:
            assert recs[0][1] == "" and "damaged compressed tar archive" in recs[0][3]
        seen |= before
    assert seen == {"ok", "damaged", "unreadable", "half", "unread"}
    # A damaged second header inside the stream: tarfile alone would list one checkpoint
    # and say nothing.
    plain = bytearray((d / "ok.tar").read_bytes())
    second = _tarfile_listing(bytes(plain))[0]["c1/ckpt-1.data-00000-of-00001"][0] - 512
    plain[second + 3] ^= 0xFF
    (d / "badsum.tgz").write_bytes(gzip.compress(bytes(plain), mtime=0))
    want = [
        (
            "path",
            "",
            "error",
            f"damaged compressed tar archive: a bad member header at "
            f"byte {second} of the uncompressed stream; the members after it are not listed",
        ),
        ("checkpoint", "c0/ckpt-0", "ok", None),
    ]
    assert _scan(d / "badsum.tgz") == want
    assert [(r.record, r.status) for r in tfckpt.scan(d / "badsum.tgz", keys=True)] == [
        ("path", "error"),
        ("key", "ok"),
    ]  # the damage shows in the per-key view too
