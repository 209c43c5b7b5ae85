"""Landing files: which files count, which export format each one is, and how their lines are read.

A landing file is read as exactly that file (no glob, no symlink), in binary blocks, gzip-aware. Its
first physical line is the header; every later line is returned byte for byte with the ending that
ended it, in Arrow batches that DuckDB inserts without another copy through Python objects.
"""

from __future__ import annotations

import os
import stat
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

LANDING_SUFFIXES = (".csv", ".csv.gz")  # matched case-insensitively: `2019-OCT.CSV` lands too
# The canonical event types of silver.events (REES46 names them so; RetailRocket is mapped to them).
EVENT_TYPES = ("view", "cart", "remove_from_cart", "purchase")

BLOCK_BYTES = 8 << 20  # lines are split per block of this many (decompressed) bytes
MAX_LINE_BYTES = 64 << 20  # a longer "line" is not an export row: reading stops there, the rest is reported
GZIP_MAGIC = b"\x1f\x8b"
GZIP_WBITS = 16 + zlib.MAX_WBITS  # a gzip header and trailer around deflate data
GZIP_PIECE = 256 << 10  # compressed bytes per decompress call: a corrupt one is salvaged byte by byte
LF, CR = 10, 13

# What bronze receives per block: the line number (the header is line 1), the line as text, its exact
# bytes when they are not UTF-8 (the text then holds U+FFFD for each bad byte), its ending, and whether
# it may hold a control character (see _may_hold_control).
LINE_SCHEMA = pa.schema(
    [
        ("line_number", pa.int64()),
        ("raw_line", pa.large_string()),
        ("raw_bytes", pa.large_binary()),
        ("line_ending", pa.dictionary(pa.int8(), pa.string())),
        ("may_hold_control", pa.bool_()),
    ]
)
_ENDINGS = pa.array(["\n", "\r\n", "\r", ""])  # dictionary of line_ending: LF, CRLF, CR, none (last line)
_ENDING_CODE = {b"\n": 0, b"\r": 2}


@dataclass(frozen=True)
class SourceFormat:
    name: str
    columns: tuple[str, ...]

    @property
    def header(self) -> str:
        return ",".join(self.columns)


REES46 = SourceFormat(
    "rees46",
    (
        "event_time",
        "event_type",
        "product_id",
        "category_id",
        "category_code",
        "brand",
        "price",
        "user_id",
        "user_session",
    ),
)
RETAILROCKET = SourceFormat("retailrocket", ("timestamp", "visitorid", "event", "itemid", "transactionid"))
FORMATS = (REES46, RETAILROCKET)


class LandingFileError(ValueError):
    """A landing file that cannot be ingested at all (empty, unknown format); the message says why."""


class LandingFileMissing(LandingFileError):
    """The file is not (or no longer) in the landing folder."""


def has_landing_suffix(name: str) -> bool:
    return name.lower().endswith(LANDING_SUFFIXES)


def is_gzip_name(name: str) -> bool:
    return name.lower().endswith(".gz")


def is_landing_file(path: Path) -> bool:
    # Hidden files are writers' temp names (the generator writes `.name.tmp`, then renames). A
    # symlink to a file is listed so that bronze refuses it with a reason instead of ignoring it.
    return path.is_file() and not path.name.startswith(".") and has_landing_suffix(path.name)


def list_landing_files(landing_dir: Path) -> list[Path]:
    if not landing_dir.is_dir():
        return []
    return sorted(p for p in landing_dir.iterdir() if is_landing_file(p))


def split_header(first_line: bytes) -> str:
    """The header as text: without BOM and line ending; bytes that are not UTF-8 shown as U+FFFD."""
    return first_line.decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r\n")


def format_from_header(name: str, header: str | None) -> SourceFormat:
    if header is None:
        raise LandingFileError(f"{name}: the file is empty (0 bytes); nothing to ingest")
    columns = tuple(c.strip().strip('"').lower() for c in header.split(","))
    for fmt in FORMATS:
        if columns == fmt.columns:
            return fmt
    expected = "; ".join(f"{f.name}: {f.header}" for f in FORMATS)
    shown = header if len(header) <= 200 else header[:200] + "..."
    raise LandingFileError(f"{name}: unknown format, header is {shown!r}. Expected one of these headers: {expected}")


def read_header(path: Path) -> str | None:
    """The first line without BOM, CR or LF; None for a file with no bytes at all."""
    with open_landing_file(path) as landing:
        return landing.header


def detect_format(path: Path) -> SourceFormat:
    return format_from_header(path.name, read_header(path))


# --- reading a landing file ------------------------------------------------------------------


