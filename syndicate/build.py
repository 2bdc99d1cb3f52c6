"""Build the public site: decide which documents are stale (fingerprints), render only those,
write atomically, remove what is no longer published."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from syndicate import feeds, pages, websub
from syndicate.config import Config
from syndicate.errors import SyndicateError
from syndicate.files import write_if_changed
from syndicate.output import Document, snapshot
from syndicate.store import Store
from syndicate.store import releases as store_releases
from syndicate.urls import absolute

MANIFEST = ".manifest.json"


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
        }


def build(config: Config, store: Store, now: datetime) -> BuildReport:
    """Everything public at `now`: feeds, archives and pages; then WebSub pings for the
    current feeds that changed. The scheduler calls this again at `report.next_change`,
    the next embargo lift, to the second."""
    snap = snapshot(config, store, now)
    try:
        report = write(config.site.output_dir, [*feeds.documents(snap), *pages.documents(snap)])
    except BuildError as exc:
        # The feeds it replaced before it stopped are live now, and the next build will find
        # their bytes unchanged and announce nothing: announce them now (failures are logged).
        announce(config, exc.written)
        raise
    with store.connect() as conn:
        report.next_change = store_releases.next_public_from(conn, now)
    report.warnings += announce(config, report.changed)
    return report


def announce(config: Config, paths: Iterable[str]) -> list[str]:
    """WebSub pings for the current feeds among `paths`; one warning per failing hub."""
    changed = [absolute(config.site.base_url, path) for path in paths if is_current_feed(path)]
    return websub.publish(config.feeds.websub_hubs, changed)


def is_current_feed(path: str) -> bool:
    """feeds/x.rss or feeds/tr/x.atom, not an archive document: what readers subscribe to."""
    return path.startswith("feeds/") and "/archive/" not in path


def write(output_dir: Path, documents: Iterable[Document]) -> BuildReport:
    """Apply documents to `output_dir`. Only files this build created before are ever removed."""
    report = BuildReport()
    previous = _read_manifest(output_dir)
    current: dict[str, str] = {}
    try:
        for doc in documents:
            current[doc.path] = doc.fingerprint
            target = output_dir / doc.path
            if previous.get(doc.path) == doc.fingerprint and target.is_file():
                report.unchanged += 1
            elif write_if_changed(target, doc.render(), fsync=False):
                report.written.append(doc.path)
            else:
                report.unchanged += 1
        for path in sorted(set(previous) - set(current)):
            (output_dir / path).unlink(missing_ok=True)
            _remove_empty_parents(output_dir, output_dir / path)
            report.removed.append(path)
        # One sync for all files, before the manifest vouches for them: after a crash a file
        # may be empty, but then the old manifest does not match and the next build rewrites it.
        if report.written:
            os.sync()
        manifest = json.dumps(current, indent=0, sort_keys=True).encode()
        write_if_changed(output_dir / MANIFEST, manifest)
    except OSError as exc:
        where = exc.filename or output_dir
        raise BuildError(
            f"cannot write {where}: {exc.strerror}; the files already published "
            "are intact, the next build will finish the job",
            report.written,
        ) from None
    return report


def _read_manifest(output_dir: Path) -> dict[str, str]:
    """Fingerprints of the last build; a missing or damaged manifest means 'render all'."""
    try:
        data = json.loads((output_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): str(v) for k, v in data.items() if ".." not in str(k).split("/")}


def _remove_empty_parents(root: Path, path: Path) -> None:
    for parent in path.parents:
        if parent == root or root not in parent.parents:
            return
        try:
            parent.rmdir()
        except OSError:
            return
