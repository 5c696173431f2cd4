"""The LevelDB-style table an .index file is (csrc/table.{h,cc}; FORMAT.md 2): footer,
block handles, blocks with restart points, trailers; read with every block CRC checked, and
built byte for byte as TensorFlow writes it."""

from __future__ import annotations

import struct
from typing import List, Optional, Tuple

from ..errors import ChecksumMismatchError, CorruptCheckpointError
from .bindings import _buffer_bytes, _path_display
from .coding import _fixed32, _Malformed, _printable, _put_varint, _varint
from .crc32c import crc32c, mask_crc, unmask_crc
from .snappy import _snappy

_MAGIC = 0xDB4775248B80FB57
_FOOTER = 48
_TRAILER = 5


class _Table:
    """Every block of a table file read and checked; `entries` are (key, value) pairs."""

    def __init__(self, data: bytes, name: str) -> None:
        self.name = name
        self.entries: List[Tuple[bytes, bytes]] = []
        self.data_blocks = 0
        self.snappy_blocks = 0
        size = len(data)
        if size < _FOOTER:
            raise CorruptCheckpointError(
                f"{name}: file is too short to be an sstable ({size} bytes; a table ends in a "
                f"{_FOOTER}-byte footer)"
            )
        footer = size - _FOOTER
        if int.from_bytes(data[footer + 40 : size], "little") != _MAGIC:
            raise CorruptCheckpointError(f"{name}: not an sstable (bad magic number)")
        try:
            mo, p = _varint(data, footer, footer + 40)
            ms, p = _varint(data, p, footer + 40)
            io, p = _varint(data, p, footer + 40)
            isz, p = _varint(data, p, footer + 40)
        except _Malformed:
            raise CorruptCheckpointError(f"{name}: bad block handle in the footer") from None
        self.metaindex_handle = (mo, ms)
        self.index_handle = (io, isz)
        self._key_bytes = 0
        self._key_limit = size * 32 + (1 << 20)

        index_entries: List[Tuple[bytes, bytes]] = []
        # Each index entry names a data block, and data blocks do not overlap: each takes at
        # least its 5-byte trailer, which bounds the entries even of a Snappy index block.
        self._parse_block(
            self._read_block(data, io, isz, "index block"),
            "index block",
            index_entries,
            False,
            size // _TRAILER + 1,
        )
        next_free = 0  # data blocks follow one another: one pass over the file at most
        for sep, value in index_entries:
            try:
                off, q = _varint(value, 0, len(value))
                bsize, q = _varint(value, q, len(value))
            except _Malformed:
                raise CorruptCheckpointError(
                    f'{name}: bad block handle in the index block (key "{_printable(sep)}")'
                ) from None
            if off < next_free:
                raise CorruptCheckpointError(
                    f"{name}: data block at offset {off}, size {bsize} overlaps or precedes "
                    "the previous block"
                )
            block = self._read_block(data, off, bsize, "data block")
            next_free = off + bsize + _TRAILER
            # Keys increase strictly across the whole table: checked as they are decoded.
            self._parse_block(block, "data block", self.entries, True, None)
            self.data_blocks += 1

    def _read_block(self, data: bytes, off: int, size: int, what: str) -> bytes:
        name = self.name
        if off + size + _TRAILER > len(data) - _FOOTER:
            raise CorruptCheckpointError(
                f"{name}: {what} handle (offset {off}, size {size}) points past the end of "
                f"the file ({len(data)} bytes)"
            )
        mv = memoryview(data)
        stored = unmask_crc(_fixed32(data, off + size + 1))
        if crc32c(mv[off : off + size + 1]) != stored:  # contents and the type byte
            raise ChecksumMismatchError(
                f"{name}: block checksum mismatch in {what} at offset {off}, size {size}"
            )
        block_type = data[off + size]
        if block_type == 0:
            return data[off : off + size]
        if block_type == 1:
            try:
                # Snappy expands at most about 21x.
                block = _snappy(data[off : off + size], size * 24 + 64)
            except _Malformed as e:
                raise CorruptCheckpointError(
                    f"{name}: corrupted compressed block contents in {what} at offset {off}, "
                    f"size {size} ({e})"
                ) from None
            self.snappy_blocks += 1
            return block
        raise CorruptCheckpointError(
            f"{name}: bad block type {block_type} in {what} at offset {off}, size {size}"
        )

    def _parse_block(
        self,
        block: bytes,
        what: str,
        out: List[Tuple[bytes, bytes]],
        check_order: bool,
        max_entries: Optional[int],
    ) -> None:
        """Appends the entries of `block` to `out`: with `check_order` each key greater than
        the one before it in `out`, at most `max_entries` in `out`."""
        name = self.name
        n = len(block)
        if n < 4:
            raise CorruptCheckpointError(f"{name}: bad block contents in {what} (too short)")
        num_restarts = _fixed32(block, n - 4)
        if num_restarts > (n - 4) // 4:
            raise CorruptCheckpointError(
                f"{name}: bad block contents in {what} ({num_restarts} restart points do not "
                f"fit in {n} bytes)"
            )
        if num_restarts == 0:
            return  # TensorFlow reads such a block as empty
        end = n - 4 - 4 * num_restarts  # where the entries stop and the restart array starts
        if end == 0:
            return  # an empty block
        restarts = struct.unpack_from(f"<{num_restarts}I", block, end)
        if restarts[0] != 0:
            raise CorruptCheckpointError(
                f"{name}: restart array of {what} does not start at offset 0 (points at "
                f"{restarts[0]})"
            )
        # Every restart point must be the start of an entry storing its whole key.
        p = 0
        next_restart = 0
        prev = b""
        while p < end:
            entry_at = p
            at_restart = False
            if next_restart < num_restarts:
                r = restarts[next_restart]
                if r < entry_at:
                    raise CorruptCheckpointError(
                        f"{name}: restart point {r} of {what} is not at an entry boundary"
                    )
                if r == entry_at:
                    at_restart = True
                    next_restart += 1
            try:
                shared, p = _varint(block, p, end, 5)
                unshared, p = _varint(block, p, end, 5)
                value_len, p = _varint(block, p, end, 5)
            except _Malformed:
                raise CorruptCheckpointError(
                    f"{name}: bad entry in {what} at offset {entry_at} (truncated lengths)"
                ) from None
            if shared > len(prev) or (at_restart and shared):
                raise CorruptCheckpointError(
                    f"{name}: bad entry in {what} at offset {entry_at} (shares {shared} bytes "
                    f"with a {len(prev)}-byte key{' at a restart point' if at_restart else ''})"
                )
            if unshared + value_len > end - p:
                raise CorruptCheckpointError(
                    f"{name}: bad entry in {what} at offset {entry_at} (key or value runs past "
                    "the block)"
                )
            self._key_bytes += shared + unshared
            if self._key_bytes > self._key_limit:
                raise CorruptCheckpointError(
                    f"{name}: keys expand to more than {self._key_limit} bytes; the index is "
                    "corrupt or hostile"
                )
            key = prev[:shared] + block[p : p + unshared]
            p += unshared
            value = block[p : p + value_len]
            p += value_len
            if check_order and out and not out[-1][0] < key:
                raise CorruptCheckpointError(
                    f'{name}: keys are not in strictly increasing order: "{_printable(key)}" '
                    f'follows "{_printable(out[-1][0])}"'
                )
            if max_entries is not None and len(out) >= max_entries:
                raise CorruptCheckpointError(
                    f"{name}: bad entry in {what} at offset {entry_at} (more than "
                    f"{max_entries} entries in a {n}-byte block of a table this size)"
                )
            out.append((key, value))
            prev = key
        if next_restart != num_restarts:
            raise CorruptCheckpointError(
                f"{name}: restart point {restarts[next_restart]} of {what} points outside the "
                "entries of the block"
            )


