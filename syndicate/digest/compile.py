"""What a digest contains, decided without I/O: which releases are new or corrected for a
list, and how each recipient's copy is grouped. The outbox stores what this decides."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from syndicate.config import Config, MailingList
from syndicate.model import Release

ALL = "all"
OTHER = "Other releases"


@dataclass(frozen=True, slots=True)
class Plan:
    """A list's digest for one period: releases new to the list, and releases it was sent
    before whose content has changed since (never shown as new again)."""

    new: tuple[Release, ...]
    corrected: tuple[Release, ...]

    @property
    def empty(self) -> bool:
        return not self.new and not self.corrected


@dataclass(frozen=True, slots=True)
class Section:
    slug: str
    title: str
    releases: tuple[Release, ...]


def list_topics(config: Config, mailing_list: MailingList) -> list[str]:
    """The topics a list covers, in config order ('all' expands to every topic)."""
    if ALL in mailing_list.topics:
        return list(config.topics)
    return [slug for slug in config.topics if slug in mailing_list.topics]


def covers(mailing_list: MailingList, release: Release) -> bool:
    return ALL in mailing_list.topics or bool(set(release.categories) & set(mailing_list.topics))


def plan(
    mailing_list: MailingList,
    became_public: Sequence[Release],
    sent: Mapping[str, str],
    current: Sequence[Release],
    hashes: Mapping[str, str],
) -> Plan:
    """`became_public`: releases public in the window; `sent`: release id → content hash as
    sent to this list; `current`: public releases among those ids; `hashes`: their content
    hashes now. A release already sent is never new again; a changed one is corrected."""
    new = tuple(r for r in became_public if r.id not in sent and covers(mailing_list, r))
    new_ids = {r.id for r in new}
    corrected = tuple(
        r
        for r in current
        if r.id in sent
        and r.id not in new_ids
        and hashes.get(r.id) != sent[r.id]
        and covers(mailing_list, r)
    )
    return Plan(new, corrected)


def selection(
    config: Config, mailing_list: MailingList, narrowed: Sequence[str]
) -> tuple[str, ...]:
    """A recipient's topics, in config order: their narrowing, else the whole list's."""
    topics = list_topics(config, mailing_list)
    if narrowed:
        topics = [t for t in topics if t in narrowed]
    return tuple(topics)


def sections(
    config: Config, mailing_list: MailingList, releases: Sequence[Release], topics: Sequence[str]
) -> tuple[Section, ...]:
    """Group releases under the recipient's topics in config order, each release once (under
    its first matching topic). On an 'all' list a recipient who did not narrow also gets the
    releases that have no topic, under 'Other releases'."""
    grouped: dict[str, list[Release]] = {slug: [] for slug in topics}
    other: list[Release] = []
    wants_other = ALL in mailing_list.topics and list(topics) == list_topics(config, mailing_list)
    for release in releases:
        home = next((slug for slug in topics if slug in release.categories), None)
        if home is not None:
            grouped[home].append(release)
        elif wants_other and not release.categories:
            other.append(release)
    result = [
        Section(slug, config.topics[slug].title, tuple(items))
        for slug, items in grouped.items()
        if items
    ]
    if other:
        result.append(Section(ALL, OTHER, tuple(other)))
    return tuple(result)


def for_recipient(
    config: Config, mailing_list: MailingList, digest: Plan, topics: Sequence[str]
) -> tuple[tuple[Section, ...], tuple[Release, ...]]:
    """(sections of new releases, corrections) as one recipient sees them."""
    new = sections(config, mailing_list, digest.new, topics)
    shown = {
        r.id for s in sections(config, mailing_list, digest.corrected, topics) for r in s.releases
    }
    return new, tuple(r for r in digest.corrected if r.id in shown)
