"""Line-level reading of user text (corpora, task files, pair files): strict UTF-8 with file:line errors, one BOM
rule. Local paths open as files, URIs (s3://, gs://, file://) through pyarrow filesystems. Writing goes through
``xlray.outputs`` (``atomic_text``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Any

from xlray.errors import XlrayError, one_line, where

BOM = b"\xef\xbb\xbf"  # the UTF-8 byte-order mark, codecs.BOM_UTF8
READ_BLOCK = 1 << 22  # bytes read at a time by raw_lines and count_lines


class BadLine(XlrayError):
    """A line of user text that cannot be used: not valid UTF-8, or empty where empty lines are refused.

    The message is ``file:line: what is wrong``; a reader that skips bad lines can yield it instead of raising it.
    """


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


def is_uri(path: str | Path) -> bool:
    """A path reached through a pyarrow filesystem (``s3://``, ``gs://``, ``file://``), not a local one."""
    return "://" in str(path)


def open_fs(path: str) -> tuple[Any, str]:
    """A pyarrow filesystem and the path inside it, for a local path or a URI (s3://, gs://, file://)."""
    from pyarrow import fs as pafs

    if is_uri(path):
        return pafs.FileSystem.from_uri(path)
    return pafs.LocalFileSystem(), str(PurePosixPath(path)) if path.startswith("/") else path


def open_binary(path: str | Path) -> IO[bytes]:
    """Open a local file or a URI for reading bytes (seekable); a missing file is a one-line error."""
    if not is_uri(path):
        return existing_file(path).open("rb")
    filesystem, inner = open_fs(str(path))
    try:
        return filesystem.open_input_file(inner)
    except FileNotFoundError:
        raise XlrayError(f"{path}: file not found") from None
    except OSError as exc:
        raise XlrayError(f"{path}: cannot open input: {one_line(exc)}") from None


def is_file(path: str | Path) -> bool:
    """Whether ``path`` (local or a URI) names an existing file."""
    if not is_uri(path):
        return Path(path).is_file()
    from pyarrow import fs as pafs

    filesystem, inner = open_fs(str(path))
    try:
        return filesystem.get_file_info(inner).type == pafs.FileType.File
    except OSError:
        return False


def decode_line(raw: bytes, path: str | Path, number: int) -> str:
    """Decode one line as UTF-8, naming file:line when it is not valid UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadLine(
            f"{where(path, number)}: invalid UTF-8 at byte {exc.start + 1} of the line; re-encode the file as UTF-8"
        ) from None


def refuse_empty(text: str, path: str | Path, number: int) -> str:
    """``text`` unchanged, or a BadLine naming file:line if it is empty or only whitespace."""
    if not text.strip():
        raise BadLine(f"{where(path, number)}: empty line")
    return text


def raw_lines(
    path: str | Path, offset: int = 0, first_line: int = 1, n_lines: int | None = None
) -> Iterator[tuple[int, bytes]]:
    """Lines ``first_line ..`` (at most ``n_lines``; None: to the end) read from byte ``offset`` in blocks, as bytes
    without LF or CRLF. The file's leading BOM is dropped when reading from offset 0 (later chunks start past it).
    """
    number, end = first_line, None if n_lines is None else first_line + n_lines
    with open_binary(path) as handle:
        handle.seek(offset)
        buffer = b""
        while end is None or number < end:
            block = handle.read(READ_BLOCK)
            *lines, buffer = (buffer + block).split(b"\n")
            if not block and buffer:
                lines.append(buffer)
            for raw in lines if end is None else lines[: end - number]:
                if offset == 0 and number == first_line:
                    raw = strip_bom(raw)
                yield number, raw.rstrip(b"\r")
                number += 1
            if not block:
                return


def read_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line number from 1, text without LF or CRLF ending)`` one at a time (local or a URI); a leading BOM
    is dropped."""
    for number, raw in raw_lines(path):
        yield number, decode_line(raw, path, number)


def count_lines(path: str | Path) -> int:
    """Count lines without decoding or holding the file (local or a URI); a last line without a newline counts."""
    count, last = 0, b"\n"
    with open_binary(path) as fh:
        while chunk := fh.read(READ_BLOCK):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")


def check_field(value: str, what: str, path: str | Path) -> str:
    """Refuse a value that would break a line- or tab-separated format when written."""
    if any(ch in value for ch in "\t\n\r"):
        raise XlrayError(f"{path}: cannot write {what} {value[:60]!r}: it contains a tab or a line break")
    return value
