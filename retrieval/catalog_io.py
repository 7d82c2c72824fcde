"""Low-level readers shared by the catalog loaders: bounded lines, CSV rows and JSON documents.

Every problem becomes a `CatalogError` naming the file and, where there is one, the 1-based line.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
from collections.abc import Iterator
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from retrieval.catalog import CatalogError, Interaction

MAX_LINE_BYTES = 1 << 20  # 1 MiB, not counting the line terminator
BLOCK_BYTES = 1 << 18  # read size; a block never needs more than MAX_LINE_BYTES + BLOCK_BYTES in memory
UTF8_BOM = b"\xef\xbb\xbf"
_INTERACTION_LIST = TypeAdapter(list[Interaction])


def json_type(value: object) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, decoded line with its terminator), checking size, NUL bytes and UTF-8."""
    for first, lines in iter_line_blocks(path):
        yield from enumerate(lines, first)


def iter_line_blocks(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Yield (number of the first line, decoded lines) per block of the file, in order.

    Blocks are read in BLOCK_BYTES pieces, so a line longer than MAX_LINE_BYTES is refused once that many
    bytes of it are buffered, never read whole. The good lines before a bad one are yielded first, so the
    caller meets the earliest problem in the file.
    """
    with path.open("rb") as handle:
        first, carry = 1, b""
        chunk = handle.read(BLOCK_BYTES)
        if chunk.startswith(UTF8_BOM):
            chunk = chunk[len(UTF8_BOM) :]
        while chunk or carry:
            data = carry + chunk
            end = data.rfind(b"\n") + 1 if chunk else len(data)
            carry = data[end:]
            lines, error = _decode_block(path, first, data[:end])
            if lines:
                yield first, lines
            if error is not None:
                raise error
            first += len(lines)
            if len(carry) > MAX_LINE_BYTES + 1:  # room for a "\r" before the "\n" still to come
                raise CatalogError(str(path), first, f"line {first} is longer than {MAX_LINE_BYTES} bytes")
            chunk = handle.read(BLOCK_BYTES) if chunk else b""


def _decode_block(path: Path, first: int, block: bytes) -> tuple[list[str], CatalogError | None]:
    """The block's lines, or the good lines before the first bad one and its error."""
    if len(block) <= MAX_LINE_BYTES + 1 and b"\x00" not in block:
        try:
            return _split_keep_newline(block.decode("utf-8")), None
        except UnicodeDecodeError:
            pass  # find the line in the careful path below
    lines: list[str] = []
    for raw in _split_bytes(block):
        try:
            lines.append(_decode_line(path, first + len(lines), raw))
        except CatalogError as exc:
            return lines, exc
    return lines, None


def _split_keep_newline(text: str) -> list[str]:
    # Split on "\n" only: str.splitlines would also split on U+2028 and friends, which JSON allows.
    parts = text.split("\n")
    last = parts.pop()
    lines = [part + "\n" for part in parts]
    if last:
        lines.append(last)
    return lines


def _split_bytes(block: bytes) -> list[bytes]:
    parts = block.split(b"\n")
    last = parts.pop()
    return [part + b"\n" for part in parts] + ([last] if last else [])


def _decode_line(path: Path, lineno: int, raw: bytes) -> str:
    if len(raw.rstrip(b"\r\n")) > MAX_LINE_BYTES:
        raise CatalogError(str(path), lineno, f"line {lineno} is longer than {MAX_LINE_BYTES} bytes")
    if b"\x00" in raw:
        column = raw.index(b"\x00") + 1
        raise CatalogError(str(path), lineno, f"line contains a NUL byte (column {column})")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = raw[exc.start : exc.start + 1].hex()
        raise CatalogError(
            str(path), lineno, f"line is not valid UTF-8 (byte 0x{bad} at column {exc.start + 1})"
        ) from None


def iter_csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Yield (line where the record starts, fields) for every non-blank CSV record."""
    lines = itertools.chain.from_iterable(block for _, block in iter_line_blocks(path))
    reader = csv.reader(lines, strict=True)
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            span = f" (record spans lines {start}-{reader.line_num})" if reader.line_num > start else ""
            if "field larger than field limit" in str(exc):
                reason = f"a CSV field is longer than {csv.field_size_limit()} characters{span}"
            else:
                reason = f"bad CSV quoting: {exc}{span}"
            raise CatalogError(str(path), start, reason) from None
        if row:
            yield start, row
        start = reader.line_num + 1


def read_json_document(path: Path) -> object:
    """Parse a whole-file JSON document; syntax errors name the line json reports."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CatalogError(str(path), None, f"cannot read file: {exc.strerror or exc}") from None
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM) :]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise CatalogError(str(path), line, "file is not valid UTF-8") from None
    if not text.strip():
        raise CatalogError(str(path), None, "file is empty (expected a JSON document)")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogError(str(path), exc.lineno, f"invalid JSON: {exc.msg} (column {exc.colno})") from None
    except RecursionError:
        raise CatalogError(str(path), None, "invalid JSON: nested too deeply") from None


def parse_rating(path: Path, line: int | None, value: str) -> float:
    """A finite float from a CSV cell."""
    try:
        rating = float(value)
    except ValueError:
        raise CatalogError(str(path), line, f"rating {value!r} is not a number") from None
    if not math.isfinite(rating):
        raise CatalogError(str(path), line, f"rating {value!r} is not a finite number")
    return rating


def parse_timestamp(path: Path, line: int | None, value: str) -> int:
    """An integer from a CSV cell."""
    try:
        return int(value)
    except ValueError:
        raise CatalogError(str(path), line, f"timestamp {value!r} is not an integer") from None


def build_interactions(path: Path, rows: list[dict[str, object]], lines: list[int] | None = None) -> list[Interaction]:
    """Validate many interactions in one pydantic call: several times faster than one model at a time."""
    try:
        return _INTERACTION_LIST.validate_python(rows)
    except ValidationError as exc:
        error = exc.errors()[0]
        index, field = error["loc"][0], ".".join(map(str, error["loc"][1:]))
        line = lines[index] if lines is not None and isinstance(index, int) else None
        raise CatalogError(str(path), line, f"invalid {field}: {error['msg']}") from None
