"""Ingest: every source kind yields raw items; one path builds, classifies and upserts them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from syndicate.config import Config, FeedSource
from syndicate.errors import ContentError, SourceError, StoreError
from syndicate.ingest.items import Problem, RawItem, Site
from syndicate.ingest.record import build_release
from syndicate.ingest.sources import Reader, readers
from syndicate.ingest.upsert import Candidate, Outcome, apply
from syndicate.store import Store
from syndicate.store import releases as store_releases
from syndicate.topics import Classifier

BATCH = 200


@dataclass
class Report:
    counts: Counter[Outcome] = field(default_factory=Counter)
    rejected: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    reclassified: int = 0

    def summary(self) -> str:
        parts = [f"{self.counts[o]} {o.value}" for o in Outcome if o is not Outcome.REJECTED]
        parts.append(f"{len(self.rejected)} rejected")
        line = ", ".join(parts)
        return f"{line}; {self.reclassified} reclassified" if self.reclassified else line

    def to_dict(self) -> dict[str, Any]:
        counts: dict[str, Any] = {o.value: self.counts[o] for o in Outcome}
        counts[Outcome.REJECTED.value] = len(self.rejected)
        return {
            **counts,
            "reclassified": self.reclassified,
            "rejections": [p.to_dict() for p in self.rejected],
            "warnings": [p.to_dict() for p in self.warnings],
        }


def site_of(config: Config, now: datetime) -> Site:
    s = config.site
    return Site(base_url=s.base_url, language=s.language, tz=s.tz, now=now)


class _Builder:
    """Builds candidates from raw items, catching duplicate ids across the whole run."""

    def __init__(self, config: Config, now: datetime, report: Report) -> None:
        self.site = site_of(config, now)
        self.classifier = Classifier(config.topics)
        self.report = report
        self.seen: dict[str, str] = {}

    def build(self, reader: Reader, item: RawItem) -> Candidate | None:
        try:
            release, defaulted = build_release(item, self.site)
        except ContentError as exc:
            given = item.fields.get("id")
            rid = str(given) if isinstance(given, str | int) and given != "" else item.default_id
            self.report.rejected.append(Problem(item.where, item.locate(exc.field), rid, str(exc)))
            return None
        place = f"{item.where}:{item.line}" if item.line else item.where
        if release.id in self.seen:
            self.report.rejected.append(
                Problem(
                    item.where,
                    item.line,
                    release.id,
                    f"duplicate id; also in {self.seen[release.id]}",
                )
            )
            return None
        self.seen[release.id] = place
        if defaulted:
            self.report.warnings.append(
                Problem(item.where, item.line, release.id, "no date; using the time of ingest")
            )
        for slug in self.classifier.unknown(release):
            self.report.warnings.append(
                Problem(
                    item.where, item.locate("topics"), release.id, f"topics: unknown topic {slug!r}"
                )
            )
        release = replace(release, categories=self.classifier.classify(release))
        return Candidate(release, reader.origin, item.ref, defaulted)


def _items(reader: Reader, report: Report) -> Iterator[RawItem]:
    for entry in reader.read():
        if isinstance(entry, Problem):
            report.rejected.append(entry)
        else:
            yield entry


def ingest(
    config: Config,
    store: Store,
    now: datetime,
    *,
    paths: Sequence[str] = (),
    reclassify: bool = False,
    progress: Callable[[], None] | None = None,
) -> Report:
    """Read every source (or the given paths); a bad item or source never stops the run."""
    report = Report()
    builder = _Builder(config, now, report)
    for reader in readers(config, store, paths):
        try:
            _ingest_one(reader, builder, store, now, progress)
        except SourceError as exc:
            report.rejected.append(Problem(str(exc), None, None, "source skipped"))
    if reclassify:
        report.reclassified = _reclassify(store, builder.classifier, now)
    return report


def _ingest_one(
    reader: Reader,
    builder: _Builder,
    store: Store,
    now: datetime,
    progress: Callable[[], None] | None,
) -> None:
    report = builder.report
    batch: list[Candidate] = []
    ids_by_ref: dict[str, str] = {}

    def flush() -> None:
        for decision, candidate in zip(apply(store, batch, now), batch, strict=True):
            if decision.outcome is Outcome.REJECTED:
                report.rejected.append(
                    Problem(reader.label, None, candidate.release.id, decision.reason)
                )
            else:
                report.counts[decision.outcome] += 1
        batch.clear()

    try:
        for item in _items(reader, report):
            candidate = builder.build(reader, item)
            if progress:
                progress()
            if candidate is None:
                continue
            if candidate.ref is not None:
                ids_by_ref[candidate.ref] = candidate.release.id
            batch.append(candidate)
            if len(batch) >= BATCH:
                flush()
    except StoreError:
        raise  # that batch was rolled back; trying it again on the way out would wait again
    except BaseException:
        flush()  # what was read before a source broke off is still stored
        raise
    flush()
    for hook in reader.on_success:
        hook(now)
    if reader.folder is not None:
        report.counts[Outcome.RETRACTED] += _retract_missing(reader, ids_by_ref, store, now)


def _retract_missing(
    reader: Reader, ids_by_ref: dict[str, str], store: Store, now: datetime
) -> int:
    """Releases whose file is gone, or whose file now gives another id, become tombstones."""
    assert reader.folder is not None
    present = {p.relative_to(reader.folder).as_posix() for p in reader.folder.rglob("*.md")}
    with store.begin() as conn:
        live = store_releases.live_refs(conn, reader.origin)
        gone = [
            rid
            for rid, ref in live.items()
            if ref is not None and (ref not in present or ids_by_ref.get(ref, rid) != rid)
        ]
        store_releases.retract(conn, gone, now)
    return len(gone)


def _reclassify(store: Store, classifier: Classifier, now: datetime) -> int:
    changed: dict[str, tuple[str, ...]] = {}
    with store.connect() as conn:
        for release in store_releases.iter_all(conn):
            categories = classifier.classify(release)
            if set(categories) != set(release.categories):
                changed[release.id] = categories
    with store.begin() as conn:
        store_releases.set_categories(conn, changed, now)
    return len(changed)


def check(config: Config, now: datetime) -> tuple[list[Problem], list[Problem], int]:
    """Read every local source without storing: (rejections, warnings, releases read)."""
    report = Report()
    builder = _Builder(config, now, report)
    count = 0
    pairs = zip(config.sources, readers(config, None), strict=True)
    for number, (source, reader) in enumerate(pairs):
        try:
            for item in _items(reader, report):
                count += builder.build(reader, item) is not None
        except SourceError as exc:
            # A source that cannot be read at all is a problem of the config entry naming it.
            key = "url" if isinstance(source, FeedSource) else "path"
            line = config.line("sources", number, key)
            report.rejected.append(
                Problem(str(config.path), line, None, f"sources[{number}].{key}: {exc}")
            )
    return report.rejected, report.warnings, count
