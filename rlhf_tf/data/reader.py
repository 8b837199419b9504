"""Reading JSON Lines feedback files with line-exact errors (README, "Bad input").

A file's shape is detected from its first good record (or forced with `format`); every line after must have the
same shape. A bad line (invalid UTF-8, truncated JSON, a missing or wrongly typed field, empty text, NaN or inf, a
ranking that is not a permutation, a record of another shape, a line over the length cap) is:
- `on_error="raise"`: the reading stops with `DataError` naming file, line and field (binaries exit 2);
- `on_error="skip"`: skipped, counted, and copied verbatim with its reason to the rejected-records file;
- `on_error="collect"`: skipped and kept in the report, so that a validator can list every bad line.
Blank lines are ignored.
"""

import base64
import dataclasses
import json
import os
import uuid

import tensorflow as tf

from rlhf_tf import files
from rlhf_tf.data import formats
from rlhf_tf.errors import UserInputError

DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024
ON_ERROR = ("raise", "skip", "collect")


@dataclasses.dataclass(frozen=True)
class RecordError:
    """One bad line: where it is, which field, and what is wrong."""

    path: str
    line: int
    field: str
    message: str

    def __str__(self):
        return f"{self.path}, line {self.line}, field '{self.field}': {self.message}"


class DataError(UserInputError):
    """Bad records stopped the reading. `errors` holds each `RecordError`."""

    def __init__(self, errors, hint=True):
        self.errors = list(errors)
        shown = "\n".join(f"  {error}" for error in self.errors[:20])
        more = f"\n  ... and {len(self.errors) - 20} more" if len(self.errors) > 20 else ""
        advice = (
            "\nFix these records, or pass --skip_bad_records to skip them (each is copied with its reason to "
            "<output_dir>/rejected_records.jsonl and counted in metrics.json)."
            if hint
            else ""
        )
        super().__init__(f"Bad record{'s' if len(self.errors) > 1 else ''}:\n{shown}{more}{advice}")


@dataclasses.dataclass
class ReadReport:
    """What reading one file found."""

    path: str
    format: str = ""
    records: int = 0
    blank_lines: int = 0
    errors: list = dataclasses.field(default_factory=list)

    @property
    def rejected(self):
        return len(self.errors)