@dataclass
class LandingFile:
    """One landing file opened for reading: its header, then its data lines as Arrow batches.

    Reading never raises for bad content: a cut gzip stream, a corrupt block, a read error or an
    over-long line ends the lines there and is recorded in `problems`; a file that changed while it
    was read is recorded in `changed`.
    """

    path: Path
    size_bytes: int
    header: str | None = None
    header_bytes: bytes = b""
    problems: list[str] = field(default_factory=list)
    changed: str | None = None
    data_lines: int = 0
    _blocks: Iterator[bytes] | None = None
    _rest: bytes = b""  # bytes read after the header, not yet split
    _separator: int = LF  # LF (LF and CRLF lines) or CR (a file whose lines end in CR alone)
    _fd: int = -1
    _stat: os.stat_result | None = None

    @property
    def name(self) -> str:
        return self.path.name

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The data lines (line 2 on), byte for byte, in batches of about BLOCK_BYTES."""
        splitter = _LineSplitter(self._separator, first_line_number=2)
        pending = [self._rest] if self._rest else []
        self._rest = b""
        for block in _chain(pending, self._blocks):
            for batch in splitter.feed(block):
                self.data_lines += batch.num_rows
                yield batch
            if splitter.too_long:
                self.problems.append(
                    f"line {splitter.line_number:,} is longer than {MAX_LINE_BYTES >> 20} MiB, which no export "
                    "row is; reading stopped there: the lines before it landed, the rest of the file did not"
                )
                return
        last = splitter.finish()
        if last is not None:
            self.data_lines += last.num_rows
            yield last
        self._check_unchanged()

    def _check_unchanged(self) -> None:
        """Record a file that grew, shrank, was rewritten or replaced while it was read."""
        before = self._stat
        now = os.fstat(self._fd)
        try:
            at_path = os.stat(self.path, follow_symlinks=False)
        except OSError:
            at_path = None
        if at_path is None or (at_path.st_ino, at_path.st_dev) != (before.st_ino, before.st_dev):
            self.changed = "the file was removed or replaced while it was read: the lines read from the original landed"
        elif (now.st_size, now.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            self.changed = (
                f"the file changed while it was read (size {before.st_size:,} -> {now.st_size:,} bytes): "
                f"the snapshot of its first {before.st_size:,} bytes landed; ingest it again once complete"
            )


def _chain(first: list[bytes], rest: Iterator[bytes] | None) -> Iterator[bytes]:
    yield from first
    if rest is not None:
        yield from rest


@contextmanager
def open_landing_file(path: Path) -> Iterator[LandingFile]:
    """Open exactly this file (never a glob, never through a symlink) and read its header.

    Raises LandingFileMissing when it is not there and LandingFileError when it cannot be read at all
    (a symlink, not a regular file, not gzip though named .gz, truncated inside the header, ...).
    """
    name = path.name
    if path.is_symlink():
        raise LandingFileError(
            f"{name}: a symbolic link (to {os.readlink(path)!r}), not a file; landing files are read only "
            "as regular files in the landing folder: copy the file there instead of linking it"
        )
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError as exc:
        raise LandingFileMissing(f"{name}: not found in the landing folder {path.parent}") from exc
    except OSError as exc:
        raise LandingFileError(f"{name}: cannot be opened: {exc.strerror or exc}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise LandingFileError(f"{name}: not a regular file; only files are ingested")
        landing = LandingFile(path, info.st_size, _fd=fd, _stat=info)
        raw = _limited_reader(fd, info.st_size, landing.problems)
        first = next(raw, b"")
        while 0 < len(first) < len(GZIP_MAGIC) and (more := next(raw, b"")):
            first += more
        gzip_magic = first[:2] == GZIP_MAGIC
        if is_gzip_name(name) and first and not gzip_magic:
            raise LandingFileError(
                f"{name}: not gzip-compressed, though its name ends in .gz (it starts with {first[:16]!r}); "
                "rename it to .csv or compress it"
            )
        if gzip_magic and not is_gzip_name(name):
            raise LandingFileError(f"{name}: gzip-compressed data in a file named .csv; name it .csv.gz")
        blocks = _chain([first] if first else [], raw)
        if is_gzip_name(name):
            blocks = _gunzip(blocks, landing.problems)
        landing._blocks = blocks
        _read_header(landing)
        yield landing
    finally:
        os.close(fd)


def _limited_reader(fd: int, size: int, problems: list[str]) -> Iterator[bytes]:
    """The file's first `size` bytes (its size when opened), in blocks: an append during the read is
    not half-read; `LandingFile._check_unchanged` reports it."""
    left = size
    while left > 0:
        try:
            block = os.read(fd, min(BLOCK_BYTES, left))
        except OSError as exc:
            done = size - left
            problems.append(f"reading failed after {done:,} bytes ({exc.strerror or exc}): the lines before landed")
            return
        if not block:
            return
        left -= len(block)
        yield block


def _gunzip(blocks: Iterator[bytes], problems: list[str]) -> Iterator[bytes]:
    """Decompressed blocks of a gzip stream (several members too), never more than BLOCK_BYTES at
    once. A stream cut short ends the output there; a corrupt one ends it at the last byte zlib could
    decode; either is recorded in `problems`."""
    inflater = None  # None between members
    fed = 0  # compressed bytes read
    pending = b""
    for block in blocks:
        for start in range(0, len(block), GZIP_PIECE):
            data = pending + block[start : start + GZIP_PIECE]
            pending = b""
            fed += len(data)
            while data:
                if inflater is None:
                    if len(data) < len(GZIP_MAGIC):
                        pending, fed = data, fed - len(data)
                        break
                    if data[:2] != GZIP_MAGIC:
                        problems.append(
                            f"{len(data):,} byte(s) after the end of the gzip stream are not gzip and were ignored"
                        )
                        return
                    inflater = zlib.decompressobj(GZIP_WBITS)
                saved = inflater.copy()
                try:
                    out = inflater.decompress(data, BLOCK_BYTES)
                except zlib.error as exc:
                    yield from _salvage(saved, data)
                    problems.append(
                        f"the gzip stream is corrupt within its first {fed:,} compressed bytes ({exc}): "
                        "the lines before that point landed, the last one possibly cut short"
                    )
                    return
                if out:
                    yield out
                if inflater.eof:  # the end of a member: another may follow
                    data, inflater = inflater.unused_data, None
                else:
                    data = inflater.unconsumed_tail
    if pending:
        problems.append(f"{len(pending)} byte(s) after the end of the gzip stream are not gzip and were ignored")
    if inflater is not None:
        while out := inflater.decompress(b"", BLOCK_BYTES):  # what zlib still holds
            yield out
        if not inflater.eof:
            problems.append(
                f"the gzip stream is truncated (it ends after {fed:,} compressed bytes, before its end marker): "
                "the lines before the cut landed, the last one possibly cut short"
            )


def _salvage(inflater, data: bytes) -> Iterator[bytes]:
    """What a decompressor can still decode of `data`, byte by byte, up to the corrupt byte."""
    for i in range(len(data)):
        try:
            out = inflater.decompress(data[i : i + 1])
        except zlib.error:
            return
        if out:
            yield out


def _read_header(landing: LandingFile) -> None:
    """Read blocks until the first line is complete; the header's ending decides what ends a line in
    this file: LF (or CRLF), or CR alone for a file written with classic Mac line endings."""
    head = bytearray()
    end = -1
    for block in landing._blocks:
        searched = max(len(head) - 1, 0)  # a CR that ended the previous block is looked at again
        head += block
        end = _header_end(head, searched, at_eof=False)
        if end >= 0:
            break
        if len(head) > MAX_LINE_BYTES:
            raise LandingFileError(
                f"{landing.name}: no line break in its first {MAX_LINE_BYTES >> 20} MiB; not a CSV export"
            )
    else:
        end = _header_end(head, 0, at_eof=True)
    if end < 0:
        end = len(head)  # one line, no line break (or no bytes at all)
    landing.header_bytes, landing._rest = bytes(head[:end]), bytes(head[end:])
    if landing.header_bytes.endswith(b"\r"):
        landing._separator = CR
    if not landing.header_bytes:
        if landing.problems:
            raise LandingFileError(f"{landing.name}: nothing readable: {'; '.join(landing.problems)}")
        if landing.size_bytes:
            raise LandingFileError(f"{landing.name}: the file is empty (no data once decompressed)")
        return  # header None: an empty file
    if landing.problems and not landing._rest and not landing.header_bytes.endswith((b"\n", b"\r")):
        raise LandingFileError(f"{landing.name}: cut inside its header line: {'; '.join(landing.problems)}")
    landing.header = split_header(landing.header_bytes)


def _header_end(head: bytearray, start: int, at_eof: bool) -> int:
    """Where the first line ends (just after its LF, CRLF or CR), or -1 if that is not known yet."""
    found = [i for i in (head.find(b"\n", start), head.find(b"\r", start)) if i >= 0]
    if not found:
        return -1
    end = min(found)
    if head[end] == LF:
        return end + 1
    if end + 1 < len(head):
        return end + 2 if head[end + 1] == LF else end + 1
    return end + 1 if at_eof else -1


class _LineSplitter:
    """Splits blocks of bytes into lines with numpy and builds Arrow batches without per-line Python.

    A line's value excludes its ending: LF, or CRLF when the CR comes right before the LF (lines
    split on LF); or CR in a file whose header ends in CR alone. Any other CR or LF stays inside the
    line. A line not yet ended at a block's end waits for the next block.
    """

    def __init__(self, separator: int, first_line_number: int) -> None:
        self.separator = separator
        self.line_number = first_line_number
        self.carry: list[bytes] = []
        self.carry_bytes = 0
        self.too_long = False

    def feed(self, block: bytes) -> Iterator[pa.RecordBatch]:
        if not block:
            return
        last = block.rfind(bytes([self.separator]))
        if last < 0:
            self.carry.append(block)
            self.carry_bytes += len(block)
            self.too_long = self.carry_bytes > MAX_LINE_BYTES
            return
        if self.carry:
            if self.carry_bytes + block.find(bytes([self.separator])) > MAX_LINE_BYTES:
                self.too_long = True
                return
            head = b"".join(self.carry)
            end = len(head) + last + 1
            buffer = head + block
            self.carry, self.carry_bytes = [], 0
        else:
            buffer, end = block, last + 1
        yield self._batch(buffer, end)
        if end < len(buffer):
            self.carry, self.carry_bytes = [buffer[end:]], len(buffer) - end

    def finish(self) -> pa.RecordBatch | None:
        """The last line when the file does not end with a line ending (its ending is '')."""
        if not self.carry:
            return None
        line = b"".join(self.carry)
        self.carry = []
        return _batch_from_lines([line], self.line_number, [3])

    def _batch(self, buffer: bytes, end: int) -> pa.RecordBatch:
        """A batch of the complete lines in buffer[:end] (which ends with a separator)."""
        data = np.frombuffer(buffer, np.uint8, count=end)
        ends = np.flatnonzero(data == self.separator)
        n = len(ends)
        if self.separator == LF:
            has_cr = np.zeros(n, bool)
            inside = ends > 0
            has_cr[inside] = data[ends[inside] - 1] == CR
        else:
            has_cr = np.zeros(n, bool)
        keep = np.ones(end, bool)
        keep[ends] = False
        keep[ends[has_cr] - 1] = False
        values = data[keep]  # the lines' bytes, endings removed, back to back
        offsets = np.empty(n + 1, np.int64)
        offsets[0] = 0
        offsets[1:] = ends - np.arange(n) - np.cumsum(has_cr)
        raw = pa.Array.from_buffers(pa.large_binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(values)])
        codes = has_cr.astype(np.int8) if self.separator == LF else np.full(n, _ENDING_CODE[b"\r"], np.int8)
        first = self.line_number
        self.line_number += n
        return _record_batch(raw, first, codes, _may_hold_control(values, offsets))


def _batch_from_lines(lines: list[bytes], first: int, codes: list[int]) -> pa.RecordBatch:
    raw = pa.array(lines, pa.large_binary())
    offsets = np.concatenate([[0], np.cumsum([len(line) for line in lines])])
    flags = _may_hold_control(np.frombuffer(b"".join(lines), np.uint8), offsets)
    return _record_batch(raw, first, np.array(codes, np.int8), flags)


def _may_hold_control(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per line (its bytes are values[offsets[i]:offsets[i + 1]]): whether it holds a byte below 0x20,
    DEL, or 0xC2, the lead byte of U+0080-U+00BF (the C1 controls among them).

    A line without any cannot hold a control character, so silver runs its control-character rule,
    a regex costing a third of the parse, only on the few lines with one (first_control_character,
    warehouse_macros.sql).
    Vectorized: a block with none, the usual case, costs three passes (0.7 ms for 8 MB).
    """
    flags = np.zeros(len(offsets) - 1, bool)
    if not values.size or (values.min() >= 0x20 and not (values == 0x7F).any() and not (values == 0xC2).any()):
        return flags
    found = np.flatnonzero((values < 0x20) | (values == 0x7F) | (values == 0xC2))
    flags[np.searchsorted(offsets, found, side="right") - 1] = True  # the line each byte falls in
    return flags


def _record_batch(raw: pa.Array, first: int, codes: np.ndarray, may_hold_control: np.ndarray) -> pa.RecordBatch:
    n = len(raw)
    try:
        text = raw.cast(pa.large_string())  # validates UTF-8 in one pass
        exact = pa.nulls(n, pa.large_binary())
    except pa.ArrowInvalid:  # some line is not UTF-8: find which, keep its bytes, show it with U+FFFD
        values = raw.to_pylist()
        shown, kept = [], []
        for value in values:
            try:
                shown.append(value.decode("utf-8"))
                kept.append(None)
            except UnicodeDecodeError:
                shown.append(value.decode("utf-8", errors="replace"))
                kept.append(value)
        text = pa.array(shown, pa.large_string())
        exact = pa.array(kept, pa.large_binary())
    return pa.record_batch(
        [
            pa.array(np.arange(first, first + n, dtype=np.int64)),
            text,
            exact,
            pa.DictionaryArray.from_arrays(pa.array(codes), _ENDINGS),
            pa.array(may_hold_control),
        ],
        schema=LINE_SCHEMA,
    )
