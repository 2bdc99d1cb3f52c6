"""Reading the files admins and editors write: UTF-8, with errors that name line and byte."""

from __future__ import annotations

from pathlib import Path

from syndicate.errors import SyndicateError


class Utf8Error(ValueError):
    """Bytes that are not UTF-8; `line` is 1-based."""

    def __init__(self, line: int, byte: int) -> None:
        super().__init__(f"not valid UTF-8 (byte {byte}); save the file as UTF-8")
        self.line = line


def decode_utf8(raw: bytes) -> str:
    """UTF-8 text; a byte-order mark, as some editors on Windows write, is dropped."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Utf8Error(raw[: exc.start].count(b"\n") + 1, exc.start) from None


def read_utf8(path: Path, label: str, error: type[SyndicateError]) -> str:
    """A whole file as text; any failure is `error`, naming `label` (and the line, if bytes)."""
    try:
        return decode_utf8(path.read_bytes())
    except FileNotFoundError:
        raise error(f"{label}: file not found") from None
    except OSError as exc:
        raise error(f"{label}: cannot read: {exc.strerror}") from None
    except Utf8Error as exc:
        raise error(f"{label}:{exc.line}: {exc}") from None