class RejectedRecords:
    """Collects rejected lines, verbatim with their reasons, into one JSONL file written atomically on close.

    Each line of the file: {"file", "line", "field", "reason", "text"} where "text" is the original line, or
    "text_base64" when the line was not valid UTF-8 or over the length cap.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self.count = 0
        self._temporary = f"{self.path}.tmp-{uuid.uuid4().hex}"
        directory = os.path.dirname(self.path)
        if directory:
            tf.io.gfile.makedirs(directory)
        self._handle = tf.io.gfile.GFile(self._temporary, "wb")

    def _header(self, error):
        return {"file": error.path, "line": error.line, "field": error.field, "reason": error.message}

    def add(self, error, raw):
        entry = self._header(error)
        try:
            entry["text"] = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            entry["text_base64"] = base64.b64encode(raw.rstrip(b"\r\n")).decode("ascii")
        self._handle.write((json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8"))
        self.count += 1

    def add_streamed(self, error, first_chunk, rest_chunks):
        """Copies an over-long line without holding it in memory (base64, streamed in 3-byte-aligned pieces)."""
        header = json.dumps(self._header(error), ensure_ascii=False)[:-1]
        self._handle.write((header + ', "text_base64": "').encode("utf-8"))
        carry = b""
        for chunk in [first_chunk, *rest_chunks]:
            data = carry + chunk.rstrip(b"\r\n") if chunk.endswith(b"\n") else carry + chunk
            cut = len(data) - len(data) % 3
            self._handle.write(base64.b64encode(data[:cut]))
            carry = data[cut:]
        self._handle.write(base64.b64encode(carry) + b'"}\n')
        self.count += 1

    def close(self):
        self._handle.close()
        tf.io.gfile.rename(self._temporary, self.path, overwrite=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def _lines(handle, max_line_bytes, chunk_bytes=1 << 20):
    """Yields (line_number, raw_bytes, overflow) from a binary handle, reading fixed-size chunks.

    A line longer than `max_line_bytes` is never held whole: `raw_bytes` is its first part and `overflow` an
    iterator over the rest (which the caller must exhaust before asking for the next line).
    """
    number = 0
    buffer = b""
    exhausted = False

    def fill():
        nonlocal buffer, exhausted
        chunk = handle.read(chunk_bytes)
        if not chunk:
            exhausted = True
        buffer += chunk

    while True:
        newline = buffer.find(b"\n")
        while newline < 0 and not exhausted and len(buffer) <= max_line_bytes:
            fill()
            newline = buffer.find(b"\n")
        if newline >= 0 and newline < max_line_bytes:
            number += 1
            line, buffer = buffer[: newline + 1], buffer[newline + 1 :]
            yield number, line, None
            continue
        if not buffer:
            return
        if len(buffer) <= max_line_bytes:  # the last line, without a newline
            number += 1
            line, buffer = buffer, b""
            yield number, line, None
            continue
        number += 1
        head, buffer = buffer[:max_line_bytes], buffer[max_line_bytes:]

        def rest():
            nonlocal buffer
            while True:
                cut = buffer.find(b"\n")
                if cut >= 0:
                    piece, buffer = buffer[: cut + 1], buffer[cut + 1 :]
                    yield piece
                    return
                if buffer:
                    piece, buffer = buffer, b""
                    yield piece
                if exhausted:
                    return
                fill()

        yield number, head, rest()


def iter_jsonl(
    path,
    format=None,
    on_error="raise",
    rejected=None,
    max_line_bytes=DEFAULT_MAX_LINE_BYTES,
    report=None,
    parser=None,
):
    """Yields the records of one JSONL file, handling bad lines by `on_error` (see the module docstring).

    Args:
      path: a local path or any `tf.io.gfile` URL.
      format: one of `formats.FORMATS` to force the shape; None detects it from the first good record. With
        `parser`, the name the report gives the file's shape.
      on_error: "raise", "skip" (needs `rejected`) or "collect".
      rejected: a `RejectedRecords` receiving skipped lines.
      max_line_bytes: longer lines are rejected without being read into memory.
      report: a `ReadReport` to fill (one is made if None; pass one to read the counts afterwards).
      parser: a callable taking one decoded JSON object and returning a record or raising `formats.FieldError`,
        for files of shapes outside `formats.FORMATS` (e.g. recommendation logs); it replaces shape detection.
    """
    if on_error not in ON_ERROR:
        raise ValueError(f"`on_error` must be one of {ON_ERROR}. Received: on_error={on_error!r}")
    if parser is None and format is not None and format not in formats.FORMATS:
        raise UserInputError(f"`format` must be one of {list(formats.FORMATS)}. Received: format={format!r}")
    path = os.fspath(path)
    report = report if report is not None else ReadReport(path)
    report.format = format or ""
    if not tf.io.gfile.exists(path):
        raise UserInputError(f"Data file not found. Received: {path}")

    def fail(error, raw, overflow):
        report.errors.append(error)
        if on_error == "raise":
            raise DataError([error])
        if on_error == "skip" and rejected is not None:
            if overflow is None:
                rejected.add(error, raw)
            else:
                rejected.add_streamed(error, raw, overflow)
        if overflow is not None:
            for _ in overflow:  # move past the rest of the line
                pass

    with tf.io.gfile.GFile(path, "rb") as handle:
        for number, raw, overflow in _lines(handle, max_line_bytes):
            if overflow is not None:
                message = f"the line is longer than {max_line_bytes} bytes; raise --max_line_bytes if it is genuine"
                fail(RecordError(path, number, "(line)", message), raw, overflow)
                continue
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw_text = raw[3:]
            else:
                raw_text = raw
            if not raw_text.strip():
                report.blank_lines += 1
                continue
            try:
                text = raw_text.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as error:
                message = f"is not valid UTF-8 (byte {error.start} of the line)"
                fail(RecordError(path, number, "(line)", message), raw, None)
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as error:
                fail(
                    RecordError(path, number, "(json)", f"is not valid JSON: {error.msg} at column {error.colno}"),
                    raw,
                    None,
                )
                continue
            try:
                if parser is not None:
                    record = parser(obj)
                elif not report.format:
                    shape = formats.detect_format(obj)
                    record = formats.parse(obj, shape)
                    report.format = shape
                else:
                    record = _parse_in_file(obj, report.format)
            except formats.FieldError as error:
                fail(RecordError(path, number, error.field, error.message), raw, None)
                continue
            report.records += 1
            yield record


def _parse_in_file(obj, file_format):
    try:
        return formats.parse(obj, file_format)
    except formats.FieldError:
        try:
            other = formats.detect_format(obj)
        except formats.FieldError:
            other = file_format
        if other != file_format:
            raise formats.FieldError("(record)", f"is a {other} record in a file of {file_format} records") from None
        raise


def read_jsonl(path, format=None, on_error="raise", rejected=None, max_line_bytes=DEFAULT_MAX_LINE_BYTES):
    """All records of one JSONL file as a list, and its `ReadReport`."""
    report = ReadReport(os.fspath(path))
    records = list(iter_jsonl(path, format, on_error, rejected, max_line_bytes, report))
    return records, report


def write_jsonl(path, records):
    """Writes records in their canonical shapes (`formats.to_json`), atomically. Returns the count."""

    lines = [json.dumps(formats.to_json(record), ensure_ascii=False) for record in records]
    files.atomic_write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)