def read_table(buffer, name) -> List[Tuple[bytes, bytes]]:
    """Every (key, value) of a table file, in order, every block CRC checked."""
    return list(_Table(_buffer_bytes(buffer), _path_display(name)).entries)


# ---------------------------------------------------------------------------------------------
# Building (FORMAT.md 2.3-2.8): tables byte for byte as TensorFlow writes them.


class _BlockBuilder:
    def __init__(self, interval: int) -> None:
        self.interval = interval
        self.reset()

    def reset(self) -> None:
        self.buf = bytearray()
        self.restarts = [0]
        self.counter = 0
        self.last_key = b""

    def add(self, key: bytes, value: bytes) -> None:
        shared = 0
        if self.counter < self.interval:
            limit = min(len(self.last_key), len(key))
            while shared < limit and self.last_key[shared] == key[shared]:
                shared += 1
        else:
            self.restarts.append(len(self.buf))
            self.counter = 0
        for v in (shared, len(key) - shared, len(value)):
            _put_varint(self.buf, v)
        self.buf += key[shared:]
        self.buf += value
        self.last_key = key
        self.counter += 1

    def estimated_size(self) -> int:
        return len(self.buf) + 4 * len(self.restarts) + 4

    def finish(self) -> bytes:
        out = (
            bytes(self.buf)
            + struct.pack(f"<{len(self.restarts)}I", *self.restarts)
            + struct.pack("<I", len(self.restarts))
        )
        self.reset()
        return out


