"""Tar member listing for scans (csrc/tar.{h,cc}): the headers of an uncompressed tar read
without a full tar reader."""

from __future__ import annotations

from typing import Dict, Optional, Tuple

from .bindings import _bytes_view

_TAR_BLOCK = 512
_TAR_MAX_NUMBER = (1 << 63) - 1
_OCTAL = frozenset(b"01234567")
_DECIMAL = frozenset(b"0123456789")


def _tar_number(field: bytes) -> Optional[int]:
    """A numeric header field: base-256 (GNU) when the top bit of its first byte is set,
    else octal digits up to the first NUL with optional whitespace around them; None for
    anything else or a value past 2^63-1."""
    if field[0] & 0x80:
        v = int.from_bytes(field[1:], "big")
        return v if v <= _TAR_MAX_NUMBER else None
    text = field.split(b"\0", 1)[0].strip()
    if not _OCTAL.issuperset(text):
        return None
    return int(text, 8) if text else 0


def _decimal(text: bytes, limit: int) -> Optional[int]:
    if not text or not _DECIMAL.issuperset(text):
        return None
    v = int(text)
    return v if v <= limit else None


def _tar_text(field: bytes) -> bytes:
    return field.split(b"\0", 1)[0]


def _pax_records(data: bytes) -> Optional[Dict[bytes, bytes]]:
    """The records of a pax extended header ("LENGTH KEY=VALUE\\n"), or None if malformed."""
    out: Dict[bytes, bytes] = {}
    pos, n = 0, len(data)
    while pos < n:
        space = data.find(b" ", pos)
        if space < 0:
            return None
        length = _decimal(data[pos:space], n - pos)
        if not length:
            return None
        end = pos + length
        if space + 1 >= end or data[end - 1] != 0x0A:
            return None
        key, _, value = data[space + 1 : end - 1].partition(b"=")
        out[key] = value
        pos = end
    return out


def _tar_name(name: bytes) -> bytes:
    """A member name as a scan names it: '\\' as '/', no leading "./" or '/', no trailing
    '/'."""
    name = name.replace(b"\\", b"/")
    while name.startswith((b"./", b"/")):
        name = name[2:] if name.startswith(b"./") else name[1:]
    return name.rstrip(b"/")


def _after(data: int, size: int, limit: int) -> int:
    """The offset after a member's data in whole blocks, or limit + 1 past `limit`."""
    nxt = data + (size + _TAR_BLOCK - 1) // _TAR_BLOCK * _TAR_BLOCK
    return limit + 1 if nxt > limit else nxt


def tar_members(
    buffer,
) -> Optional[Tuple[Dict[str, Tuple[int, int]], Dict[str, str], Optional[str]]]:
    """({member: (data offset, size)}, {member: why it is not a file}, what is wrong with
    the archive or None) from the headers of an uncompressed tar (ustar, GNU long names,
    pax), or None when the archive needs a full tar reader (a bad checksum, a number that
    is not plain octal, a malformed pax record, a long name or pax header past the end)."""
    buf = _bytes_view(buffer)
    files: Dict[bytes, Tuple[int, int]] = {}
    errors: Dict[bytes, bytes] = {}
    end = len(buf)
    pos = header = 0
    ended = False  # at the end-of-archive (zero) block
    long_name = long_link = b""
    pax: Dict[bytes, bytes] = {}
    zero = bytes(_TAR_BLOCK)
    while end >= _TAR_BLOCK and pos <= end - _TAR_BLOCK:
        h = bytes(buf[pos : pos + _TAR_BLOCK])
        if h == zero:
            ended = True
            break
        header = pos
        stored, size = _tar_number(h[148:156]), _tar_number(h[124:136])
        if stored is None or stored != sum(h[:148]) + 256 + sum(h[156:]) or size is None:
            return None
        kind = h[156]
        at = pos + _TAR_BLOCK
        pos = _after(at, size, end)
        if kind in b"LKx":
            if size > end - at:
                return None
            body = bytes(buf[at : at + size])
            if kind == 0x4C:  # L: a GNU long name
                long_name = _tar_text(body)
            elif kind == 0x4B:  # K: a GNU long link
                long_link = _tar_text(body)
            else:
                records = _pax_records(body)
                if records is None:
                    return None
                pax = records
            continue
        if kind == 0x67:  # g: global pax records, nothing a listing needs
            continue
        name = _tar_text(h[0:100])
        if h[257:263] == b"ustar\0" and h[345] != 0:
            name = _tar_text(h[345:500]) + b"/" + name
        link = _tar_text(h[157:257])
        name = pax[b"path"] if b"path" in pax else long_name or name
        link = pax[b"linkpath"] if b"linkpath" in pax else long_link or link
        if b"size" in pax:
            size = _decimal(pax[b"size"], _TAR_MAX_NUMBER)
            if size is None:
                return None
            pos = _after(at, size, end)
        long_name = long_link = b""
        pax = {}
        name = _tar_name(name)
        if not name or name == b"." or kind == 0x35:  # 5: a directory
            continue
        if kind in (0x30, 0, 0x37):  # 0, NUL, 7: a regular file
            files[name] = (at, size)
        elif kind == 0x31:  # 1: a hard link
            target = files.get(_tar_name(link))
            if target is not None:
                files[name] = target
            else:
                errors[name] = b"hard link to " + link + b", which is not in the archive"
        elif kind == 0x32:  # 2: a symbolic link
            errors[name] = b"symbolic link (to " + link + b") inside the archive, not followed"
        elif kind == 0x53:  # S: GNU sparse
            errors[name] = b"sparse member (GNU sparse format), not read"
        else:
            errors[name] = b"not a regular file"

    problem = None
    if not ended and pos != end:
        problem = f"truncated tar archive: it ends at byte {end}, " + (
            f"inside the member header at byte {pos}"
            if pos < end
            else f"inside the member whose header is at byte {header}"
        )

    def text(b: bytes) -> str:
        return b.decode("utf-8", "surrogateescape")

    return (
        {text(k): v for k, v in files.items()},
        {text(k): text(v) for k, v in errors.items()},
        problem,
    )
