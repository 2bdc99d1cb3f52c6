"""The pure digest decider: new versus corrected, and how a recipient's copy is grouped."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from syndicate.config import Config, MailingList
from syndicate.digest.compile import OTHER, for_recipient, list_topics, plan, selection
from syndicate.model import Release
from tests.conftest import NOW


def release(rid: str, *categories: str, hours: int = 1) -> Release:
    return Release(
        id=rid,
        title=rid.upper(),
        published=NOW - timedelta(hours=hours),
        url=f"https://press.example.org/releases/{rid}/",
        lang="en",
        categories=categories,
    )


def mailing(**fields: object) -> MailingList:
    return MailingList.model_validate({"title": "L", "schedule": "0 8 * * mon", **fields})


def test_releases_not_yet_sent_are_new() -> None:
    a, b = release("a", "trafficking"), release("b")
    digest = plan(mailing(), [a, b], {}, [], {})
    assert digest.new == (a, b) and digest.corrected == ()


def test_a_release_already_sent_is_never_new_again() -> None:
    a = release("a")
    digest = plan(mailing(), [a], {"a": "h1"}, [a], {"a": "h1"})
    assert digest.empty


def test_a_sent_release_whose_content_changed_is_a_correction() -> None:
    a = release("a")
    digest = plan(mailing(), [], {"a": "h1"}, [a], {"a": "h2"})
    assert digest.new == () and digest.corrected == (a,)


def test_a_list_on_some_topics_ignores_the_others() -> None:
    a, b = release("a", "trafficking"), release("b", "opinion")
    digest = plan(mailing(topics=["trafficking"]), [a, b], {"b": "x"}, [b], {"b": "y"})
    assert digest.new == (a,) and digest.corrected == ()


def test_list_topics_expand_all_in_config_order(config: Config) -> None:
    assert list_topics(config, mailing()) == ["trafficking", "turkiye", "ankara", "opinion"]
    assert list_topics(config, mailing(topics=["opinion", "trafficking"])) == [
        "trafficking",
        "opinion",
    ]


def test_a_recipient_narrowing_keeps_config_order(config: Config) -> None:
    assert selection(config, mailing(), ["opinion", "trafficking"]) == ("trafficking", "opinion")
    assert selection(config, mailing(topics=["opinion"]), []) == ("opinion",)


def test_sections_follow_config_order_and_show_each_release_once(config: Config) -> None:
    both = release("both", "opinion", "trafficking")
    only = release("only", "turkiye")
    digest = plan(mailing(), [both, only], {}, [], {})
    sections, corrections = for_recipient(
        config, mailing(), digest, selection(config, mailing(), [])
    )
    assert [(s.slug, [r.id for r in s.releases]) for s in sections] == [
        ("trafficking", ["both"]),
        ("turkiye", ["only"]),
    ]
    assert corrections == ()


def test_releases_without_topic_go_under_other_on_an_all_list(config: Config) -> None:
    loose = release("loose")
    digest = plan(mailing(), [loose], {}, [], {})
    sections, _ = for_recipient(config, mailing(), digest, selection(config, mailing(), []))
    assert [(s.title, [r.id for r in s.releases]) for s in sections] == [(OTHER, ["loose"])]


def test_a_narrowed_recipient_gets_only_their_topics(config: Config) -> None:
    t, o, loose = release("t", "trafficking"), release("o", "opinion"), release("loose")
    changed = release("c", "opinion")
    digest = plan(mailing(), [t, o, loose], {"c": "1"}, [changed], {"c": "2"})
    topics = selection(config, mailing(), ["trafficking"])
    sections, corrections = for_recipient(config, mailing(), digest, topics)
    assert [(s.slug, [r.id for r in s.releases]) for s in sections] == [("trafficking", ["t"])]
    assert corrections == ()


def test_corrections_are_filtered_by_the_recipients_topics(config: Config) -> None:
    changed = release("c", "opinion")
    digest = plan(mailing(), [], {"c": "1"}, [changed], {"c": "2"})
    _, mine = for_recipient(config, mailing(), digest, selection(config, mailing(), ["opinion"]))
    assert mine == (changed,)


@pytest.mark.parametrize("title", ["x", "Ünïcödé"])
def test_a_release_changed_only_in_categories_is_not_a_correction(title: str) -> None:
    a = dataclasses.replace(release("a", "trafficking"), title=title)
    digest = plan(mailing(), [], {"a": a.content_hash()}, [a], {"a": a.content_hash()})
    assert digest.empty