def _shortest_separator(start: bytes, limit: bytes) -> bytes:
    n = min(len(start), len(limit))
    i = 0
    while i < n and start[i] == limit[i]:
        i += 1
    if i < n and start[i] < 0xFF and start[i] + 1 < limit[i]:
        return start[:i] + bytes([start[i] + 1])
    return start


def _short_successor(key: bytes) -> bytes:
    for i, c in enumerate(key):
        if c != 0xFF:
            return key[:i] + bytes([c + 1])
    return key


def build_table(items, block_size: int = 262144, restart_interval: int = 16) -> bytes:
    """A LevelDB-style table of the given (key, value) pairs, keys strictly increasing."""
    out = bytearray()

    def write_block(contents: bytes) -> Tuple[int, int]:
        handle = (len(out), len(contents))
        out.extend(contents)
        out.append(0)  # no compression
        out.extend(struct.pack("<I", mask_crc(crc32c(contents + b"\x00"))))
        return handle

    def handle_bytes(h: Tuple[int, int]) -> bytes:
        b = bytearray()
        _put_varint(b, h[0])
        _put_varint(b, h[1])
        return bytes(b)

    data_block = _BlockBuilder(restart_interval)
    index_block = _BlockBuilder(1)
    pending: Optional[Tuple[int, int]] = None
    last_key = b""
    count = 0
    for key, value in items:
        key, value = bytes(key), bytes(value)
        if count and len(key) + len(value) >= 2 * block_size and data_block.buf:
            pending = write_block(data_block.finish())
        if pending is not None:
            index_block.add(_shortest_separator(last_key, key), handle_bytes(pending))
            pending = None
        last_key = key
        count += 1
        data_block.add(key, value)
        if data_block.estimated_size() >= block_size:
            pending = write_block(data_block.finish())
    if data_block.buf:
        pending = write_block(data_block.finish())
    metaindex = write_block(_BlockBuilder(restart_interval).finish())
    if pending is not None:
        index_block.add(_short_successor(last_key), handle_bytes(pending))
    index = write_block(index_block.finish())
    footer = bytearray(handle_bytes(metaindex) + handle_bytes(index))
    footer += b"\x00" * (40 - len(footer))
    footer += struct.pack("<Q", _MAGIC)
    return bytes(out + footer)
