"""Build the public site: decide which documents are stale, render only those, write
atomically, remove what is no longer published.

An incremental build (syndicate.changes) looks only at what changed since the last build; a
full one at every document, skipping those whose fingerprints did not change."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from syndicate import changes, feeds, pages, websub
from syndicate.config import Config
from syndicate.errors import SyndicateError
from syndicate.files import make_durable, write_if_changed
from syndicate.manifest import ROOT, Entry, Manifest, removable
from syndicate.output import Document, Scope, snapshot
from syndicate.store import Store
from syndicate.store import releases as store_releases
from syndicate.urls import absolute

MANIFEST = ROOT


class BuildError(SyndicateError, OSError):
    """The output folder could not be written; files already there are intact. `written`:
    the files this build had already replaced (each one whole) when it stopped."""

    def __init__(self, message: str, written: list[str]) -> None:
        super().__init__(message)
        self.written = written


@dataclass
class BuildReport:
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    next_change: datetime | None = None
    warnings: list[str] = field(default_factory=list)
    incremental: bool = False  # only what changed since the last build was looked at

    @property
    def changed(self) -> list[str]:
        return [*self.written, *self.removed]

    def summary(self) -> str:
        total = len(self.written) + self.unchanged
        return (
            f"{total} files: {len(self.written)} written, {self.unchanged} unchanged, "
            f"{len(self.removed)} removed"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "written": self.written,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "next_change": self.next_change.isoformat() if self.next_change else None,
            "warnings": self.warnings,
            "incremental": self.incremental,
        }


def build(config: Config, store: Store, now: datetime, *, full: bool = False) -> BuildReport:
    """Everything public at `now`: feeds, archives and pages; then WebSub pings for the
    current feeds that changed. Incremental when the last build's manifest allows it (see
    syndicate.changes), else (or with `full`) a full build, which renders only the documents
    whose fingerprints changed. The scheduler calls this again at `report.next_change`, the
    next embargo lift, to the second."""
    output = config.site.output_dir
    try:
        with _exclusive(output):
            manifest = Manifest(output)
            plan = None if full else changes.plan(config, store, now, manifest)
            if plan is None:
                scope = snapshot(config, store, now).scope
                report = _apply(output, manifest, _documents(scope), None)
            else:
                report = _apply(output, manifest, _documents(plan.scope), plan.removed)
                report.incremental = True
    except BuildError as exc:
        # The feeds it replaced before it stopped are live now, and the next build will find
        # their bytes unchanged and announce nothing: announce them now (failures are logged).
        announce(config, exc.written)
        raise
    with store.connect() as conn:
        report.next_change = store_releases.next_public_from(conn, now)
    report.warnings += announce(config, report.changed)
    return report


def _documents(scope: Scope) -> Iterator[Document]:
    yield from feeds.documents(scope)
    yield from pages.documents(scope)


@contextmanager
def _exclusive(output: Path) -> Iterator[None]:
    """One build at a time in an output folder (the service's and a `syndicate build`, say):
    a lock on the folder itself, which holds no file of its own."""
    try:
        output.mkdir(parents=True, exist_ok=True)
        fd = os.open(output, os.O_RDONLY)
    except OSError as exc:
        where = exc.filename or output
        raise BuildError(f"cannot write {where}: {exc.strerror}", []) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def announce(config: Config, paths: Iterable[str]) -> list[str]:
    """WebSub pings for the current feeds among `paths`; one warning per failing hub."""
    changed = [absolute(config.site.base_url, path) for path in paths if is_current_feed(path)]
    return websub.publish(config.feeds.websub_hubs, changed)


def is_current_feed(path: str) -> bool:
    """feeds/x.rss or feeds/tr/x.atom, not an archive document: what readers subscribe to."""
    return path.startswith("feeds/") and "/archive/" not in path


def write(output_dir: Path, documents: Iterable[Document]) -> BuildReport:
    """Apply documents to `output_dir` as a whole site: what the last build made and these
    do not include is removed (only files a build made are ever removed)."""
    return _apply(output_dir, Manifest(output_dir), documents, None)


def _apply(
    output_dir: Path,
    manifest: Manifest,
    documents: Iterable[Document],
    removed: Iterable[str] | None,
) -> BuildReport:
    """Render and write the documents whose fingerprint or file changed. `removed` None: the
    documents are the whole site; else they are what changed, and `removed` what went."""
    report = BuildReport()
    previous = manifest.everything() if removed is None else None
    known = previous.get if previous is not None else manifest.get
    current: dict[str, Entry] = {}
    try:
        for doc in documents:
            current[doc.path] = (doc.fingerprint, doc.note)
            target = output_dir / doc.path
            entry = known(doc.path) if manifest.trusted else None
            if entry is not None and entry[0] == doc.fingerprint and target.is_file():
                report.unchanged += 1
            elif write_if_changed(target, doc.render(), fsync=False):
                report.written.append(doc.path)
            else:
                report.unchanged += 1
        updates: dict[str, Entry | None] = dict(current)
        if previous is not None:
            listed = set(previous)
        else:
            listed = {path for path in removed or () if manifest.get(path) is not None}
        gone = sorted(path for path in listed - set(current) if removable(path))
        for path in gone:
            (output_dir / path).unlink(missing_ok=True)
            _remove_empty_parents(output_dir, output_dir / path)
            report.removed.append(path)
            updates[path] = None
        # The files on disk before the manifest vouches for them: after a crash a file may be
        # empty, but then the manifest does not match it and the next build rewrites it.
        make_durable(
            [output_dir / path for path in report.written],
            [output_dir / path for path in report.removed],
        )
        if previous is not None:
            manifest.replace(current)
        else:
            manifest.update(updates)
            report.unchanged = manifest.files - len(report.written)
    except OSError as exc:
        where = exc.filename or output_dir
        raise BuildError(
            f"cannot write {where}: {exc.strerror}; the files already published "
            "are intact, the next build will finish the job",
            report.written,
        ) from None
    return report


def _remove_empty_parents(root: Path, path: Path) -> None:
    for parent in path.parents:
        if parent == root or root not in parent.parents:
            return
        try:
            parent.rmdir()
        except OSError:
            return
