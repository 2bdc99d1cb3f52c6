"""Files: reading what admins and editors write (UTF-8, errors naming line and byte), and
writing public output atomically."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
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


def read_utf8(
    path: Path, label: str, error: type[SyndicateError], *, field: str | None = None
) -> str:
    """A whole file as text; any failure is `error`, naming `label` (and the line, and
    `field` when given, if bytes)."""
    try:
        return decode_utf8(path.read_bytes())
    except FileNotFoundError:
        raise error(f"{label}: file not found") from None
    except OSError as exc:
        raise error(f"{label}: cannot read: {exc.strerror}") from None
    except Utf8Error as exc:
        where = f"{label}:{exc.line}: {field}:" if field else f"{label}:{exc.line}:"
        raise error(f"{where} {exc}") from None


def display(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    absolute = Path(os.path.normpath(path.absolute()))
    try:
        return absolute.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return absolute.as_posix()


def write_if_changed(path: Path, data: bytes, *, fsync: bool = True) -> bool:
    """Atomically replace `path` with `data` (temp file, fsync, rename); an unchanged file is
    not touched, so its mtime and ETag stay stable. True when the file was written.
    `fsync=False` is for callers that make many files durable at once (`make_durable`).

    An OSError names `path` (its `filename`), not the temp file, whichever step failed: a
    failed write() names no file at all, and a full disk or a read-only folder is reported
    about the file the user knows."""
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _about(exc, path) from None
    temp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        temp.chmod(0o644)
        temp.replace(path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise _about(exc, path) from None
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return True


def _about(exc: OSError, path: Path) -> OSError:
    exc.filename, exc.filename2 = str(path), None
    return exc


def make_durable(paths: Iterable[Path], removed: Iterable[Path] = ()) -> None:
    """Files written without fsync, their renames and removals, on disk. A few are synced one
    by one (with their folders), so a small build does not wait for every other process's
    writes as a system-wide sync would; many at once, with one sync."""
    files, gone = list(paths), list(removed)
    if len(files) + len(gone) > 256:
        os.sync()
        return
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    folders = {path.parent for path in files}
    for path in gone:  # the nearest folder still there (empty ones went with the file)
        folder = path.parent
        while not folder.is_dir() and folder != folder.parent:
            folder = folder.parent
        folders.add(folder)
    for folder in sorted(folders):
        sync_folder(folder)


def sync_folder(folder: Path) -> None:
    """A rename or removal in `folder` on disk (best effort: not every file system can)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
