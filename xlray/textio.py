"""Line-level reading of user text (corpora, task files, pair files): strict UTF-8 with file:line errors, one BOM
rule. Writing goes through ``xlray.outputs`` (``atomic_text``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from xlray.errors import XlrayError, where

BOM = b"\xef\xbb\xbf"  # the UTF-8 byte-order mark, codecs.BOM_UTF8


def strip_bom(first: bytes) -> bytes:
    """A file's first line (or bytes from offset 0) without a leading UTF-8 BOM, which Windows editors write.

    Call it on the start of a file only: a BOM anywhere else is a character of the text and is kept.
    """
    return first[len(BOM) :] if first.startswith(BOM) else first


def existing_file(path: str | Path) -> Path:
    """Return ``path`` as a Path, or raise a one-line error if it is not a readable file."""
    path = Path(path)
    if not path.is_file():
        raise XlrayError(f"{path}: file not found")
    return path


def decode_line(raw: bytes, path: Path, number: int) -> str:
    """Decode one line as UTF-8, naming file:line when it is not valid UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise XlrayError(
            f"{where(path, number)}: invalid UTF-8 at byte {exc.start + 1} of the line; re-encode the file as UTF-8"
        ) from None


def read_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line number from 1, text without LF or CRLF ending)`` one at a time; a leading BOM is dropped."""
    path = existing_file(path)
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, 1):
            yield number, decode_line(strip_bom(raw) if number == 1 else raw, path, number).rstrip("\r\n")


def count_lines(path: str | Path) -> int:
    """Count lines without decoding or holding the file; a last line without a newline still counts."""
    path = existing_file(path)
    count, last = 0, b"\n"
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")


def check_field(value: str, what: str, path: str | Path) -> str:
    """Refuse a value that would break a line- or tab-separated format when written."""
    if any(ch in value for ch in "\t\n\r"):
        raise XlrayError(f"{path}: cannot write {what} {value[:60]!r}: it contains a tab or a line break")
    return value
