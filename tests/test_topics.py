"""Topic rules: which topics a release belongs to."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from syndicate.config import Config, Topic
from syndicate.model import Kind, Release
from syndicate.topics import Classifier


def release(
    title: str = "A release",
    *,
    summary: str = "",
    body_html: str = "",
    dateline: str | None = None,
    kind: Kind = Kind.PRESS_RELEASE,
    topics: tuple[str, ...] = (),
) -> Release:
    return Release(
        id="a-release",
        title=title,
        published=datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
        url="https://press.example.org/news/releases/a-release/",
        lang="en",
        kind=kind,
        dateline=dateline,
        summary=summary,
        body_html=body_html,
        topics=topics,
    )


def keywords(*words: str) -> Classifier:
    """A classifier with one topic, `t`, matched by `words`."""
    return Classifier({"t": Topic(title="T", keywords=list(words))})


def matches(classifier: Classifier, item: Release) -> bool:
    return classifier.classify(item) == ("t",)


# --- keywords: whole words ------------------------------------------------------------------


def test_keyword_matches_whole_word_next_to_punctuation() -> None:
    assert matches(keywords("trafficking"), release("Trafficking, smuggling and abuse"))


def test_keyword_does_not_match_inside_a_longer_word() -> None:
    assert not matches(keywords("trafficking"), release("traffickingx is not a word"))


def test_keyword_does_not_match_a_prefix_of_a_word() -> None:
    assert not matches(keywords("traffic"), release("Counter trafficking week"))


def test_keyword_does_not_match_a_suffix_of_a_word() -> None:
    assert not matches(keywords("king"), release("Trafficking news"))


def test_keyword_matches_a_hyphenated_compound() -> None:
    assert matches(keywords("trafficking"), release("Counter-trafficking training in Ankara"))


def test_keyword_matches_at_start_and_end_of_text() -> None:
    assert matches(keywords("data"), release("Data"))


def test_any_of_several_keywords_matches() -> None:
    assert matches(keywords("trafficking", "traffickers"), release("Traffickers win"))


def test_blank_keyword_matches_nothing() -> None:
    assert not matches(keywords("  "), release("  "))


# --- keywords: case- and accent-insensitive -----------------------------------------------


def test_keyword_is_case_insensitive() -> None:
    assert matches(keywords("trafficking"), release("HUMAN TRAFFICKING"))


@pytest.mark.parametrize("title", ["IOM in turkiye", "IOM IN TURKIYE", "IOM in Türkiye"])
def test_accented_keyword_matches_plain_spelling(title: str) -> None:
    assert matches(keywords("Türkiye"), release(title))


@pytest.mark.parametrize("title", ["IOM in Türkiye", "IOM IN TÜRKİYE"])
def test_plain_keyword_matches_accented_spelling(title: str) -> None:
    assert matches(keywords("turkiye"), release(title))


@pytest.mark.parametrize("title", ["Summit in İstanbul", "SUMMIT IN İSTANBUL", "in istanbul"])
def test_dotted_capital_i_matches_plain_i(title: str) -> None:
    assert matches(keywords("Istanbul"), release(title))


def test_dotted_capital_i_keyword_matches_plain_spelling() -> None:
    assert matches(keywords("İstanbul"), release("Summit in ISTANBUL"))


@pytest.mark.parametrize("title", ["Help in DIYARBAKIR", "help in diyarbakir", "Diyarbakır"])
def test_dotless_i_matches_plain_i(title: str) -> None:
    assert matches(keywords("Diyarbakır"), release(title))


def test_plain_keyword_matches_dotless_i() -> None:
    assert matches(keywords("sanliurfa"), release("Office opens in Şanlıurfa"))


def test_accented_keyword_matches_whole_words_only() -> None:
    assert not matches(keywords("göç"), release("Gocx, GÖÇMEN and göçler"))


# --- keywords: multi-word ------------------------------------------------------------------


def test_multi_word_keyword_matches_across_line_break() -> None:
    assert matches(keywords("human rights"), release("A", summary="respect for human\nrights"))


def test_multi_word_keyword_matches_across_several_spaces() -> None:
    assert matches(keywords("human rights"), release("Human    rights day"))


def test_multi_word_keyword_written_with_several_spaces_matches_one() -> None:
    assert matches(keywords("human   rights"), release("Human rights day"))


def test_multi_word_keyword_matches_across_inline_markup() -> None:
    body = "<p>Respect <em>human</em>\n  <strong>rights</strong>.</p>"
    assert matches(keywords("human rights"), release(body_html=body))


def test_multi_word_keyword_matches_across_non_breaking_space() -> None:
    assert matches(keywords("European Union"), release(body_html="<p>the European&nbsp;Union</p>"))


def test_multi_word_keyword_needs_every_word() -> None:
    assert not matches(keywords("human rights"), release("Human resources and rights"))


def test_multi_word_keyword_matches_whole_words_only() -> None:
    assert not matches(keywords("human rights"), release("human rightsholders"))


# --- keywords: where they are looked for ----------------------------------------------------


def test_keyword_in_title_matches() -> None:
    assert matches(keywords("syria"), release("Syria response update"))


def test_keyword_in_summary_matches() -> None:
    assert matches(keywords("syria"), release("Update", summary="Support to Syria"))


def test_keyword_in_body_text_matches() -> None:
    assert matches(keywords("syria"), release("Update", body_html="<p>Support to <b>Syria</b></p>"))


def test_keyword_in_body_entity_is_decoded() -> None:
    assert matches(keywords("türkiye"), release(body_html="<p>IOM T&uuml;rkiye</p>"))


def test_keyword_in_link_href_does_not_match() -> None:
    body = '<p>See <a href="https://example.org/syria/">the report</a>.</p>'
    assert not matches(keywords("syria"), release("Update", body_html=body))


def test_keyword_in_image_alt_does_not_match() -> None:
    body = '<p><img src="a.png" alt="Syria"></p>'
    assert not matches(keywords("syria"), release("Update", body_html=body))


def test_keyword_in_body_script_does_not_match() -> None:
    body = "<p>Hello</p><script>var syria = 1;</script>"
    assert not matches(keywords("syria"), release("Update", body_html=body))


def test_keyword_split_across_paragraphs_does_not_match() -> None:
    assert not matches(keywords("trafficking"), release(body_html="<p>traffic</p><p>king</p>"))


def test_keyword_absent_everywhere_does_not_match() -> None:
    item = release("Festival", summary="Film festival", body_html="<p>Films</p>")
    assert not matches(keywords("syria"), item)


# --- datelines and kinds -------------------------------------------------------------------


def datelines(*places: str) -> Classifier:
    return Classifier({"t": Topic(title="T", datelines=list(places))})


def kinds(*wanted: Kind) -> Classifier:
    return Classifier({"t": Topic(title="T", kinds=list(wanted))})


def test_dateline_matches() -> None:
    assert matches(datelines("Ankara"), release(dateline="Ankara"))


def test_dateline_is_case_insensitive() -> None:
    assert matches(datelines("Ankara"), release(dateline="ANKARA"))


@pytest.mark.parametrize(
    ("rule", "dateline"), [("Gaziantep", "GAZİANTEP"), ("Şanlıurfa", "SANLIURFA")]
)
def test_dateline_is_accent_insensitive(rule: str, dateline: str) -> None:
    assert matches(datelines(rule), release(dateline=dateline))


def test_other_dateline_does_not_match() -> None:
    assert not matches(datelines("Ankara"), release(dateline="Istanbul"))


def test_missing_dateline_does_not_match() -> None:
    assert not matches(datelines("Ankara"), release(dateline=None))


def test_dateline_rule_ignores_the_text() -> None:
    assert not matches(datelines("Ankara"), release("News from Ankara", dateline="Geneva"))


def test_kind_matches() -> None:
    assert matches(kinds(Kind.OP_ED, Kind.STATEMENT), release(kind=Kind.STATEMENT))


def test_other_kind_does_not_match() -> None:
    assert not matches(kinds(Kind.OP_ED), release(kind=Kind.PRESS_RELEASE))


def test_any_one_rule_is_enough() -> None:
    classifier = Classifier(
        {"t": Topic(title="T", keywords=["syria"], datelines=["Gaziantep"], kinds=[Kind.OP_ED])}
    )
    assert matches(classifier, release("Unrelated", dateline="Gaziantep"))


# --- explicit topics -----------------------------------------------------------------------


def test_explicit_topic_is_kept_without_any_rule_matching() -> None:
    assert matches(keywords("syria"), release("Unrelated", topics=("t",)))


def test_topic_without_rules_matches_only_explicitly() -> None:
    classifier = Classifier({"t": Topic(title="Events")})
    assert classifier.classify(release("Events, events, events")) == ()
    assert classifier.classify(release("Anything", topics=("t",))) == ("t",)


def test_unknown_explicit_slug_is_left_out() -> None:
    assert keywords("syria").classify(release("Syria", topics=("nope", "t"))) == ("t",)


def test_unknown_explicit_slugs_are_reported_in_their_order() -> None:
    item = release(topics=("zeta", "t", "alpha"))
    assert keywords("x").unknown(item) == ["zeta", "alpha"]


def test_known_explicit_slugs_are_not_reported() -> None:
    assert keywords("x").unknown(release(topics=("t",))) == []


def test_explicit_topic_is_not_counted_twice() -> None:
    assert keywords("syria").classify(release("Syria", topics=("t", "t"))) == ("t",)


# --- order and the configured topics --------------------------------------------------------


def test_topics_come_in_config_order() -> None:
    classifier = Classifier(
        {
            "zeta": Topic(title="Z", keywords=["syria"]),
            "alpha": Topic(title="A", keywords=["data"]),
            "mid": Topic(title="M"),
        }
    )
    item = release("Data on Syria", topics=("mid", "alpha"))
    assert classifier.classify(item) == ("zeta", "alpha", "mid")


def test_classify_with_base_config(config: Config) -> None:
    classifier = Classifier(config.topics)
    item = release(
        "Traffickers and Türkiye",
        dateline="ANKARA",
        kind=Kind.OP_ED,
        topics=("opinion", "unknown"),
    )
    assert classifier.classify(item) == ("trafficking", "turkiye", "ankara", "opinion")


def test_no_topics_configured_gives_no_topics() -> None:
    assert Classifier({}).classify(release("Anything", topics=("x",))) == ()
